//! Helpers for robohost's end-to-end tests and benchmarks: the compiled
//! plugins (built from `plugins/` by this crate's build script), a sandbox and
//! entities; engines on both databases ([`db`]); a server and client for the
//! HTTP API ([`http`]); the data the tests share ([`fixtures`]); snapshot
//! files of error messages ([`ui`]).

pub mod db;
pub mod fixtures;
pub mod http;
pub mod ui;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use robohost::domain::{Calendar, Cause, Entity, Fields, Timestamp};
use robohost::harness::JsonCrm;
use robohost::runtime::{AttemptReport, Grants, Plugin, RunContext, RunRequest, Sandbox, SandboxConfig};

/// The folder holding the compiled plugins.
pub fn plugins_dir() -> &'static Path {
    Path::new(env!("ROBOHOST_PLUGINS"))
}

/// The path of one compiled plugin, by crate name (`assign_by_amount`).
pub fn plugin_path(name: &str) -> PathBuf {
    plugins_dir().join(format!("{name}.wasm"))
}

/// The component the build script made of the Python robot `name`
/// (`plugins/python/NAME/app.py`).
pub fn python_plugin_path(name: &str) -> PathBuf {
    PathBuf::from(env!("ROBOHOST_PYTHON_PLUGINS")).join(format!("{name}.wasm"))
}

/// The component the build script made of the JavaScript robot `name`
/// (`plugins/js/NAME/robot.js`).
pub fn js_plugin_path(name: &str) -> PathBuf {
    PathBuf::from(env!("ROBOHOST_JS_PLUGINS")).join(format!("{name}.wasm"))
}

/// The component the build script made of the C robot `name`
/// (`plugins/c/NAME/*.c`).
pub fn c_plugin_path(name: &str) -> PathBuf {
    PathBuf::from(env!("ROBOHOST_C_PLUGINS")).join(format!("{name}.wasm"))
}

/// The regular files under `dir` (none when it does not exist) and their
/// total size: what a compile cache holds.
pub fn files_and_bytes(dir: &Path) -> (usize, u64) {
    let mut found = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        let (files, bytes) = if path.is_dir() {
            files_and_bytes(&path)
        } else {
            (1, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0))
        };
        found = (found.0 + files, found.1 + bytes);
    }
    found
}

/// The peak resident memory of this process so far, in KiB.
pub fn peak_kib() -> u64 {
    status_kib("VmHWM")
}

/// The resident memory of this process now, in KiB.
pub fn resident_kib() -> u64 {
    status_kib("VmRSS")
}

/// A size in KiB from `/proc/self/status`, by its key.
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|rest| rest.starts_with(':')))
        .unwrap_or_else(|| panic!("{key} line"));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} value"))
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
    let mut plugin = sandbox
        .load(name, &wasm, &context(&probe, vec![]))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    plugin.accept();
    plugin
}

/// A run of `robot` on `entity` with everything granted.
pub fn run(
    sandbox: &Sandbox,
    plugin: &Plugin,
    robot: &str,
    entity: &Entity,
    properties: &Fields,
    ctx: RunContext,
) -> AttemptReport {
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
) -> AttemptReport {
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

/// Defines each scenario `async fn name(db: Db)` as two tests, `sqlite::name`
/// and `postgres::name`: the conformance suite runs on both databases.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::db::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::db::Db::Postgres).await })*
        }
    };
}

/// Serves the `bench.echo` robot as a webhook on loopback, as a Bitrix24 app
/// robot would answer: it sets `UF_ECHO` to the `text` property and returns
/// it. Returns the URL to post runs to.
pub async fn echo_webhook() -> String {
    use axum::{Json, Router, routing::post};
    let app = Router::new().route(
        "/robot",
        post(|Json(run): Json<serde_json::Value>| async move {
            let target = serde_json::json!({ "kind": run["entity"]["kind"], "id": run["entity"]["id"] });
            Json(serde_json::json!({
                "effects": [{"effect": "set-fields", "target": target, "fields": {"UF_ECHO": run["properties"]["text"]}}],
                "returns": {"echo": run["properties"]["text"]},
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/robot")
}

/// Declares custom fields as a portal's admin does before robots or people
/// write them: `(kind, code, type)`, such as `("deal", "UF_ECHO", "text")`.
pub async fn declare(engine: &robohost::engine::Engine, fields: &[(&str, &str, &str)]) {
    for (kind, code, value_type) in fields {
        let decl = serde_json::json!({"kind": kind, "code": code, "type": value_type});
        let decl = serde_json::from_value(decl).unwrap();
        engine
            .declare_field(&decl)
            .await
            .unwrap_or_else(|e| panic!("declaring {code}: {e}"));
    }
}
