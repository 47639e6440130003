//! Host restart with many installed plugins: `cargo bench -p robohost-tests
//! --bench restart`. 100 distinct components (the `bench` plugin, each with
//! its own custom section, so each has its own digest and artifact) are
//! installed; then a new engine on the same database and artifact cache is
//! timed until every plugin is loaded and described, against the first
//! start that compiled them (the baseline, same run).

use std::sync::Arc;
use std::time::Instant;

use robohost::domain::{Capability, Timestamp};
use robohost::engine::{Engine, EngineConfig, ManualClock};
use robohost::runtime::{Sandbox, SandboxConfig};
use robohost::storage::Store;
use robohost_tests::db::{Db, fresh_url};
use robohost_tests::plugin_path;

const PLUGINS: usize = 100;

/// `wasm` with a custom section `robohost-bench` holding `n`.
fn distinct(wasm: &[u8], n: usize) -> Vec<u8> {
    let name = b"robohost-bench";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut out = wasm.to_vec();
    out.push(0); // a custom section
    out.push(size as u8); // its size, one LEB128 byte
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

async fn start(url: &str, cache: &std::path::Path) -> Arc<Engine> {
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(cache.to_owned()),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let store = Store::open(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_764_000_000_000)));
    Engine::new(store, Arc::new(sandbox), clock, EngineConfig::default())
        .await
        .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = fresh_url(Db::Sqlite).await;
    let cache = std::env::temp_dir().join(format!("robohost-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let wasm = std::fs::read(plugin_path("bench")).unwrap();

    let first = start(&url, &cache).await;
    let installing = Instant::now();
    for n in 0..PLUGINS {
        first
            .install_plugin(&format!("bench-{n}"), distinct(&wasm, n), vec![Capability::SetFields])
            .await
            .unwrap();
    }
    let compiled = installing.elapsed();
    drop(first);

    let restarting = Instant::now();
    let again = start(&url, &cache).await;
    let restart = restarting.elapsed();
    assert_eq!(again.plugin_robots("bench-99").len(), 2, "every plugin is loaded");

    println!("{PLUGINS} installed plugins ({} KB each)", wasm.len() / 1024);
    println!(
        "  installing them (compile, describe, store): {:.0} ms",
        compiled.as_secs_f64() * 1e3
    );
    println!(
        "  restart until all are loaded from the artifact cache: {:.0} ms = {:.3}x of installing",
        restart.as_secs_f64() * 1e3,
        restart.as_secs_f64() / compiled.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&cache);
}
