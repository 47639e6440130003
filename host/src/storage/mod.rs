//! Storage: the only code that speaks SQL.
//!
//! One [`Store`] over SQLite (the embedded default: a file in WAL mode) or
//! PostgreSQL (several host processes sharing one database). Each query is
//! written once and compiled for both backends by the [`on!`] macro, so each
//! runs on its own native sqlx driver; where the dialects differ (claiming
//! work) the backends have their own SQL. Migrations live in
//! `host/migrations/<backend>/`.
//!
//! Composite changes go through a [`Tx`], whose primitives the engine
//! combines so that a change and the events and runs it causes commit
//! together. Typed values are stored in their JSON form.

mod rows;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::domain::{
    Calendar, Constants, Department, Directory, Entity, EntityId, EntityKind, EntityRef, FieldValue, Pipeline,
    RobotBinding, Timestamp, TriggerBinding, User, Value,
};
pub use rows::{Claim, NewRun, RunRecord, RunStatus, StoredPlugin};

/// One value per backend.
pub(crate) enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// Runs `$body` with `$c` bound to the backend's own pool or transaction:
/// the body is written once and compiled for each backend.
macro_rules! on {
    ($backend:expr, $c:ident => $body:expr) => {
        match $backend {
            Backend::Sqlite($c) => $body,
            Backend::Postgres($c) => $body,
        }
    };
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("`{url}` is not a database URL; use sqlite://FILE or postgres://HOST/DB")]
    BadUrl { url: String },
    #[error("stored {what} is not valid: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain values serialise")
}

fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database.
#[derive(Clone)]
pub struct Store {
    /// Where reads go.
    db: Arc<Backend<SqlitePool, PgPool>>,
    /// Where writes go: on SQLite a pool of one connection, so writers queue
    /// here instead of sleeping in SQLite's busy handler; on PostgreSQL the
    /// same pool as reads.
    writer: Arc<Backend<SqlitePool, PgPool>>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://FILE`, `sqlite::memory:`, or
    /// `postgres://...`), creating a SQLite file when missing, and migrates it.
    pub async fn open(url: &str) -> Result<Store> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::BadUrl { url: url.into() })?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false);
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            SQLITE_MIGRATIONS.run(&writer).await?;
            // An in-memory database lives in its one connection.
            let reader = if url.contains(":memory:") {
                writer.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await?
            };
            Ok(Store {
                db: Arc::new(Backend::Sqlite(reader)),
                writer: Arc::new(Backend::Sqlite(writer)),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::BadUrl { url: url.into() })?;
            let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Ok(Store {
                db: Arc::new(Backend::Postgres(pool.clone())),
                writer: Arc::new(Backend::Postgres(pool)),
            })
        } else {
            Err(StoreError::BadUrl { url: url.into() })
        }
    }

    /// Connects to PostgreSQL without migrating, for administration such as
    /// creating a schema.
    pub async fn open_raw_postgres(url: &str) -> Result<Store> {
        let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::BadUrl { url: url.into() })?;
        let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await?;
        Ok(Store {
            db: Arc::new(Backend::Postgres(pool.clone())),
            writer: Arc::new(Backend::Postgres(pool)),
        })
    }

    /// Runs one statement that takes no parameters.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        Ok(on!(&*self.writer, c => sqlx::query(sql).execute(c).await.map(|r| r.rows_affected()))?)
    }

    pub fn is_postgres(&self) -> bool {
        matches!(*self.db, Backend::Postgres(_))
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx(match &*self.writer {
            Backend::Sqlite(pool) => Backend::Sqlite(pool.begin().await?),
            Backend::Postgres(pool) => Backend::Postgres(pool.begin().await?),
        }))
    }

    pub async fn pipelines(&self) -> Result<Vec<Pipeline>> {
        let specs: Vec<String> =
            on!(&*self.db, c => sqlx::query_scalar("SELECT spec FROM pipelines ORDER BY code").fetch_all(c).await)?;
        specs.iter().map(|s| from_json("pipeline", s)).collect()
    }

    pub async fn pipeline(&self, code: &str) -> Result<Option<Pipeline>> {
        let spec: Option<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT spec FROM pipelines WHERE code = $1").bind(code).fetch_optional(c).await)?;
        spec.map(|s| from_json("pipeline", &s)).transpose()
    }

    pub async fn directory(&self) -> Result<Directory> {
        let users: Vec<(i64, String, Option<i64>, bool)> = on!(&*self.db, c => sqlx::query_as("SELECT id, name, department, active FROM users ORDER BY id").fetch_all(c).await)?;
        let departments: Vec<(i64, String, Option<i64>, Option<i64>)> = on!(&*self.db, c => sqlx::query_as("SELECT id, name, head, parent FROM departments ORDER BY id").fetch_all(c).await)?;
        Ok(Directory {
            users: users
                .into_iter()
                .map(|(id, name, department, active)| User {
                    id: id as u64,
                    name,
                    department: department.map(|d| d as u64),
                    active,
                })
                .collect(),
            departments: departments
                .into_iter()
                .map(|(id, name, head, parent)| Department {
                    id: id as u64,
                    name,
                    head: head.map(|h| h as u64),
                    parent: parent.map(|p| p as u64),
                })
                .collect(),
        })
    }

    pub async fn constants(&self) -> Result<Constants> {
        let rows: Vec<(String, String)> =
            on!(&*self.db, c => sqlx::query_as("SELECT code, value FROM constants").fetch_all(c).await)?;
        rows.into_iter()
            .map(|(code, value)| Ok((code, from_json::<FieldValue>("constant", &value)?)))
            .collect()
    }

    pub async fn calendar(&self) -> Result<Calendar> {
        let text: Option<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT value FROM settings WHERE key = 'calendar'").fetch_optional(c).await)?;
        text.map(|t| from_json("calendar", &t))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    pub async fn robots_at(&self, pipeline: &str, stage: &str) -> Result<Vec<RobotBinding>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM robots WHERE pipeline = $1 AND stage = $2 ORDER BY id").bind(pipeline).bind(stage).fetch_all(c).await)?;
        rows.into_iter().map(|(id, spec)| rows::robot(id, &spec)).collect()
    }

    pub async fn all_robots(&self) -> Result<Vec<RobotBinding>> {
        let rows: Vec<(i64, String)> =
            on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM robots ORDER BY id").fetch_all(c).await)?;
        rows.into_iter().map(|(id, spec)| rows::robot(id, &spec)).collect()
    }

    pub async fn all_triggers(&self) -> Result<Vec<TriggerBinding>> {
        let rows: Vec<(i64, String)> =
            on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM triggers ORDER BY id").fetch_all(c).await)?;
        rows.into_iter().map(|(id, spec)| rows::trigger(id, &spec)).collect()
    }

    pub async fn robot(&self, id: u64) -> Result<Option<RobotBinding>> {
        let spec: Option<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT spec FROM robots WHERE id = $1").bind(id as i64).fetch_optional(c).await)?;
        spec.map(|s| rows::robot(id as i64, &s)).transpose()
    }

    pub async fn triggers_with_code(&self, code: &str) -> Result<Vec<TriggerBinding>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM triggers WHERE code = $1 ORDER BY id").bind(code).fetch_all(c).await)?;
        rows.into_iter().map(|(id, spec)| rows::trigger(id, &spec)).collect()
    }

    pub async fn triggers_at(&self, pipeline: &str, stage: &str) -> Result<Vec<TriggerBinding>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM triggers WHERE pipeline = $1 AND stage = $2 ORDER BY id").bind(pipeline).bind(stage).fetch_all(c).await)?;
        rows.into_iter().map(|(id, spec)| rows::trigger(id, &spec)).collect()
    }

    pub async fn plugins(&self) -> Result<Vec<StoredPlugin>> {
        let rows: Vec<rows::PluginRow> = on!(&*self.db, c => sqlx::query_as("SELECT name, digest, wasm, grants, webhook FROM plugins ORDER BY name").fetch_all(c).await)?;
        rows.into_iter().map(rows::plugin).collect()
    }

    pub async fn entity(&self, target: EntityRef) -> Result<Option<Entity>> {
        let row: Option<rows::EntityRow> = on!(&*self.db, c => sqlx::query_as(rows::ENTITY_SELECT).bind(target.kind.as_str()).bind(target.id as i64).fetch_optional(c).await)?;
        Ok(row.map(rows::entity).transpose()?.map(|(entity, _)| entity))
    }

    /// An entity and its current stage entry.
    pub async fn entity_with_entry(&self, target: EntityRef) -> Result<Option<(Entity, Option<u64>)>> {
        let row: Option<rows::EntityRow> = on!(&*self.db, c => sqlx::query_as(rows::ENTITY_SELECT).bind(target.kind.as_str()).bind(target.id as i64).fetch_optional(c).await)?;
        row.map(rows::entity).transpose()
    }

    /// Several entities with their current stage entries, in one query.
    pub async fn entities_with_entry(
        &self,
        targets: &[EntityRef],
    ) -> Result<std::collections::HashMap<EntityRef, (Entity, Option<u64>)>> {
        if targets.is_empty() {
            return Ok(Default::default());
        }
        let pairs: Vec<String> = (0..targets.len())
            .map(|i| format!("(CAST(${} AS TEXT), CAST(${} AS BIGINT))", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "SELECT {} FROM entities WHERE (kind, id) IN (VALUES {})",
            rows::ENTITY_COLUMNS,
            pairs.join(", ")
        );
        let found: Vec<rows::EntityRow> = on!(&*self.db, c => {
            let mut query = sqlx::query_as(&sql);
            for t in targets {
                query = query.bind(t.kind.as_str()).bind(t.id as i64);
            }
            query.fetch_all(c).await
        })?;
        found
            .into_iter()
            .map(|row| rows::entity(row).map(|(e, entry)| (e.reference(), (e, entry))))
            .collect()
    }

    /// Entities of one kind, by id, from `after`.
    pub async fn entities(&self, kind: EntityKind, after: u64, limit: u32) -> Result<Vec<Entity>> {
        let sql = format!(
            "SELECT {} FROM entities WHERE kind = $1 AND id > $2 ORDER BY id LIMIT $3",
            rows::ENTITY_COLUMNS
        );
        let found: Vec<rows::EntityRow> = on!(&*self.db, c => sqlx::query_as(&sql).bind(kind.as_str()).bind(after as i64).bind(limit as i64).fetch_all(c).await)?;
        found.into_iter().map(|row| rows::entity(row).map(|(e, _)| e)).collect()
    }

    /// The runs of one stage entry, in order.
    pub async fn entry_runs(&self, entry_id: u64) -> Result<Vec<RunRecord>> {
        let sql = format!("{} WHERE entry_id = $1 ORDER BY id", rows::RUN_SELECT);
        let found: Vec<rows::RunRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(entry_id as i64).fetch_all(c).await)?;
        found.into_iter().map(rows::run).collect()
    }

    /// Timeline comments of an entity, oldest first.
    pub async fn comments(&self, target: EntityRef) -> Result<Vec<(Timestamp, String)>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT at, text FROM timeline WHERE kind = $1 AND entity_id = $2 ORDER BY id").bind(target.kind.as_str()).bind(target.id as i64).fetch_all(c).await)?;
        Ok(rows.into_iter().map(|(at, text)| (Timestamp(at), text)).collect())
    }

    /// Notifications to a user, oldest first.
    pub async fn notifications(&self, user: u64) -> Result<Vec<(Timestamp, String)>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT at, text FROM notifications WHERE user_id = $1 ORDER BY id").bind(user as i64).fetch_all(c).await)?;
        Ok(rows.into_iter().map(|(at, text)| (Timestamp(at), text)).collect())
    }

    /// Events of an entity, oldest first: (event, data).
    pub async fn events(&self, target: EntityRef) -> Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, String)> = on!(&*self.db, c => sqlx::query_as("SELECT event, data FROM events WHERE kind = $1 AND entity_id = $2 ORDER BY id").bind(target.kind.as_str()).bind(target.id as i64).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(event, data)| Ok((event, from_json("event data", &data)?)))
            .collect()
    }

    /// The entities of `kind` linked to `target`.
    pub async fn related(&self, target: EntityRef, kind: EntityKind) -> Result<Vec<Entity>> {
        let sql = format!(
            "SELECT {} FROM entities WHERE (kind, id) IN (SELECT other_kind, other_id FROM links WHERE kind = $1 AND id = $2 AND other_kind = $3) ORDER BY id",
            rows::ENTITY_COLUMNS
        );
        let found: Vec<rows::EntityRow> = on!(&*self.db, c => sqlx::query_as(&sql).bind(target.kind.as_str()).bind(target.id as i64).bind(kind.as_str()).fetch_all(c).await)?;
        found.into_iter().map(|row| rows::entity(row).map(|(e, _)| e)).collect()
    }

    /// Entities of `kind` whose field `code` holds `value` (or has it in its list).
    pub async fn find(&self, kind: EntityKind, code: &str, value: &Value, limit: u32) -> Result<Vec<Entity>> {
        // The JSON text of the value narrows the scan; the typed check decides.
        let needle = format!(
            "%{}%",
            value
                .to_json()
                .to_string()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let sql = format!(
            "SELECT {} FROM entities WHERE kind = $1 AND (fields LIKE $2 ESCAPE '\\' OR custom_fields LIKE $2 ESCAPE '\\') ORDER BY id",
            rows::ENTITY_COLUMNS
        );
        let found: Vec<rows::EntityRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(kind.as_str()).bind(&needle).fetch_all(c).await)?;
        let found = found
            .into_iter()
            .map(|row| rows::entity(row).map(|(e, _)| e))
            .collect::<Result<Vec<_>>>()?;
        Ok(found
            .into_iter()
            .filter(|e| match e.field(code) {
                Some(FieldValue::Single(v)) => v == value,
                Some(FieldValue::List(vs)) => vs.contains(value),
                _ => false,
            })
            .take(limit as usize)
            .collect())
    }

    pub async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            on!(&*self.db, c => sqlx::query_scalar("SELECT value FROM kv WHERE namespace = $1 AND key = $2").bind(namespace).bind(key).fetch_optional(c).await)?,
        )
    }

    pub async fn run(&self, id: u64) -> Result<Option<RunRecord>> {
        let sql = format!("{} WHERE id = $1", rows::RUN_SELECT);
        let row: Option<rows::RunRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(id as i64).fetch_optional(c).await)?;
        row.map(rows::run).transpose()
    }

    /// Runs on one entity, oldest first; all runs when `entity` is `None`.
    pub async fn runs(&self, entity: Option<EntityRef>, limit: u32) -> Result<Vec<RunRecord>> {
        let (kind, id) = entity.map(|e| (e.kind.as_str(), e.id as i64)).unwrap_or(("", -1));
        let sql = format!(
            "{} WHERE ($1 = '' OR (kind = $1 AND entity_id = $2)) ORDER BY id LIMIT $3",
            rows::RUN_SELECT
        );
        let found: Vec<rows::RunRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(kind).bind(id).bind(limit as i64).fetch_all(c).await)?;
        found.into_iter().map(rows::run).collect()
    }

    /// Entities in a pipeline, by id.
    pub async fn entities_in(&self, pipeline: &str) -> Result<Vec<Entity>> {
        let sql = format!(
            "SELECT {} FROM entities WHERE pipeline = $1 ORDER BY kind, id",
            rows::ENTITY_COLUMNS
        );
        let found: Vec<rows::EntityRow> = on!(&*self.db, c => sqlx::query_as(&sql).bind(pipeline).fetch_all(c).await)?;
        found.into_iter().map(|row| rows::entity(row).map(|(e, _)| e)).collect()
    }

    /// When a scheduled trigger fires next, if known.
    pub async fn schedule_next(&self, trigger_id: u64) -> Result<Option<Timestamp>> {
        let at: Option<i64> = on!(&*self.db, c => sqlx::query_scalar("SELECT next_at FROM schedules WHERE trigger_id = $1")
            .bind(trigger_id as i64).fetch_optional(c).await)?;
        Ok(at.map(Timestamp))
    }

    /// Moves a trigger's next firing from `seen` (`None`: not yet known) to
    /// `next`; `false` when another process moved it first.
    pub async fn advance_schedule(&self, trigger_id: u64, seen: Option<Timestamp>, next: Timestamp) -> Result<bool> {
        let n = match seen {
            None => {
                on!(&*self.writer, c => sqlx::query("INSERT INTO schedules (trigger_id, next_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(trigger_id as i64).bind(next.0).execute(c).await.map(|r| r.rows_affected()))?
            }
            Some(seen) => {
                on!(&*self.writer, c => sqlx::query("UPDATE schedules SET next_at = $1 WHERE trigger_id = $2 AND next_at = $3")
                .bind(next.0).bind(trigger_id as i64).bind(seen.0).execute(c).await.map(|r| r.rows_affected()))?
            }
        };
        Ok(n == 1)
    }

    /// The role of the API token with this hash, if any.
    pub async fn token_role(&self, hash: &str) -> Result<Option<String>> {
        Ok(
            on!(&*self.db, c => sqlx::query_scalar("SELECT role FROM api_tokens WHERE hash = $1").bind(hash).fetch_optional(c).await)?,
        )
    }

    /// Whether any API token exists.
    pub async fn has_tokens(&self) -> Result<bool> {
        let n: i64 = on!(&*self.db, c => sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens").fetch_one(c).await)?;
        Ok(n > 0)
    }

    /// Stores an API token by its hash.
    pub async fn add_token(&self, hash: &str, name: &str, role: &str, at: Timestamp) -> Result<()> {
        on!(&*self.writer, c => sqlx::query("INSERT INTO api_tokens (hash, name, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(hash).bind(name).bind(role).bind(at.0).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Counts runs by status, for tests and health.
    pub async fn count_runs(&self, status: RunStatus) -> Result<u64> {
        let n: i64 = on!(&*self.db, c => sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE status = $1").bind(status.as_str()).fetch_one(c).await)?;
        Ok(n as u64)
    }

    /// The earliest due time of queued work, and of leases that expire.
    pub async fn next_due(&self) -> Result<Option<Timestamp>> {
        let at: Option<i64> = on!(&*self.db, c => sqlx::query_scalar(
            "SELECT MIN(t) FROM (SELECT MIN(due_at) AS t FROM runs WHERE status = 'queued' \
             UNION ALL SELECT MIN(lease_until) AS t FROM runs WHERE status = 'leased') AS due"
        ).fetch_one(c).await)?;
        Ok(at.map(Timestamp))
    }

    /// Leases up to `limit` runs that are due (or whose lease expired) to
    /// `owner` until `until`. Each claim bumps the run's fence, so a worker
    /// whose lease was taken over cannot finish the run.
    pub async fn claim(&self, owner: &str, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<Claim>> {
        // PostgreSQL skips rows other processes hold; SQLite has one writer
        // at a time, so the UPDATE itself is the lock.
        let lock = match &*self.writer {
            Backend::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE runs SET status = 'leased', lease_owner = $1, lease_until = $2, attempts = attempts + 1, fence = fence + 1 \
             WHERE id IN (SELECT id FROM runs WHERE (status = 'queued' AND due_at <= $3) OR (status = 'leased' AND lease_until <= $3) \
                          ORDER BY due_at, id LIMIT $4 {lock}) {}",
            rows::CLAIM_RETURNING
        );
        let found: Vec<rows::ClaimRow> = on!(&*self.writer, c => sqlx::query_as(&sql)
            .bind(owner).bind(until.0).bind(now.0).bind(limit as i64).fetch_all(c).await)?;
        found.into_iter().map(rows::claim).collect()
    }

    /// Extends the leases `owner` still holds on `runs`.
    pub async fn heartbeat(&self, owner: &str, runs: &[u64], until: Timestamp) -> Result<()> {
        // One statement per run keeps the SQL the same on both backends; a
        // batch is at most `engine.batch` runs, every third of a lease.
        for id in runs {
            on!(&*self.writer, c => sqlx::query("UPDATE runs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'leased'").bind(until.0).bind(*id as i64).bind(owner).execute(c).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }
}

/// A transaction: the primitives the engine combines into one atomic change.
pub struct Tx(Backend<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>);

impl Tx {
    pub async fn commit(self) -> Result<()> {
        on!(self.0, t => t.commit().await)?;
        Ok(())
    }

    pub async fn put_pipeline(&mut self, pipeline: &Pipeline) -> Result<()> {
        let spec = to_json(pipeline);
        on!(&mut self.0, t => sqlx::query("INSERT INTO pipelines (code, spec) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET spec = excluded.spec").bind(&pipeline.code).bind(&spec).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn put_user(&mut self, user: &User) -> Result<()> {
        on!(&mut self.0, t => sqlx::query("INSERT INTO users (id, name, department, active) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, department = excluded.department, active = excluded.active")
            .bind(user.id as i64).bind(&user.name).bind(user.department.map(|d| d as i64)).bind(user.active).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn put_department(&mut self, d: &Department) -> Result<()> {
        on!(&mut self.0, t => sqlx::query("INSERT INTO departments (id, name, head, parent) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, head = excluded.head, parent = excluded.parent")
            .bind(d.id as i64).bind(&d.name).bind(d.head.map(|h| h as i64)).bind(d.parent.map(|p| p as i64)).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_constant(&mut self, code: &str, value: &FieldValue) -> Result<()> {
        let value = to_json(value);
        on!(&mut self.0, t => sqlx::query("INSERT INTO constants (code, value) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET value = excluded.value").bind(code).bind(&value).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_calendar(&mut self, calendar: &Calendar) -> Result<()> {
        let value = to_json(calendar);
        on!(&mut self.0, t => sqlx::query("INSERT INTO settings (key, value) VALUES ('calendar', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value").bind(&value).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn put_plugin(&mut self, plugin: &StoredPlugin, at: Timestamp) -> Result<()> {
        let grants = to_json(&plugin.grants);
        on!(&mut self.0, t => sqlx::query("INSERT INTO plugins (name, digest, wasm, grants, installed_at, webhook) VALUES ($1, $2, $3, $4, $5, $6) \
            ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, wasm = excluded.wasm, grants = excluded.grants, installed_at = excluded.installed_at, webhook = excluded.webhook")
            .bind(&plugin.name).bind(plugin.digest.to_string()).bind(&plugin.wasm).bind(&grants).bind(at.0).bind(&plugin.webhook).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores a robot binding; its `id` is assigned here.
    pub async fn add_robot(&mut self, robot: &RobotBinding) -> Result<u64> {
        let spec = to_json(robot);
        let id: i64 = on!(&mut self.0, t => sqlx::query_scalar("INSERT INTO robots (pipeline, stage, spec) VALUES ($1, $2, $3) RETURNING id")
            .bind(&robot.pipeline).bind(&robot.stage).bind(&spec).fetch_one(&mut **t).await)?;
        Ok(id as u64)
    }

    /// Stores a trigger binding; its `id` is assigned here.
    pub async fn add_trigger(&mut self, trigger: &TriggerBinding) -> Result<u64> {
        let spec = to_json(trigger);
        let id: i64 = on!(&mut self.0, t => sqlx::query_scalar("INSERT INTO triggers (pipeline, stage, code, spec) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(&trigger.pipeline).bind(&trigger.stage).bind(&trigger.code).bind(&spec).fetch_one(&mut **t).await)?;
        Ok(id as u64)
    }

    /// Reserves `count` consecutive ids for entities of `kind`; returns the first.
    pub async fn reserve_ids(&mut self, kind: EntityKind, count: u64) -> Result<EntityId> {
        let next: i64 = on!(&mut self.0, t => sqlx::query_scalar(
            "INSERT INTO id_sequences (kind, next) VALUES ($1, 1 + $2) ON CONFLICT (kind) DO UPDATE SET next = id_sequences.next + $2 RETURNING next"
        ).bind(kind.as_str()).bind(count as i64).fetch_one(&mut **t).await)?;
        Ok((next - count as i64) as u64)
    }

    /// The entity and its current stage entry, locked for this transaction
    /// on PostgreSQL (SQLite's single writer already serialises changes).
    pub async fn entity_for_update(&mut self, target: EntityRef) -> Result<Option<(Entity, Option<u64>)>> {
        let sql = match &self.0 {
            Backend::Sqlite(_) => rows::ENTITY_SELECT.to_owned(),
            Backend::Postgres(_) => format!("{} FOR UPDATE", rows::ENTITY_SELECT),
        };
        let row: Option<rows::EntityRow> = on!(&mut self.0, t => sqlx::query_as(&sql).bind(target.kind.as_str()).bind(target.id as i64).fetch_optional(&mut **t).await)?;
        row.map(rows::entity).transpose()
    }

    /// Inserts or replaces an entity.
    pub async fn put_entity(&mut self, e: &Entity, entry_id: Option<u64>) -> Result<()> {
        let (fields, custom) = (to_json(&e.fields), to_json(&e.custom_fields));
        on!(&mut self.0, t => sqlx::query(
            "INSERT INTO entities (kind, id, pipeline, stage, entry_id, responsible, fields, custom_fields, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (kind, id) DO UPDATE SET pipeline = excluded.pipeline, \
             stage = excluded.stage, entry_id = excluded.entry_id, responsible = excluded.responsible, fields = excluded.fields, \
             custom_fields = excluded.custom_fields, updated_at = excluded.updated_at"
        ).bind(e.kind.as_str()).bind(e.id as i64).bind(&e.pipeline).bind(&e.stage).bind(entry_id.map(|x| x as i64))
         .bind(e.responsible.map(|u| u as i64)).bind(&fields).bind(&custom).bind(e.created_at.0).bind(e.updated_at.0)
         .execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Links two entities both ways.
    pub async fn link(&mut self, a: EntityRef, b: EntityRef) -> Result<()> {
        for (x, y) in [(a, b), (b, a)] {
            on!(&mut self.0, t => sqlx::query("INSERT INTO links (kind, id, other_kind, other_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(x.kind.as_str()).bind(x.id as i64).bind(y.kind.as_str()).bind(y.id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    pub async fn open_entry(&mut self, target: EntityRef, pipeline: &str, stage: &str, at: Timestamp) -> Result<u64> {
        let id: i64 = on!(&mut self.0, t => sqlx::query_scalar("INSERT INTO stage_entries (kind, entity_id, pipeline, stage, entered_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(target.kind.as_str()).bind(target.id as i64).bind(pipeline).bind(stage).bind(at.0).fetch_one(&mut **t).await)?;
        Ok(id as u64)
    }

    /// Closes a stage entry and cancels its runs that have not started.
    pub async fn close_entry(&mut self, entry_id: u64, at: Timestamp) -> Result<u64> {
        on!(&mut self.0, t => sqlx::query("UPDATE stage_entries SET left_at = $1 WHERE id = $2").bind(at.0).bind(entry_id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        let cancelled = on!(&mut self.0, t => sqlx::query("UPDATE runs SET status = 'cancelled', finished_at = $1 WHERE entry_id = $2 AND status IN ('waiting', 'queued')")
            .bind(at.0).bind(entry_id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(cancelled)
    }

    pub async fn insert_event(
        &mut self,
        target: EntityRef,
        event: &str,
        data: &serde_json::Value,
        at: Timestamp,
    ) -> Result<()> {
        let data = data.to_string();
        on!(&mut self.0, t => sqlx::query("INSERT INTO events (kind, entity_id, event, data, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(target.kind.as_str()).bind(target.id as i64).bind(event).bind(&data).bind(at.0).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert_run(&mut self, run: &NewRun) -> Result<u64> {
        let cause = to_json(&run.cause);
        let id: i64 = on!(&mut self.0, t => sqlx::query_scalar(
            "INSERT INTO runs (entry_id, robot_id, kind, entity_id, status, cause, due_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
        ).bind(run.entry_id as i64).bind(run.robot_id as i64).bind(run.entity.kind.as_str()).bind(run.entity.id as i64)
         .bind(run.status.as_str()).bind(&cause).bind(run.due_at.0).bind(run.created_at.0).fetch_one(&mut **t).await)?;
        Ok(id as u64)
    }

    /// Queues the waiting run of `robot_id` in a stage entry, due at `due_at`.
    pub async fn release_waiting(&mut self, entry_id: u64, robot_id: u64, due_at: Timestamp) -> Result<bool> {
        let n = on!(&mut self.0, t => sqlx::query("UPDATE runs SET status = 'queued', due_at = $1 WHERE entry_id = $2 AND robot_id = $3 AND status = 'waiting'")
            .bind(due_at.0).bind(entry_id as i64).bind(robot_id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Ends a leased run with `status` if its fence still holds; `false` when
    /// another worker has taken it over, and nothing must be applied.
    pub async fn finish_run(
        &mut self,
        id: u64,
        fence: u64,
        status: RunStatus,
        report: &serde_json::Value,
        at: Timestamp,
    ) -> Result<bool> {
        let report = report.to_string();
        let n = on!(&mut self.0, t => sqlx::query(
            "UPDATE runs SET status = $1, report = $2, finished_at = $3, lease_owner = NULL, lease_until = NULL WHERE id = $4 AND fence = $5 AND status = 'leased'"
        ).bind(status.as_str()).bind(&report).bind(at.0).bind(id as i64).bind(fence as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Puts a leased run back in the queue for another attempt at `due_at`.
    pub async fn retry_run(
        &mut self,
        id: u64,
        fence: u64,
        due_at: Timestamp,
        report: &serde_json::Value,
    ) -> Result<bool> {
        let report = report.to_string();
        let n = on!(&mut self.0, t => sqlx::query(
            "UPDATE runs SET status = 'queued', due_at = $1, report = $2, lease_owner = NULL, lease_until = NULL WHERE id = $3 AND fence = $4 AND status = 'leased'"
        ).bind(due_at.0).bind(&report).bind(id as i64).bind(fence as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The stage entry's runs by robot, with their status and report.
    pub async fn entry_runs(&mut self, entry_id: u64) -> Result<Vec<RunRecord>> {
        let sql = format!("{} WHERE entry_id = $1 ORDER BY id", rows::RUN_SELECT);
        let found: Vec<rows::RunRow> =
            on!(&mut self.0, t => sqlx::query_as(&sql).bind(entry_id as i64).fetch_all(&mut **t).await)?;
        found.into_iter().map(rows::run).collect()
    }

    pub async fn add_comment(
        &mut self,
        target: EntityRef,
        text: &str,
        run_id: Option<u64>,
        at: Timestamp,
    ) -> Result<()> {
        on!(&mut self.0, t => sqlx::query("INSERT INTO timeline (kind, entity_id, text, run_id, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(target.kind.as_str()).bind(target.id as i64).bind(text).bind(run_id.map(|r| r as i64)).bind(at.0).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn add_notification(
        &mut self,
        user: u64,
        text: &str,
        about: Option<EntityRef>,
        run_id: Option<u64>,
        at: Timestamp,
    ) -> Result<()> {
        on!(&mut self.0, t => sqlx::query("INSERT INTO notifications (user_id, text, about_kind, about_id, run_id, at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(user as i64).bind(text).bind(about.map(|a| a.kind.as_str())).bind(about.map(|a| a.id as i64)).bind(run_id.map(|r| r as i64)).bind(at.0)
            .execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn kv_set(&mut self, namespace: &str, key: &str, value: Option<&[u8]>) -> Result<()> {
        match value {
            Some(value) => {
                on!(&mut self.0, t => sqlx::query("INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value")
                .bind(namespace).bind(key).bind(value).execute(&mut **t).await.map(|r| r.rows_affected()))?
            }
            None => {
                on!(&mut self.0, t => sqlx::query("DELETE FROM kv WHERE namespace = $1 AND key = $2").bind(namespace).bind(key).execute(&mut **t).await.map(|r| r.rows_affected()))?
            }
        };
        Ok(())
    }
}
