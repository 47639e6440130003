//! The RF example robot in each guest language, against the Rust one in
//! the same run: `cargo bench -p robohost-tests --bench languages`.
//!
//! For each: the component's size; installing it (compiling, linking and
//! describing, as an install does; in this process) with no compiled
//! function cached, and again as another component sharing its code (the
//! same code with another custom section) once its functions are cached;
//! and the p50 of a run in a fresh sandbox.

use std::path::PathBuf;
use std::time::Instant;

use robohost::domain::Timestamp;
use robohost::runtime::{Plugin, Sandbox, SandboxConfig};
use robohost_tests::*;

const RUNS: usize = 200;

fn main() {
    let client = entity(
        r#"{"kind": "contact", "id": 7, "custom_fields": {"UF_PURCHASES": 3, "UF_LAST_PURCHASE": {"date": "2026-10-01"}}}"#,
    );
    let now = Timestamp(20_782 * 86_400_000);
    let languages: [(&str, PathBuf); 4] = [
        ("Rust", plugin_path("rf_segmentation")),
        ("C", c_plugin_path("rf_segmentation")),
        ("JavaScript", js_plugin_path("rf_segmentation")),
        ("Python", python_plugin_path("rf_segmentation")),
    ];
    println!("RF segmentation in each language (install: compile + link + describe; run: p50 of {RUNS})");
    println!("  language     size        install   install, functions cached   run p50   run / Rust");
    let mut rust_run = 0.0;
    for (language, path) in languages {
        let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let cache = std::env::temp_dir().join(format!("robohost-bench-languages-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let sandbox = Sandbox::new(SandboxConfig {
            cache_dir: Some(cache.clone()),
            ..SandboxConfig::default()
        })
        .expect("sandbox starts");
        let install = |wasm: &[u8]| -> (f64, Plugin) {
            let started = Instant::now();
            let mut plugin = sandbox.load("rf", wasm, &context(&client, vec![])).expect("loads");
            plugin.accept();
            (started.elapsed().as_secs_f64(), plugin)
        };
        let (cold, plugin) = install(&wasm);
        let mut variant = wasm.clone();
        variant.extend_from_slice(&[0, 8, 7]);
        variant.extend_from_slice(b"variant");
        let (warm, _) = install(&variant);

        let mut samples: Vec<f64> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let report = run_at(&sandbox, &plugin, &client, now);
                assert!(report.outcome.is_success(), "{language}: {:?}", report.outcome);
                started.elapsed().as_secs_f64()
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let p50 = samples[RUNS / 2];
        if language == "Rust" {
            rust_run = p50;
        }
        println!(
            "  {language:<10} {:>9.1} KB {:>8.2} s {:>14.2} s {:>18.3} ms {:>9.1}x",
            wasm.len() as f64 / 1024.0,
            cold,
            warm,
            p50 * 1e3,
            p50 / rust_run
        );
        let _ = std::fs::remove_dir_all(&cache);
    }
}

fn run_at(
    sandbox: &Sandbox,
    plugin: &Plugin,
    client: &robohost::domain::Entity,
    now: Timestamp,
) -> robohost::runtime::AttemptReport {
    let properties = props("{}");
    sandbox
        .run(
            plugin,
            robohost::runtime::RunRequest {
                robot: "rf_segment",
                entity: client,
                properties: &properties,
                cause: &robohost::domain::Cause::Manual { user: 1 },
                run_id: "bench",
                attempt: 1,
                idempotency_key: "bench",
                now,
                grants: robohost::runtime::Grants::ALL,
                fuel: None,
                context: context(client, vec![]),
            },
        )
        .expect("the robot exists")
}
