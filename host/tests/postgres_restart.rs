//! PostgreSQL restarted under load: two hosts and the producers keep at it
//! while the database goes away and comes back; the hosts reconnect by
//! themselves, and after a quiet period every robot has run exactly once.
//! Its own test binary, so no other test's database goes away with it.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use robohost::api::{Role, create_token};
use robohost::domain::RunStatus;
use robohost_tests::db::{Db, fresh_url};
use support::*;

/// Restarts the machine's PostgreSQL cluster; returns how long it took.
fn restart_postgres() -> Duration {
    let versions = std::fs::read_dir("/etc/postgresql").expect("a PostgreSQL cluster on this machine");
    let version = versions.map(|v| v.unwrap().file_name()).max().unwrap();
    let start = Instant::now();
    let done = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect"])
        .arg(&version)
        .args(["main", "restart"])
        .status()
        .expect("pg_ctlcluster");
    assert!(done.success(), "restarting PostgreSQL: {done}");
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_ride_out_a_postgres_restart_under_load() {
    let url = fresh_url(Db::Postgres).await;
    let engine = portal(&url).await;
    chain(&engine, 200_000).await;
    let token = create_token(engine.store(), "producers", Role::Admin).await.unwrap();
    let config = config_file("pg-restart", "batch = 8\nworkers = 1");
    let store = engine.store();
    let mut hosts = [Host::start(&url, &config), Host::start(&url, &config)];
    let producers = Producers::start(engine.clone(), hosts[0].addr, token.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = count(store, RunStatus::Succeeded).await;
    assert!(before > 0, "no work done before the restart");

    let down = restart_postgres();
    let restarted = Instant::now();
    // Work goes on: runs finish after the restart.
    let at_restart = std::cell::Cell::new(None);
    until(
        Duration::from_secs(60),
        "runs finishing after the restart",
        async || {
            let Ok(now) = store.count_runs(RunStatus::Succeeded).await else {
                return false;
            };
            let first = at_restart.get().unwrap_or(now);
            at_restart.set(Some(first));
            now > first
        },
    )
    .await;
    let recovered = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let created = producers.stop().await;
    for host in &mut hosts {
        assert!(
            host.child.try_wait().unwrap().is_none(),
            "a host died with the database"
        );
    }
    quiesce(&engine, &hosts[0], &token).await;
    for host in hosts {
        host.kill();
    }
    let deals = assert_exactly_once(&engine).await;
    eprintln!(
        "PostgreSQL restarted in {down:?} with {before} runs done; work went on {recovered:?} after; \
         {deals} deals ({created} confirmed), {} runs, all exactly once",
        all_runs(store).await
    );
}
