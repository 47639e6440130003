//! The sandbox's engine-level behaviour: the compile cache and the pooling
//! allocator's fallback.

use robohost::runtime::{Outcome, Sandbox, SandboxConfig};
use robohost_tests::*;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("robohost-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn compiled_plugins_are_cached_and_a_damaged_artifact_is_recompiled() {
    let root = temp("cache");
    let config = SandboxConfig {
        cache_dir: Some(root.clone()),
        ..SandboxConfig::default()
    };
    let wasm = std::fs::read(plugin_path("bench")).unwrap();
    let deal = entity(r#"{"kind": "deal", "id": 1}"#);
    let ctx = context(&deal, vec![]);

    let sandbox = Sandbox::new(config.clone()).unwrap();
    let mut first = sandbox.load("bench", &wasm, &ctx).unwrap();
    first.accept();
    let artifacts: Vec<_> = walk(&root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert!(artifacts[0].to_string_lossy().contains(&first.digest().hex()));

    // A second process-like sandbox loads the artifact instead of compiling.
    let stored = std::fs::read(&artifacts[0]).unwrap();
    let again = Sandbox::new(config.clone())
        .unwrap()
        .load("bench", &wasm, &ctx)
        .unwrap();
    assert_eq!(again.robots(), first.robots());
    assert_eq!(
        std::fs::read(&artifacts[0]).unwrap(),
        stored,
        "a good artifact is not rewritten"
    );

    // A damaged artifact fails its checksum and is compiled again, never loaded.
    let mut damaged = stored.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(&artifacts[0], &damaged).unwrap();
    let sandbox = Sandbox::new(config).unwrap();
    let mut plugin = sandbox.load("bench", &wasm, &ctx).unwrap();
    plugin.accept();
    assert!(
        std::fs::read(&artifacts[0]).unwrap() == stored,
        "the damaged artifact is replaced"
    );
    let report = run(&sandbox, &plugin, "echo", &deal, &props(r#"{"text": "hi"}"#), ctx);
    assert_eq!(report.outcome, Outcome::Success);
    std::fs::remove_dir_all(root).unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn an_unreservable_pool_falls_back_to_on_demand_allocation() {
    // Two million 4 GiB memory slots cannot be reserved on any machine.
    let sandbox = Sandbox::new(SandboxConfig {
        pool_slots: 1_000_000,
        cache_dir: None,
        ..SandboxConfig::default()
    })
    .unwrap();
    assert!(!sandbox.is_pooling());
    let plugin = load(&sandbox, "bench");
    let deal = entity(r#"{"kind": "deal", "id": 1}"#);
    let report = run(
        &sandbox,
        &plugin,
        "echo",
        &deal,
        &props(r#"{"text": "hi"}"#),
        context(&deal, vec![]),
    );
    assert_eq!(report.outcome, Outcome::Success);
    assert!(sandbox_default_pools());
}

fn sandbox_default_pools() -> bool {
    sandbox(SandboxConfig::default()).is_pooling()
}

#[test]
fn a_rejected_upload_leaves_the_cache_as_it_was() {
    let root = temp("rejected");
    let config = SandboxConfig {
        cache_dir: Some(root.clone()),
        ..SandboxConfig::default()
    };
    let nobody = entity(r#"{"kind": "deal", "id": 1}"#);
    let ctx = context(&nobody, vec![]);
    let sandbox = Sandbox::new(config).unwrap();
    let before = files_and_bytes(&root);

    // A robot component uploaded as a trigger compiles, then fails to link.
    let robot = std::fs::read(plugin_path("bench")).unwrap();
    let err = sandbox
        .load_trigger("bench", &robot, &ctx)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("does not fit the trigger world"), "{err}");
    assert_eq!(
        files_and_bytes(&root),
        before,
        "nothing the rejected upload compiled stays"
    );

    // The same component loaded as what it is, and accepted, is cached.
    let mut plugin = sandbox.load("bench", &robot, &ctx).unwrap();
    plugin.accept();
    let (files, _) = files_and_bytes(&root);
    assert!(files > before.0 + 100, "{files} files: the artifact and its functions");
    assert_eq!(sandbox.compile_stats().compiles, 2);
    drop(plugin);
    std::fs::remove_dir_all(root).unwrap();
}

/// The compiled artifact of `wasm` in the cache under `root`.
fn artifact_of(root: &std::path::Path, wasm: &[u8]) -> std::path::PathBuf {
    let digest = robohost::domain::Digest::of(wasm).hex();
    walk(root)
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy() == format!("{digest}.cwasm"))
        })
        .unwrap_or_else(|| panic!("no artifact of {digest}"))
}

fn last_used(path: &std::path::Path, ago: std::time::Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - ago)
        .unwrap();
}

#[test]
fn the_cache_is_kept_under_its_size_least_recently_used_first() {
    let root = temp("evict-size");
    let config = SandboxConfig {
        cache_dir: Some(root.clone()),
        ..SandboxConfig::default()
    };
    let deal = entity(r#"{"kind": "deal", "id": 1}"#);
    let ctx = context(&deal, vec![]);
    let bench = std::fs::read(plugin_path("bench")).unwrap();
    let assign = std::fs::read(plugin_path("assign_by_amount")).unwrap();
    let first = Sandbox::new(config.clone()).unwrap();
    let mut running = first.load("bench", &bench, &ctx).unwrap();
    running.accept();
    first.load("assign", &assign, &ctx).unwrap().accept();

    // Everything used two hours ago, bench's artifact three, assign's now.
    let hour = std::time::Duration::from_secs(3600);
    for file in walk(&root) {
        last_used(&file, 2 * hour);
    }
    let (bench_artifact, assign_artifact) = (artifact_of(&root, &bench), artifact_of(&root, &assign));
    last_used(&bench_artifact, 3 * hour);
    last_used(&assign_artifact, std::time::Duration::ZERO);
    let (files, bytes) = files_and_bytes(&root);

    // A cap one byte short: the least recently used file goes, only it.
    let cap = bytes - 1;
    let sandbox = Sandbox::new(SandboxConfig {
        cache_bytes: cap,
        ..config.clone()
    })
    .unwrap();
    assert!(!bench_artifact.exists(), "the least recently used goes first");
    assert!(assign_artifact.exists());
    assert_eq!(files_and_bytes(&root).0, files - 1);
    assert!(files_and_bytes(&root).1 <= cap);

    // A plugin loaded before its artifact went still runs...
    let echo = props(r#"{"text": "hi"}"#);
    let report = run(&first, &running, "echo", &deal, &echo, ctx.clone());
    assert_eq!(report.outcome, Outcome::Success);
    // ...and loading it again compiles it again (its functions still
    // cached), keeps it, and stays under the cap.
    let mut again = sandbox.load("bench", &bench, &ctx).unwrap();
    again.accept();
    assert_eq!(sandbox.compile_stats().compiles, 1);
    assert!(bench_artifact.exists());
    assert!(files_and_bytes(&root).1 <= cap, "swept after it was kept");
    let report = run(&sandbox, &again, "echo", &deal, &echo, ctx);
    assert_eq!(report.outcome, Outcome::Success);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn compiled_code_unused_for_longer_than_the_age_is_removed() {
    let root = temp("evict-age");
    let config = SandboxConfig {
        cache_dir: Some(root.clone()),
        cache_max_age_days: 30,
        ..SandboxConfig::default()
    };
    let ctx = context(&entity(r#"{"kind": "deal", "id": 1}"#), vec![]);
    let bench = std::fs::read(plugin_path("bench")).unwrap();
    Sandbox::new(config.clone())
        .unwrap()
        .load("bench", &bench, &ctx)
        .unwrap()
        .accept();
    let day = std::time::Duration::from_secs(24 * 3600);
    for file in walk(&root) {
        last_used(&file, 31 * day);
    }
    let artifact = artifact_of(&root, &bench);
    last_used(&artifact, 29 * day);

    let sandbox = Sandbox::new(config).unwrap();
    assert_eq!(
        walk(&root),
        std::slice::from_ref(&artifact),
        "only what was used within 30 days stays"
    );
    // The hit marks it used now.
    sandbox.load("bench", &bench, &ctx).unwrap().accept();
    assert_eq!(sandbox.compile_stats().compiles, 0);
    let used = std::fs::metadata(&artifact).unwrap().modified().unwrap();
    assert!(used.elapsed().unwrap() < day);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn concurrent_loads_compile_one_at_a_time_under_the_cap() {
    let components =
        ["bench", "assign_by_amount", "related_totals"].map(|name| std::fs::read(plugin_path(name)).unwrap());
    let ctx = context(&entity(r#"{"kind": "deal", "id": 1}"#), vec![]);
    let peak = |cap: usize| {
        let root = temp(&format!("concurrency-{cap}"));
        let sandbox = Sandbox::new(SandboxConfig {
            cache_dir: Some(root.clone()),
            compile_concurrency: cap,
            ..SandboxConfig::default()
        })
        .unwrap();
        let start = std::sync::Barrier::new(components.len());
        std::thread::scope(|s| {
            for wasm in &components {
                let (sandbox, start, ctx) = (&sandbox, &start, ctx.clone());
                s.spawn(move || {
                    start.wait();
                    sandbox.load("plugin", wasm, &ctx).unwrap().accept();
                });
            }
        });
        std::fs::remove_dir_all(root).unwrap();
        let stats = sandbox.compile_stats();
        assert_eq!(stats.compiles, components.len() as u64);
        stats.peak
    };
    assert_eq!(peak(1), 1, "never two compiles at once");
    // The measure sees overlap where it is allowed.
    assert!(peak(3) > 1);
}
