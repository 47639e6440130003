//! Engines on real databases for the conformance suite: a fresh SQLite file,
//! or a fresh schema in the PostgreSQL at `ROBOHOST_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/test`). An unreachable
//! PostgreSQL fails the test: it is never skipped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use robohost::domain::Timestamp;
use robohost::engine::{Engine, EngineConfig, ManualClock};
use robohost::runtime::{Sandbox, SandboxConfig};
use robohost::storage::Store;

/// Which database a conformance test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The PostgreSQL the tests use.
pub fn postgres_url() -> String {
    std::env::var("ROBOHOST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL of a new, empty database of kind `db`: a SQLite file in the temp
/// folder, or a new schema of the test PostgreSQL.
pub async fn fresh_url(db: Db) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let name = format!("robohost_t{}_{n}", std::process::id());
    match db {
        Db::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.sqlite"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            format!("sqlite://{}", path.display())
        }
        Db::Postgres => {
            let url = postgres_url();
            let admin = Store::open_raw_postgres(&url)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable: {e}"));
            admin
                .execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await
                .expect("dropping the schema");
            admin
                .execute(&format!("CREATE SCHEMA {name}"))
                .await
                .expect("creating the schema");
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-c%20search_path%3D{name}")
        }
    }
}

/// A new, empty, migrated database of kind `db`.
pub async fn store(db: Db) -> Store {
    let url = fresh_url(db).await;
    Store::open(&url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"))
}

/// One sandbox for the whole test binary: each reserves its pool.
pub fn shared_sandbox() -> Arc<Sandbox> {
    static SANDBOX: OnceLock<Arc<Sandbox>> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            Arc::new(
                Sandbox::new(SandboxConfig {
                    cache_dir: None,
                    ..SandboxConfig::default()
                })
                .expect("sandbox"),
            )
        })
        .clone()
}

/// An engine on a new database with a clock standing at `at`.
pub async fn engine(db: Db, at: Timestamp, config: EngineConfig) -> (Arc<Engine>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at));
    let engine = Engine::new(store(db).await, shared_sandbox(), clock.clone(), config)
        .await
        .expect("engine starts");
    (engine, clock)
}
