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

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::domain::{
    Calendar, ConstantDecl, Constants, Department, Directory, Entity, EntityKind, EntityRef, FieldDecl, FieldValue,
    Fields, Matching, Pipeline, RobotBinding, Run, Timestamp, TriggerBinding, User, Value, phone_digits,
};
pub use rows::{Attempted, Claim, NewRun, OutboxMessage, StoredPackage, StoredPlugin, StoredToken};

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

mod accounts;
mod inbound;
mod jobs;
mod runs;
mod templates;
mod tx;

pub use accounts::{StoredAccount, StoredSession};
pub use jobs::NewRow;
pub use runs::RunFilter;
pub use tx::{RunEnd, Tx};

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
    #[cfg(feature = "test-support")]
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

    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx::new(match &*self.writer {
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
        type UserRow = (i64, String, Option<i64>, bool, Option<String>, Option<String>);
        let users: Vec<UserRow> = on!(&*self.db, c => sqlx::query_as("SELECT id, name, department, active, away, hours FROM users ORDER BY id").fetch_all(c).await)?;
        let departments: Vec<(i64, String, Option<i64>, Option<i64>)> = on!(&*self.db, c => sqlx::query_as("SELECT id, name, head, parent FROM departments ORDER BY id").fetch_all(c).await)?;
        Ok(Directory {
            users: users
                .into_iter()
                .map(|(id, name, department, active, away, hours)| {
                    Ok(User {
                        id: id as u64,
                        name,
                        department: department.map(|d| d as u64),
                        active,
                        away: away.map(|a| from_json("a user's absence", &a)).transpose()?,
                        hours: hours.map(|h| from_json("a user's working hours", &h)).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
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

    /// The active version of package `name`, if installed.
    pub async fn active_package(&self, name: &str) -> Result<Option<StoredPackage>> {
        let row: Option<rows::PackageRow> = on!(&*self.db, c => sqlx::query_as(
            "SELECT name, version, publisher, signed, manifest, archive, approved FROM packages WHERE name = $1 AND active"
        ).bind(name).fetch_optional(c).await)?;
        row.map(rows::package).transpose()
    }

    /// A setting's JSON form, if set.
    pub async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(c).await)?;
        text.map(|t| from_json("setting", &t)).transpose()
    }

    /// The active version of every installed package, by name.
    pub async fn packages(&self) -> Result<Vec<StoredPackage>> {
        let rows: Vec<rows::PackageRow> = on!(&*self.db, c => sqlx::query_as(
            "SELECT name, version, publisher, signed, manifest, archive, approved FROM packages WHERE active ORDER BY name"
        ).fetch_all(c).await)?;
        rows.into_iter().map(rows::package).collect()
    }

    /// The version of package `name` installed last before the active one.
    pub async fn previous_package(&self, name: &str) -> Result<Option<StoredPackage>> {
        let row: Option<rows::PackageRow> = on!(&*self.db, c => sqlx::query_as(
            "SELECT name, version, publisher, signed, manifest, archive, approved FROM packages WHERE name = $1 AND NOT active \
             ORDER BY installed_at DESC, version DESC LIMIT 1"
        ).bind(name).fetch_optional(c).await)?;
        row.map(rows::package).transpose()
    }

    /// The declared custom fields, by kind and code.
    pub async fn custom_fields(&self) -> Result<Vec<FieldDecl>> {
        let specs: Vec<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT spec FROM custom_fields ORDER BY kind, code").fetch_all(c).await)?;
        specs.iter().map(|s| from_json("custom field", s)).collect()
    }

    /// The declared global constants, by code.
    pub async fn constant_decls(&self) -> Result<Vec<ConstantDecl>> {
        let specs: Vec<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT spec FROM constant_decls ORDER BY code").fetch_all(c).await)?;
        specs.iter().map(|s| from_json("constant declaration", s)).collect()
    }

    pub async fn calendar(&self) -> Result<Calendar> {
        let text: Option<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT value FROM settings WHERE key = 'calendar'").fetch_optional(c).await)?;
        text.map(|t| from_json("calendar", &t))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// A stage's robots, in their order.
    pub async fn robots_at(&self, pipeline: &str, stage: &str) -> Result<Vec<RobotBinding>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM robots WHERE pipeline = $1 AND stage = $2 ORDER BY position, id").bind(pipeline).bind(stage).fetch_all(c).await)?;
        rows.into_iter().map(|(id, spec)| rows::robot(id, &spec)).collect()
    }

    /// Every robot, each stage's in their order.
    pub async fn all_robots(&self) -> Result<Vec<RobotBinding>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM robots ORDER BY position, id").fetch_all(c).await)?;
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

    pub async fn triggers_at(&self, pipeline: &str, stage: &str) -> Result<Vec<TriggerBinding>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec FROM triggers WHERE pipeline = $1 AND stage = $2 ORDER BY id").bind(pipeline).bind(stage).fetch_all(c).await)?;
        rows.into_iter().map(|(id, spec)| rows::trigger(id, &spec)).collect()
    }

    pub async fn plugins(&self) -> Result<Vec<StoredPlugin>> {
        let rows: Vec<rows::PluginRow> = on!(&*self.db, c => sqlx::query_as("SELECT name, digest, wasm, grants, webhook, fuel, version, world FROM plugins ORDER BY name").fetch_all(c).await)?;
        rows.into_iter().map(rows::plugin).collect()
    }

    pub async fn entity(&self, target: EntityRef) -> Result<Option<Entity>> {
        let row: Option<rows::EntityRow> = on!(&*self.db, c => sqlx::query_as(rows::ENTITY_SELECT).bind(target.kind.as_str()).bind(target.id as i64).fetch_optional(c).await)?;
        Ok(row.map(rows::entity).transpose()?.map(|(entity, _)| entity))
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

    /// The runs of stage entry number `entry` of `entity`, in order.
    pub async fn entry_runs(&self, entity: EntityRef, entry: u64) -> Result<Vec<Run>> {
        let sql = format!(
            "{} WHERE kind = $1 AND entity_id = $2 AND entry_id = $3 ORDER BY id",
            rows::RUN_SELECT
        );
        let found: Vec<rows::RunRow> = on!(&*self.db, c => sqlx::query_as(&sql).bind(entity.kind.as_str()).bind(entity.id as i64).bind(entry as i64).fetch_all(c).await)?;
        found.into_iter().map(rows::run).collect()
    }

    /// Timeline comments of an entity, oldest first, each with the run of
    /// the robot that wrote it, if one did.
    pub async fn comments(&self, target: EntityRef) -> Result<Vec<(Timestamp, String, Option<u64>)>> {
        let rows: Vec<(i64, String, Option<i64>)> = on!(&*self.db, c => sqlx::query_as("SELECT at, text, run_id FROM timeline WHERE kind = $1 AND entity_id = $2 ORDER BY id").bind(target.kind.as_str()).bind(target.id as i64).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .map(|(at, text, run)| (Timestamp(at), text, run.map(|r| r as u64)))
            .collect())
    }

    /// How many entities each stage of `pipeline` holds.
    pub async fn stage_counts(&self, pipeline: &str) -> Result<HashMap<String, u64>> {
        let rows: Vec<(String, i64)> = on!(&*self.db, c => sqlx::query_as("SELECT stage, COUNT(*) FROM entities WHERE pipeline = $1 AND stage IS NOT NULL GROUP BY stage").bind(pipeline).fetch_all(c).await)?;
        Ok(rows.into_iter().map(|(stage, n)| (stage, n as u64)).collect())
    }

    /// The `limit` entities of a stage changed last, latest first.
    pub async fn stage_entities(&self, pipeline: &str, stage: &str, limit: u32) -> Result<Vec<Entity>> {
        let sql = format!(
            "SELECT {} FROM entities WHERE pipeline = $1 AND stage = $2 ORDER BY updated_at DESC, id DESC LIMIT $3",
            rows::ENTITY_COLUMNS
        );
        let found: Vec<rows::EntityRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(pipeline).bind(stage).bind(limit as i64).fetch_all(c).await)?;
        found.into_iter().map(|row| rows::entity(row).map(|(e, _)| e)).collect()
    }

    /// Notifications to a user, oldest first.
    pub async fn notifications(&self, user: u64) -> Result<Vec<(Timestamp, String, Option<EntityRef>)>> {
        let rows: Vec<(i64, String, Option<String>, Option<i64>)> = on!(&*self.db, c => sqlx::query_as("SELECT at, text, about_kind, about_id FROM notifications WHERE user_id = $1 ORDER BY id").bind(user as i64).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(at, text, kind, id)| {
                let about = match (kind, id) {
                    (Some(kind), Some(id)) => Some(EntityRef {
                        kind: kind
                            .parse()
                            .map_err(|e: crate::domain::ValueError| StoreError::Corrupt {
                                what: "entity kind",
                                detail: e.to_string(),
                            })?,
                        id: id as u64,
                    }),
                    _ => None,
                };
                Ok((Timestamp(at), text, about))
            })
            .collect()
    }

    /// The notifications robots sent about an entity, oldest first: (at,
    /// user, text, run).
    pub async fn notifications_about(&self, target: EntityRef) -> Result<Vec<(Timestamp, u64, String, Option<u64>)>> {
        let rows: Vec<(i64, i64, String, Option<i64>)> = on!(&*self.db, c => sqlx::query_as("SELECT at, user_id, text, run_id FROM notifications WHERE about_kind = $1 AND about_id = $2 ORDER BY id").bind(target.kind.as_str()).bind(target.id as i64).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .map(|(at, user, text, run)| (Timestamp(at), user as u64, text, run.map(|r| r as u64)))
            .collect())
    }

    /// Events of an entity, oldest first: (event, data).
    pub async fn events(&self, target: EntityRef) -> Result<Vec<(Timestamp, String, serde_json::Value)>> {
        let rows: Vec<(i64, String, String)> = on!(&*self.db, c => sqlx::query_as("SELECT at, event, data FROM events WHERE kind = $1 AND entity_id = $2 ORDER BY id").bind(target.kind.as_str()).bind(target.id as i64).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(at, event, data)| Ok((Timestamp(at), event, from_json("event data", &data)?)))
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

    /// Entities of `kind` whose field `code` holds `value` (or has it in
    /// its list), compared as [`Matching`] says: phone numbers by digits,
    /// emails without case, others exactly. Oldest first.
    pub async fn find(&self, kind: EntityKind, code: &str, value: &Value, limit: u32) -> Result<Vec<Entity>> {
        let matching = Matching::of(code);
        // A LIKE on the fields' JSON text narrows the scan; the typed check
        // decides. A phone's digits may be spelled apart ("8 (912) 345-67-89"),
        // an email in another case.
        let escape = |text: &str| text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let (needle, column) = match (matching, value) {
            (Matching::Phone, Value::Text(text)) => match phone_digits(text) {
                // The last ten digits, in order, anything between them: a
                // national `8...` and an international `+7...` both match.
                Some(digits) => {
                    let tail = &digits[digits.len().saturating_sub(10)..];
                    let spread: Vec<String> = tail.chars().map(String::from).collect();
                    (format!("%{}%", spread.join("%")), "fields")
                }
                None => return Ok(Vec::new()),
            },
            (Matching::Email, Value::Text(text)) => {
                (format!("%{}%", escape(&text.trim().to_lowercase())), "LOWER(fields)")
            }
            _ => (format!("%{}%", escape(&value.to_json().to_string())), "fields"),
        };
        let custom = column.replace("fields", "custom_fields");
        let sql = format!(
            "SELECT {} FROM entities WHERE kind = $1 AND ({column} LIKE $2 ESCAPE '\\' OR {custom} LIKE $2 ESCAPE '\\') ORDER BY id",
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
                Some(FieldValue::Single(v)) => matching.same(v, value),
                Some(FieldValue::List(vs)) => vs.iter().any(|v| matching.same(v, value)),
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

    /// Entities in a pipeline, by id.
    pub async fn entities_in(&self, pipeline: &str) -> Result<Vec<Entity>> {
        let sql = format!(
            "SELECT {} FROM entities WHERE pipeline = $1 ORDER BY kind, id",
            rows::ENTITY_COLUMNS
        );
        let found: Vec<rows::EntityRow> = on!(&*self.db, c => sqlx::query_as(&sql).bind(pipeline).fetch_all(c).await)?;
        found.into_iter().map(|row| rows::entity(row).map(|(e, _)| e)).collect()
    }

    /// When a scheduled trigger or robot fires next, if known.
    pub async fn schedule_next(&self, of: Scheduled) -> Result<Option<Timestamp>> {
        let (table, key, id) = of.row();
        let sql = format!("SELECT next_at FROM {table} WHERE {key} = $1");
        let at: Option<i64> = on!(&*self.db, c => sqlx::query_scalar(&sql).bind(id).fetch_optional(c).await)?;
        Ok(at.map(Timestamp))
    }

    /// Sets a schedule's first firing, unless another process set it; each
    /// firing then moves it on ([`Tx::advance_schedule`]).
    pub async fn start_schedule(&self, of: Scheduled, next: Timestamp) -> Result<()> {
        let (table, key, id) = of.row();
        let sql = format!("INSERT INTO {table} ({key}, next_at) VALUES ($1, $2) ON CONFLICT DO NOTHING");
        on!(&*self.writer, c => sqlx::query(&sql).bind(id).bind(next.0).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The custom fields of a kind's entities with ids after `after`, a page
    /// of at most `limit` in id order.
    pub async fn custom_values(&self, kind: EntityKind, after: u64, limit: u32) -> Result<Vec<(u64, Fields)>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as(
            "SELECT id, custom_fields FROM entities WHERE kind = $1 AND id > $2 ORDER BY id LIMIT $3")
            .bind(kind.as_str()).bind(after as i64).bind(i64::from(limit)).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(id, fields)| Ok((id as u64, from_json("entity custom fields", &fields)?)))
            .collect()
    }

    /// The configuration revisions: (settings, plugins). Each changes
    /// whenever that configuration does, in any process.
    pub async fn revisions(&self) -> Result<(i64, i64)> {
        let rows: Vec<(String, i64)> =
            on!(&*self.db, c => sqlx::query_as("SELECT name, value FROM revisions").fetch_all(c).await)?;
        let get = |name: &str| rows.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
        Ok((get("settings"), get("plugins")))
    }

    /// Messages in the outbox, oldest first; only those about `about` when set.
    pub async fn outbox(&self, about: Option<EntityRef>, limit: u32) -> Result<Vec<OutboxMessage>> {
        let (kind, id) = about.map(|e| (e.kind.as_str(), e.id as i64)).unwrap_or(("", -1));
        let sql = format!(
            "{} WHERE ($1 = '' OR (about_kind = $1 AND about_id = $2)) ORDER BY id LIMIT $3",
            rows::OUTBOX_SELECT
        );
        let found: Vec<rows::OutboxRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(kind).bind(id).bind(limit as i64).fetch_all(c).await)?;
        found.into_iter().map(rows::outbox).collect()
    }

    /// Whether any message is due for an attempt at `now` (a read, so idle
    /// workers do not take the writer to find out).
    pub async fn outbox_due(&self, now: Timestamp) -> Result<bool> {
        let found: Option<i64> = on!(&*self.db, c => sqlx::query_scalar("SELECT id FROM outbox WHERE status = 'queued' AND due_at <= $1 \
            AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1").bind(now.0).fetch_optional(c).await)?;
        Ok(found.is_some())
    }

    /// Leases up to `limit` messages due at `now` until `until`, counting
    /// the attempt. A message leased elsewhere is not taken until its lease
    /// runs out: then it is taken again, as its holder may have died.
    pub async fn lease_outbox(&self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboxMessage>> {
        let lock = match &*self.writer {
            Backend::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE outbox SET lease_until = $1, attempts = attempts + 1 WHERE id IN (SELECT id FROM outbox \
             WHERE status = 'queued' AND due_at <= $2 AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT $3 {lock}) \
             RETURNING {}",
            rows::OUTBOX_COLUMNS
        );
        let found: Vec<rows::OutboxRow> = on!(&*self.writer, c => sqlx::query_as(&sql).bind(until.0).bind(now.0)
            .bind(limit as i64).fetch_all(c).await)?;
        found.into_iter().map(rows::outbox).collect()
    }

    /// Records what attempt `attempt` of message `id` came to: sent, queued
    /// again for `retry_at`, or failed for good, with the reason. Nothing
    /// changes if the message was leased again since (its lease ran out):
    /// that attempt's outcome is the one to keep. False then.
    pub async fn outbox_attempted(&self, id: u64, attempt: u32, outcome: Attempted<'_>) -> Result<bool> {
        let (status, error, due_at, sent_at) = match outcome {
            Attempted::Sent { at } => ("sent", None, None, Some(at.0)),
            Attempted::Retry { at, error } => ("queued", Some(error), Some(at.0), None),
            Attempted::Failed { error } => ("failed", Some(error), None, None),
        };
        let n = on!(&*self.writer, c => sqlx::query("UPDATE outbox SET status = $1, error = $2, due_at = $3, sent_at = $4, \
            lease_until = NULL WHERE id = $5 AND attempts = $6 AND status = 'queued'")
            .bind(status).bind(error).bind(due_at).bind(sent_at).bind(id as i64).bind(attempt as i64)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The email with this tracking token.
    pub async fn message_by_token(&self, token: &str) -> Result<Option<OutboxMessage>> {
        let sql = format!("{} WHERE token = $1", rows::OUTBOX_SELECT);
        let found: Option<rows::OutboxRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(token).fetch_optional(c).await)?;
        found.map(rows::outbox).transpose()
    }

    /// The API token with this hash, if any.
    pub async fn token(&self, hash: &str) -> Result<Option<StoredToken>> {
        let row: Option<rows::TokenRow> = on!(&*self.db, c => sqlx::query_as(&format!("{} WHERE hash = $1", rows::TOKEN_SELECT))
            .bind(hash).fetch_optional(c).await)?;
        Ok(row.map(rows::token))
    }

    /// Whether any API token exists.
    pub async fn has_tokens(&self) -> Result<bool> {
        let n: i64 = on!(&*self.db, c => sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens").fetch_one(c).await)?;
        Ok(n > 0)
    }

    /// Stores an API token by its hash.
    pub async fn add_token(&self, token: &StoredToken) -> Result<()> {
        on!(&*self.writer, c => sqlx::query("INSERT INTO api_tokens (hash, name, role, created_at, expires_at, user_id) \
            VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&token.hash).bind(&token.name).bind(&token.role).bind(token.created_at.0)
            .bind(token.expires_at.map(|t| t.0)).bind(token.user.map(|u| u as i64))
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The API tokens, oldest first.
    pub async fn tokens(&self) -> Result<Vec<StoredToken>> {
        let sql = format!("{} ORDER BY created_at, hash", rows::TOKEN_SELECT);
        let rows: Vec<rows::TokenRow> = on!(&*self.db, c => sqlx::query_as(&sql).fetch_all(c).await)?;
        Ok(rows.into_iter().map(rows::token).collect())
    }

    /// Deletes the API tokens whose hash starts with `prefix` (hex); returns
    /// how many.
    pub async fn revoke_tokens(&self, prefix: &str) -> Result<u64> {
        debug_assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()), "no LIKE wildcards");
        Ok(
            on!(&*self.writer, c => sqlx::query("DELETE FROM api_tokens WHERE hash LIKE $1")
            .bind(format!("{prefix}%")).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Counts runs by status.
    #[cfg(feature = "test-support")]
    pub async fn count_runs(&self, status: crate::domain::RunStatus) -> Result<u64> {
        let n: i64 = on!(&*self.db, c => sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE status = $1").bind(status.as_str()).fetch_one(c).await)?;
        Ok(n as u64)
    }

    /// How many runs are leased to owners whose name starts with `prefix`:
    /// an engine's owner starts with its process id and a `-`.
    #[cfg(feature = "test-support")]
    pub async fn leased_by(&self, prefix: &str) -> Result<u64> {
        let n: i64 = on!(&*self.db, c => sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE status = 'leased' AND lease_owner LIKE $1")
            .bind(format!("{prefix}%")).fetch_one(c).await)?;
        Ok(n as u64)
    }

    /// Whether the database answers and holds every migration this binary
    /// has; why not, in words, otherwise.
    pub async fn check_ready(&self) -> std::result::Result<(), String> {
        let migrator = match &*self.writer {
            Backend::Postgres(_) => &POSTGRES_MIGRATIONS,
            Backend::Sqlite(_) => &SQLITE_MIGRATIONS,
        };
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: std::result::Result<Option<i64>, sqlx::Error> = on!(&*self.db, c => sqlx::query_scalar(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(c).await);
        match applied {
            Err(e) => Err(format!("the database does not answer: {e}")),
            Ok(applied) if applied.unwrap_or(0) < known => Err(format!(
                "the database has migrations up to {} of {known}; start a host of this version to apply them",
                applied.unwrap_or(0)
            )),
            Ok(_) => Ok(()),
        }
    }

    /// The runs queued and due at `now`, and the earliest due time among
    /// them.
    pub async fn queue_depth(&self, now: Timestamp) -> Result<(u64, Option<Timestamp>)> {
        let (n, oldest): (i64, Option<i64>) = on!(&*self.db, c => sqlx::query_as(
            "SELECT COUNT(*), MIN(due_at) FROM runs WHERE status = 'queued' AND due_at <= $1").bind(now.0).fetch_one(c).await)?;
        Ok((n as u64, oldest.map(Timestamp)))
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
        // RETURNING keeps no order: the batch runs in the order runs came
        // due, as they were queued, so runs taking turns take them in order.
        let mut claims = found.into_iter().map(rows::claim).collect::<Result<Vec<Claim>>>()?;
        claims.sort_by_key(|c| (c.due_at, c.run_id));
        Ok(claims)
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

/// What a cron schedule drives: a trigger, or a robot.
#[derive(Clone, Copy, Debug)]
pub enum Scheduled {
    Trigger(u64),
    Robot(u64),
}

impl Scheduled {
    /// Its table, key column and key.
    fn row(self) -> (&'static str, &'static str, i64) {
        match self {
            Scheduled::Trigger(id) => ("schedules", "trigger_id", id as i64),
            Scheduled::Robot(id) => ("robot_schedules", "robot_id", id as i64),
        }
    }
}
