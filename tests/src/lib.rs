//! Helpers for robohost's end-to-end tests and benchmarks: the compiled
//! plugins (built from `plugins/` by this crate's build script), a sandbox and
//! entities.

pub mod db;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use robohost::domain::{Calendar, Cause, Entity, Fields, Timestamp};
use robohost::harness::JsonCrm;
use robohost::runtime::{Grants, Plugin, RunContext, RunReport, RunRequest, Sandbox, SandboxConfig};

/// The folder holding the compiled plugins.
pub fn plugins_dir() -> &'static Path {
    Path::new(env!("ROBOHOST_PLUGINS"))
}

/// The path of one compiled plugin, by crate name (`assign_by_amount`).
pub fn plugin_path(name: &str) -> PathBuf {
    plugins_dir().join(format!("{name}.wasm"))
}

/// Parses an entity written as JSON.
pub fn entity(json: &str) -> Entity {
    serde_json::from_str(json).expect("test entity JSON")
}

/// Parses properties written as a JSON object.
pub fn props(json: &str) -> Fields {
    serde_json::from_str(json).expect("test properties JSON")
}

/// A context serving `entity` and `related` from memory.
pub fn context(entity: &Entity, related: Vec<Entity>) -> RunContext {
    RunContext {
        data: Arc::new(JsonCrm::new(entity.clone(), related)),
        calendar: Arc::new(Calendar::default()),
        kv_namespace: "test".into(),
    }
}

/// A sandbox with `config`, compiling without a disk cache.
pub fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::new(SandboxConfig {
        cache_dir: None,
        ..config
    })
    .expect("sandbox starts")
}

/// Loads a compiled plugin into `sandbox`.
pub fn load(sandbox: &Sandbox, name: &str) -> Plugin {
    let wasm = std::fs::read(plugin_path(name)).unwrap_or_else(|e| panic!("reading plugin {name}: {e}"));
    let probe = entity(r#"{"kind": "deal", "id": 1}"#);
    sandbox
        .load(name, &wasm, &context(&probe, vec![]))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// A run of `robot` on `entity` with everything granted.
pub fn run(
    sandbox: &Sandbox,
    plugin: &Plugin,
    robot: &str,
    entity: &Entity,
    properties: &Fields,
    ctx: RunContext,
) -> RunReport {
    run_with(sandbox, plugin, robot, entity, properties, ctx, Grants::ALL, None)
}

#[allow(clippy::too_many_arguments)]
pub fn run_with(
    sandbox: &Sandbox,
    plugin: &Plugin,
    robot: &str,
    entity: &Entity,
    properties: &Fields,
    ctx: RunContext,
    grants: Grants,
    fuel: Option<u64>,
) -> RunReport {
    let cause = Cause::Manual { user: 1 };
    sandbox
        .run(
            plugin,
            RunRequest {
                robot,
                entity,
                properties,
                cause: &cause,
                run_id: "run-1",
                attempt: 1,
                idempotency_key: "run-1",
                now: Timestamp(1_764_057_600_000),
                grants,
                fuel,
                context: ctx,
            },
        )
        .unwrap_or_else(|e| panic!("run of {robot} could not start: {e}"))
}
