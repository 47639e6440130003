//! Scheduled robots benchmark: one firing of a robot on a schedule over
//! 100,000 deals in its stage, on PostgreSQL, worked by two engines (two
//! hosts) sharing the database: `cargo bench -p robohost-tests --bench
//! schedule` (`ROBOHOST_BENCH_DEALS=N` for fewer deals).
//!
//! Against two baselines in the same run: the same robot's 100,000 runs
//! queued by stage entry (the deals created while no worker runs, then
//! worked by the same two engines), and the firing worked by one engine.
//! The engines run their worker loops as `robohost serve` does (its HTTP
//! part aside) on the real clock; the schedule is a cron expression that
//! fires once, two seconds after the robot is placed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DurationRound as _, Utc};
use robohost::api::NewEntityRequest;
use robohost::domain::{Capability, Pipeline, RobotBinding, RunStatus, Timestamp};
use robohost::engine::{Engine, EngineConfig, SystemClock};
use robohost::storage::Store;
use robohost_tests::db::{Db, fresh_url, shared_sandbox};
use robohost_tests::plugin_path;
use tokio_util::sync::CancellationToken;

/// Concurrent producers creating the deals.
const PRODUCERS: usize = 40;

async fn engine(url: &str) -> Arc<Engine> {
    let store = Store::open(url).await.unwrap();
    let config = EngineConfig {
        poll_ms: 5,
        batch: 128,
        ..EngineConfig::default()
    };
    Engine::new(store, shared_sandbox(), Arc::new(SystemClock), config)
        .await
        .unwrap()
}

/// `bench.echo` (one set-fields effect) on NEW, on a schedule if given.
async fn place(engine: &Engine, schedule: Option<&str>) {
    let mut robot = serde_json::json!({"id": 0, "pipeline": "general", "stage": "NEW", "plugin": "bench",
        "robot": "echo", "properties": {"text": "hi"}});
    if let Some(cron) = schedule {
        robot["timing"] = serde_json::json!({"schedule": cron});
    }
    let robot: RobotBinding = serde_json::from_value(robot).unwrap();
    engine.add_robot(&robot).await.unwrap();
}

/// An engine's worker loops, as many as `robohost serve` runs.
fn work(engine: &Arc<Engine>, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    (0..EngineConfig::default().workers)
        .map(|_| tokio::spawn(engine.clone().run(stop.clone())))
        .collect()
}

/// Waits until `total` runs have succeeded and nothing is queued or
/// leased; returns when the first run was queued (the firing committed)
/// and when the last ended, both from `start`.
async fn drained(store: &Store, total: u64, start: Instant) -> (Duration, Duration) {
    let mut queued = None;
    loop {
        match store.next_due().await.unwrap() {
            Some(_) => {
                queued.get_or_insert_with(|| start.elapsed());
            }
            None if queued.is_some() && store.count_runs(RunStatus::Succeeded).await.unwrap() >= total => {
                let done = start.elapsed();
                assert_eq!(store.count_runs(RunStatus::Succeeded).await.unwrap(), total);
                return (queued.unwrap(), done);
            }
            None => {
                let dead = store.count_runs(RunStatus::Dead).await.unwrap();
                assert_eq!(dead, 0, "runs ended dead: see the run log");
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Places a robot whose schedule fires once, two seconds from now, and
/// returns when it fires.
async fn fire_once(engine: &Engine) -> Instant {
    let at = (Utc::now() + chrono::Duration::seconds(2))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    place(engine, Some(&at.format("%-S %-M %-H %-d %-m * %Y").to_string())).await;
    let wait = Timestamp::from_datetime(at).0 - Timestamp::now().0;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    Instant::now()
}

/// The process's peak resident memory, in MiB.
fn peak_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    kib / 1024
}

fn rate(runs: usize, took: Duration) -> f64 {
    runs as f64 / took.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let deals: usize = std::env::var("ROBOHOST_BENCH_DEALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let url = fresh_url(Db::Postgres).await;
    let a = engine(&url).await;
    let pipeline: Pipeline = serde_json::from_str(
        r#"{"code": "general", "kind": "deal", "names": {}, "stages": [{"code": "NEW", "names": {}, "semantic": "in-progress"}]}"#,
    )
    .unwrap();
    a.put_pipeline(&pipeline).await.unwrap();
    let wasm = std::fs::read(plugin_path("bench")).unwrap();
    a.install_plugin("bench", wasm, Capability::ALL.to_vec()).await.unwrap();
    let echo = serde_json::from_value(serde_json::json!({"kind": "deal", "code": "UF_ECHO", "type": "text"})).unwrap();
    a.declare_field(&echo).await.unwrap();
    place(&a, None).await;
    // The second host starts on the portal set up, as `engine.rs`'s do.
    let b = engine(&url).await;
    let store = a.store();

    // The deals, created while no worker runs: their entry runs wait.
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let engine = if p % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                for n in (p..deals).step_by(PRODUCERS) {
                    let request: NewEntityRequest = serde_json::from_value(serde_json::json!(
                        {"kind": "deal", "pipeline": "general", "fields": {"TITLE": format!("deal {n}")}}
                    ))
                    .unwrap();
                    let (draft, links) = request.into_entity().unwrap();
                    engine.create_entity(draft, links).await.unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    println!(
        "{deals} deals created in {:.1} s (their entry runs queued)",
        start.elapsed().as_secs_f64()
    );

    // Baseline: the entry runs, worked by both engines.
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let start = Instant::now();
    let mut loops = work(&a, &stop_a);
    let mut loops_b = work(&b, &stop_b);
    let (_, entry) = drained(store, deals as u64, start).await;
    println!(
        "entry, 2 engines: {deals} runs in {:.2} s = {:.0} runs/s (peak memory {} MiB)",
        entry.as_secs_f64(),
        rate(deals, entry),
        peak_mib()
    );

    // One firing over the stage, worked by both engines.
    let fired = fire_once(&a).await;
    let (queued, two) = drained(store, 2 * deals as u64, fired).await;
    println!(
        "schedule, 2 engines: {deals} runs queued {:.2} s after the firing time, all done in {:.2} s = {:.0} runs/s (peak memory {} MiB)",
        queued.as_secs_f64(),
        two.as_secs_f64(),
        rate(deals, two),
        peak_mib()
    );

    // The same firing worked by one engine.
    stop_b.cancel();
    for l in loops_b.drain(..) {
        l.await.unwrap();
    }
    let fired = fire_once(&a).await;
    let (queued_one, one) = drained(store, 3 * deals as u64, fired).await;
    println!(
        "schedule, 1 engine: {deals} runs queued {:.2} s after the firing time, all done in {:.2} s = {:.0} runs/s",
        queued_one.as_secs_f64(),
        one.as_secs_f64(),
        rate(deals, one),
    );
    println!(
        "ratios: a firing / the same runs queued by entry = {:.2} (time); 2 engines / 1 engine = {:.2}x the rate",
        two.as_secs_f64() / entry.as_secs_f64(),
        one.as_secs_f64() / two.as_secs_f64(),
    );
    stop_a.cancel();
    for l in loops.drain(..) {
        l.await.unwrap();
    }
}
