//! Durability with real host processes (`robohost serve`), each fault shown
//! to have landed mid-work: a host SIGKILLed twenty times while it holds
//! leased runs, as producers create deals, complete tasks and move deals
//! over HTTP; a host paused (SIGSTOP) past its lease while another takes
//! its runs over, whose late commit the engine refuses; a host stopped with
//! SIGTERM while it works; three hosts on one PostgreSQL, one killed every
//! few seconds. No run is lost and none applies its effects twice: every
//! execution of the robots below leaves a timeline comment, so a lost or a
//! doubled one shows.

mod support;

use std::time::{Duration, Instant};

use robohost::api::{Role, create_token};
use robohost::domain::RunStatus;
use robohost_tests::db::{Db, fresh_url};
use support::*;

/// Kills: the host is SIGKILLed only once it holds leased runs and some but
/// not all runs are done, and the kill counts only if the dead host still
/// held leases afterwards (it died mid-work, not between batches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_twenty_times_mid_work_loses_no_run_and_applies_no_effect_twice() {
    const KILLS: usize = 20;
    let url = fresh_url(Db::Sqlite).await;
    let engine = portal(&url).await;
    chain(&engine, 200_000).await;
    let token = create_token(engine.store(), "producers", Role::Admin).await.unwrap();
    let config = config_file("crash", "batch = 8\nworkers = 1");
    let store = engine.store();

    let mut host = Host::start(&url, &config);
    let producers = Producers::start(engine.clone(), host.addr, token.clone());
    let (mut kills, mut missed) = (Vec::new(), 0);
    while kills.len() < KILLS {
        assert!(missed < 3 * KILLS, "{missed} kills missed the work");
        // Let it work a while, then catch it holding leases.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let owner = host.owner();
        until(Duration::from_secs(60), "the host leasing runs", async || {
            let done = count(store, RunStatus::Succeeded).await;
            store.leased_by(&owner).await.unwrap() > 0 && done > 0 && done < all_runs(store).await
        })
        .await;
        let (done, total) = (count(store, RunStatus::Succeeded).await, all_runs(store).await);
        host.kill();
        let held = store.leased_by(&owner).await.unwrap();
        if held > 0 {
            eprintln!(
                "kill {}: {done} of {total} runs done, {held} in flight",
                kills.len() + 1
            );
            kills.push((done, total, held));
        } else {
            missed += 1;
        }
        host = Host::start(&url, &config);
        producers.serve_at(host.addr);
    }
    let created = producers.stop().await;
    quiesce(&engine, &host, &token).await;
    host.kill();
    let deals = assert_exactly_once(&engine).await;
    eprintln!(
        "{KILLS} kills mid-work ({missed} missed), {deals} deals ({created} confirmed to the producer), {} runs",
        all_runs(store).await
    );
    assert!(
        kills
            .iter()
            .all(|(done, total, held)| 0 < *done && done < total && *held > 0)
    );
}

/// A bulk reassignment whose host is SIGKILLed five times while it holds
/// the job with rows applied and rows pending: each next host takes the
/// job over once the lease runs out and goes on where the last committed
/// batch ended. Every company, its deal and its task change hands exactly
/// once, each with one `responsible-changed` naming the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_job_killed_mid_way_resumes_and_applies_every_row_once() {
    use robohost::domain::{EntityKind, EntityRef, JobStatus, ReassignSpec};
    const COMPANIES: u64 = 400;
    const KILLS: usize = 5;
    let url = fresh_url(Db::Sqlite).await;
    let engine = portal(&url).await;
    let ivan = serde_json::from_value(serde_json::json!({"id": 2, "name": "Ivan"})).unwrap();
    engine.put_user(&ivan).await.unwrap();
    let create = async |body: serde_json::Value| {
        let request: robohost::api::NewEntityRequest = serde_json::from_value(body).unwrap();
        let (draft, links) = request.into_entity().unwrap();
        engine.create_entity(draft, links).await.unwrap().reference()
    };
    let mut file = String::new();
    for n in 0..COMPANIES {
        let company = create(serde_json::json!({"kind": "company", "responsible": 1})).await;
        for kind in ["deal", "task"] {
            let links = serde_json::json!([{"kind": "company", "id": company.id}]);
            create(serde_json::json!({"kind": kind, "responsible": 1, "links": links})).await;
        }
        file.push_str(&format!("{company},{}\n", if n % 2 == 0 { "2" } else { "Ivan" }));
    }
    // No pause: a host holding the job is inside a batch but for an
    // instant, so each kill lands mid-batch.
    let spec = ReassignSpec {
        batch: 25,
        pause_ms: 0,
        ..ReassignSpec::default()
    };
    let job = engine.plan_reassignment(&file, spec, None).await.unwrap();
    assert_eq!(job.plan.rows.get(&EntityKind::Company), Some(&COMPANIES));
    engine.start_job(job.id).await.unwrap();
    let config = config_file("bulk-crash", "workers = 1");
    let store = engine.store();

    let mut kills = Vec::new();
    let mut host = Host::start(&url, &config);
    while kills.len() < KILLS {
        let owner = host.owner();
        let target = (kills.len() as u64 + 1) * COMPANIES / (KILLS as u64 + 2);
        until(Duration::from_secs(60), "the host applying the job", async || {
            let holder = store.job_holder(job.id).await.unwrap().unwrap_or_default();
            let p = store.job(job.id).await.unwrap().unwrap().progress;
            holder.starts_with(&owner) && p.applied >= target && p.pending > 0
        })
        .await;
        host.kill();
        let p = store.job(job.id).await.unwrap().unwrap().progress;
        let holder = store.job_holder(job.id).await.unwrap().unwrap_or_default();
        assert!(holder.starts_with(&owner), "the dead host still holds the job");
        assert!(0 < p.applied && p.pending > 0, "killed mid-job: {p:?}");
        eprintln!("kill {}: {} of {COMPANIES} rows applied", kills.len() + 1, p.applied);
        kills.push(p.applied);
        host = Host::start(&url, &config);
    }
    until(Duration::from_secs(120), "the job done", async || {
        store.job(job.id).await.unwrap().unwrap().status == JobStatus::Done
    })
    .await;
    host.kill();

    let ended = store.job(job.id).await.unwrap().unwrap();
    let p = &ended.progress;
    assert_eq!((p.applied, p.failed, p.pending), (COMPANIES, 0, 0));
    assert_eq!((p.deals, p.tasks), (COMPANIES, COMPANIES), "each cascade counted once");
    for kind in [EntityKind::Company, EntityKind::Deal, EntityKind::Task] {
        for id in 1..=COMPANIES {
            let r = EntityRef { kind, id };
            let entity = store.entity(r).await.unwrap().unwrap();
            assert_eq!(entity.responsible, Some(2), "{r}");
            let changes: Vec<_> = store
                .events(r)
                .await
                .unwrap()
                .into_iter()
                .filter(|(_, event, _)| event == "responsible-changed")
                .map(|(_, _, data)| data)
                .collect();
            assert_eq!(changes.len(), 1, "{r}: {changes:?}");
            assert_eq!(changes[0]["job"], job.id, "{r}");
            assert_eq!(changes[0]["from"], 1, "{r}");
        }
    }
    assert!(kills.windows(2).all(|w| w[0] <= w[1]), "{kills:?}");
}

/// A paused worker: host A leases a batch and is stopped (SIGSTOP) past its
/// lease; host B takes the runs over and finishes them; A, continued,
/// finishes too and tries to commit. The engine refuses A's commit: the
/// comment is written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_past_its_lease_commits_nothing() {
    let url = fresh_url(Db::Sqlite).await;
    let engine = portal(&url).await;
    // The crunch first, long enough to pause A in the middle of it.
    place(&engine, "NEW", crunch(150_000_000, 9_000_000_000)).await;
    place(&engine, "NEW", comment("seen")).await;
    let config = config_file("pause", "batch = 8\nworkers = 1");
    let store = engine.store();

    let a = Host::start(&url, &config);
    let deal = create_deal(&engine, "Pumps").await;
    let owner = a.owner();
    until(Duration::from_secs(30), "A leasing both runs", async || {
        store.leased_by(&owner).await.unwrap() == 2
    })
    .await;
    a.signal("STOP");
    // Past A's lease (1 s), B takes both runs over and finishes them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        store.leased_by(&owner).await.unwrap(),
        2,
        "A's leases ran out, but nobody took them yet"
    );
    let b = Host::start(&url, &config);
    until(Duration::from_secs(60), "B finishing both runs", async || {
        count(store, RunStatus::Succeeded).await == 2
    })
    .await;
    assert_eq!(comments(store, deal, "seen").await, 1);

    // A goes on where it stopped, finishes the batch and tries to record it.
    a.signal("CONT");
    until(Duration::from_secs(60), "A trying to commit", async || {
        a.logged("lease lost before finishing")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        comments(store, deal, "seen").await,
        1,
        "A's late commit applied its effects again"
    );
    assert_eq!(count(store, RunStatus::Succeeded).await, 2);
    a.kill();
    b.kill();
}

/// SIGTERM while the host works: it takes no more runs, finishes what it
/// holds (the batch commits), and exits soon; nothing stays leased to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_runs_in_flight_finishes_them_and_exits() {
    let url = fresh_url(Db::Sqlite).await;
    let engine = portal(&url).await;
    place(&engine, "NEW", crunch(100_000_000, 9_000_000_000)).await;
    place(&engine, "NEW", comment("seen")).await;
    let config = config_file("term", "batch = 4\nworkers = 1");
    let store = engine.store();
    let mut deals = Vec::new();
    for n in 0..20 {
        deals.push(create_deal(&engine, &format!("d{n}")).await);
    }
    let mut host = Host::start(&url, &config);
    let owner = host.owner();
    until(Duration::from_secs(30), "the host leasing runs", async || {
        store.leased_by(&owner).await.unwrap() > 0
    })
    .await;
    let held = store.leased_by(&owner).await.unwrap();
    let done = count(store, RunStatus::Succeeded).await;
    host.signal("TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = host.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    eprintln!(
        "SIGTERM with {held} runs in flight ({done} of 40 done); exited in {:?}",
        start.elapsed()
    );
    assert_eq!(
        store.leased_by(&owner).await.unwrap(),
        0,
        "runs left leased to a host that stopped"
    );
    let after = count(store, RunStatus::Succeeded).await;
    assert!(
        after >= done + held,
        "the runs in flight were finished: {done} + {held} > {after}"
    );
    assert!(after < 40, "it stopped taking work: {after} of 40 done");
    for deal in &deals {
        assert!(comments(store, *deal, "seen").await <= 1);
    }
}

/// Three hosts on one PostgreSQL, one of them killed every few seconds and
/// started again, with producers at work; every host is seen holding runs,
/// and after a quiet period every robot has run exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_on_one_postgres_with_one_killed_every_few_seconds_run_every_robot_once() {
    let url = fresh_url(Db::Postgres).await;
    let engine = portal(&url).await;
    chain(&engine, 200_000).await;
    let token = create_token(engine.store(), "producers", Role::Admin).await.unwrap();
    let config = config_file("cluster", "batch = 8\nworkers = 1");
    let store = engine.store();
    let mut hosts: Vec<Host> = (0..3).map(|_| Host::start(&url, &config)).collect();
    let producers = Producers::start(engine.clone(), hosts[0].addr, token.clone());
    // Each host's pid, and whether it was seen holding leases.
    let mut worked: Vec<(u32, bool)> = hosts.iter().map(|h| (h.pid(), false)).collect();
    let start = Instant::now();
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_secs(3);
    while start.elapsed() < Duration::from_secs(20) {
        for host in &hosts {
            if store.leased_by(&host.owner()).await.unwrap() > 0
                && let Some(seen) = worked.iter_mut().find(|(pid, _)| *pid == host.pid())
            {
                seen.1 = true;
            }
        }
        if Instant::now() >= next_kill {
            // The producers go to a host that stays up; the one killed is
            // not it.
            let victim = 1 + kills % 2;
            let fresh = Host::start(&url, &config);
            worked.push((fresh.pid(), false));
            std::mem::replace(&mut hosts[victim], fresh).kill();
            kills += 1;
            next_kill = Instant::now() + Duration::from_secs(3);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    producers.serve_at(hosts[0].addr);
    let created = producers.stop().await;
    quiesce(&engine, &hosts[0], &token).await;
    for host in hosts {
        host.kill();
    }
    let deals = assert_exactly_once(&engine).await;
    let idle: Vec<u32> = worked.iter().filter(|(_, seen)| !seen).map(|(pid, _)| *pid).collect();
    eprintln!(
        "3 hosts, {kills} kills, {} processes, {deals} deals ({created} confirmed), {} runs",
        worked.len(),
        all_runs(store).await
    );
    assert!(kills >= 5, "{kills} kills");
    // Every process but those started last, which may not have had work
    // yet, was seen holding runs.
    assert!(idle.len() <= 2, "processes never seen working: {idle:?} of {worked:?}");
    assert!(
        worked[..3].iter().all(|(_, seen)| *seen),
        "the first three hosts all worked: {worked:?}"
    );
}

/// SIGTERM the moment a host says it serves (as a service manager may
/// send it) ends it in an orderly way and soon: the signal is caught from
/// before that line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_as_soon_as_the_host_serves_stops_it() {
    let url = fresh_url(Db::Sqlite).await;
    reader(&url).await;
    let mut host = Host::start(&url, &config_file("serving", ""));
    host.signal("TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = host.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    // The default log says when it started and stopped.
    until(Duration::from_secs(5), "the log read to its end", async || {
        host.logged("robohost stopped")
    })
    .await;
    assert!(host.logged("robohost is serving"));
}
