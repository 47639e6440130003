//! Bulk reassignment: `cargo bench -p robohost-tests --bench bulk`.
//!
//! 100,000 companies (`BULK_COMPANIES` to change it), each with a deal, an
//! activity and a task linked to it, all of one manager, reassigned from a
//! CSV file to another with every cascade on, in batches of 100 with the
//! default 50 ms pause. While the job runs, a client reads deals over the
//! API one at a time; its p99 latency is reported against the same reads
//! with no job running, in the same run (the ratio says what the job costs
//! the portal's users). On PostgreSQL, then SQLite. Seeding goes through the
//! store's transactions, not the API, to keep the bench about the job.

use std::time::{Duration, Instant};

use robohost::domain::{Entity, EntityKind, EntityRef, Fields, JobStatus, ReassignSpec, Timestamp};
use robohost_tests::db::Db;
use robohost_tests::http::{Server, server};
use serde_json::json;

fn companies() -> u64 {
    std::env::var("BULK_COMPANIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// Companies 1..=n of user 1, each with deal, activity and task number i
/// linked to it; returns the reassignment file giving them all to user 2.
async fn seed(s: &Server, n: u64) -> String {
    for (id, name) in [(1, "Petr"), (2, "Olga")] {
        s.json(
            "PUT",
            &format!("/api/users/{id}"),
            &s.admin,
            json!({"id": id, "name": name}),
        )
        .await
        .expect(200);
    }
    let entity = |kind, id| Entity {
        kind,
        id,
        pipeline: None,
        stage: None,
        responsible: Some(1),
        fields: Fields::new(),
        custom_fields: Fields::new(),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    let store = s.engine.store();
    const CHUNK: u64 = 2_000;
    for first in (1..=n).step_by(CHUNK as usize) {
        let mut tx = store.begin().await.unwrap();
        for id in first..(first + CHUNK).min(n + 1) {
            let company = entity(EntityKind::Company, id);
            tx.put_entity(&company, None).await.unwrap();
            for kind in [EntityKind::Deal, EntityKind::Activity, EntityKind::Task] {
                tx.put_entity(&entity(kind, id), None).await.unwrap();
                tx.link(company.reference(), EntityRef { kind, id }).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
    (1..=n).map(|id| format!("company:{id},2\n")).collect()
}

fn p99(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[(times.len() * 99 / 100).min(times.len() - 1)]
}

/// Reads deals over the API, one at a time, until `until` says stop.
async fn reads(s: &Server, n: u64, until: impl Fn() -> bool) -> Vec<Duration> {
    let mut times = Vec::new();
    let mut i = 0;
    while !until() || times.len() < 200 {
        i = i % n + 1;
        let started = Instant::now();
        s.get(&format!("/api/entities/deal/{i}"), &s.admin).await.expect(200);
        times.push(started.elapsed());
    }
    times
}

async fn measure(db: Db) {
    let n = companies();
    let s = server(db).await;
    let started = Instant::now();
    let file = seed(&s, n).await;
    eprintln!(
        "{db:?}: seeded {n} companies with {} linked entities in {:.1?}",
        3 * n,
        started.elapsed()
    );

    let mut idle = reads(&s, n, || true).await;
    let idle = p99(&mut idle);

    let spec = ReassignSpec {
        kind: Some(EntityKind::Company),
        ..ReassignSpec::default()
    };
    let planned = Instant::now();
    let job = s.engine.plan_reassignment(&file, spec, None).await.unwrap();
    let planning = planned.elapsed();
    s.engine.start_job(job.id).await.unwrap();
    let running = Instant::now();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let engine = s.engine.clone();
    let done = finished.clone();
    let applying = tokio::spawn(async move {
        let job = engine.drive_job(job.id, |_| {}).await.unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        job
    });
    let mut busy = reads(&s, n, || finished.load(std::sync::atomic::Ordering::SeqCst)).await;
    let job = applying.await.unwrap();
    let took = running.elapsed();
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(
        (job.progress.applied, job.progress.deals, job.progress.tasks),
        (n, n, n)
    );
    let busy_p99 = p99(&mut busy);
    eprintln!(
        "{db:?}: planned {n} rows in {planning:.1?}; applied them (and {} cascades) in {took:.1?}: {:.0} rows/s; \
         API p99 {busy_p99:.2?} while it ran ({} reads) against {idle:.2?} idle: ratio {:.2}",
        3 * n,
        n as f64 / took.as_secs_f64(),
        busy.len(),
        busy_p99.as_secs_f64() / idle.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `BULK_DB=sqlite` or `postgres` measures one.
    let only = std::env::var("BULK_DB").unwrap_or_default();
    runtime.block_on(async {
        for (name, db) in [("postgres", Db::Postgres), ("sqlite", Db::Sqlite)] {
            if only.is_empty() || only == name {
                measure(db).await;
            }
        }
    });
}
