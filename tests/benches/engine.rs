//! Engine benchmark: robot runs per second from stage entry to committed
//! effects, and the latency of each run, on SQLite and on PostgreSQL:
//! `cargo bench -p robohost-tests --bench engine`.
//!
//! Concurrent producers create deals (committed in group commits) that enter a stage with one robot (`bench.echo`,
//! one set-fields effect) while workers run them; the clock is the real one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use robohost::api::NewEntityRequest;
use robohost::domain::{Capability, Pipeline, RobotBinding, RunStatus};
use robohost::engine::{Engine, EngineConfig, SystemClock};
use robohost::storage::Store;
use robohost_tests::db::{Db, fresh_url, shared_sandbox};
use robohost_tests::plugin_path;
use tokio_util::sync::CancellationToken;

const RUNS: usize = 10_000;

/// Concurrent producers, like HTTP clients creating deals; each waits for
/// its deal to be committed before it creates the next.
const PRODUCERS: usize = 40;
const _: () = assert!(RUNS.is_multiple_of(PRODUCERS), "every producer creates as many deals");

/// Which kind of robot the benchmark runs.
#[derive(Clone, Copy, Debug)]
enum Robot {
    /// `bench.echo` in the sandbox.
    Sandboxed,
    /// The same logic as an HTTP handler on loopback, posted to per run.
    Webhook,
}

async fn engine(url: &str, setup: Option<Robot>) -> Arc<Engine> {
    let store = Store::open(url).await.unwrap();
    let config = EngineConfig {
        poll_ms: 5,
        batch: 128,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, shared_sandbox(), Arc::new(SystemClock), config)
        .await
        .unwrap();
    if let Some(kind) = setup {
        let pipeline: Pipeline = serde_json::from_str(
            r#"{"code": "general", "kind": "deal", "names": {}, "stages": [{"code": "NEW", "names": {}, "semantic": "in-progress"}]}"#,
        )
        .unwrap();
        engine.put_pipeline(&pipeline).await.unwrap();
        match kind {
            Robot::Sandboxed => {
                let wasm = std::fs::read(plugin_path("bench")).unwrap();
                engine
                    .install_plugin("bench", wasm, Capability::ALL.to_vec())
                    .await
                    .unwrap();
            }
            Robot::Webhook => {
                let url = robohost_tests::echo_webhook().await;
                engine
                    .install_webhook("bench", &url, Capability::ALL.to_vec())
                    .await
                    .unwrap();
            }
        }
        let robot: RobotBinding = serde_json::from_str(
            r#"{"id": 0, "pipeline": "general", "stage": "NEW", "plugin": "bench", "robot": "echo", "properties": {"text": "hi"}}"#,
        )
        .unwrap();
        engine.add_robot(&robot).await.unwrap();
    }
    engine
}

async fn measure(db: Db, hosts: usize, robot: Robot) {
    let url = fresh_url(db).await;
    let first = engine(&url, Some(robot)).await;
    let mut engines = vec![first.clone()];
    for _ in 1..hosts {
        engines.push(engine(&url, None).await);
    }
    let shutdown = CancellationToken::new();
    // Each host runs as many worker loops as `robohost serve` does.
    let workers: Vec<_> = engines
        .iter()
        .flat_map(|e| (0..EngineConfig::default().workers).map(|_| tokio::spawn(e.clone().run(shutdown.clone()))))
        .collect();

    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            // Spread over the hosts, as a load balancer would.
            let engine = engines[p % hosts].clone();
            tokio::spawn(async move {
                for _ in 0..RUNS / PRODUCERS {
                    let request: NewEntityRequest = serde_json::from_str(&format!(
                        r#"{{"kind": "deal", "pipeline": "general", "fields": {{"TITLE": "deal from producer {p}"}}}}"#
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
    let entered = start.elapsed();
    while first.store().count_runs(RunStatus::Succeeded).await.unwrap() < RUNS as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = start.elapsed();
    shutdown.cancel();
    for w in workers {
        w.await.unwrap();
    }

    let runs = first.store().runs(None, RUNS as u32 + 10).await.unwrap();
    let mut latency: Vec<i64> = runs
        .iter()
        .filter_map(|r| r.finished_at.map(|f| f.0 - r.created_at.0))
        .collect();
    latency.sort_unstable();
    let pct = |p: usize| latency[(latency.len() * p / 100).min(latency.len() - 1)];
    println!(
        "{robot:?} robot, {db:?}, {hosts} host(s): {RUNS} runs in {:.2} s = {:.0} runs/s (entries alone {:.0}/s); latency p50 {} ms, p99 {} ms",
        total.as_secs_f64(),
        RUNS as f64 / total.as_secs_f64(),
        RUNS as f64 / entered.as_secs_f64(),
        pct(50),
        pct(99),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `ROBOHOST_BENCH_ONLY=sandboxed-sqlite` (robot, database, hosts: any
    // of them) measures only the configurations it names, to repeat one.
    let only = std::env::var("ROBOHOST_BENCH_ONLY").unwrap_or_default().to_lowercase();
    for robot in [Robot::Sandboxed, Robot::Webhook] {
        for (db, hosts) in [(Db::Sqlite, 1), (Db::Postgres, 1), (Db::Postgres, 2)] {
            let name = format!("{robot:?}-{db:?}-{hosts}").to_lowercase();
            if only
                .split('-')
                .all(|part| name.split('-').any(|n| n == part) || part.is_empty())
            {
                measure(db, hosts, robot).await;
            }
        }
    }
}
