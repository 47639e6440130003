//! Rows as sqlx reads them (plain tuples, which both backends decode), and
//! their conversion to domain types.

use serde::Serialize;

use super::{Result, StoreError, from_json};
use crate::domain::{
    Cause, Digest, Entity, EntityKind, EntityRef, RobotBinding, Run, RunReport, RunStatus, Timestamp, TriggerBinding,
    World,
};

pub(super) const ENTITY_COLUMNS: &str =
    "kind, id, pipeline, stage, entry_id, responsible, fields, custom_fields, created_at, updated_at";
pub(super) const ENTITY_SELECT: &str = "SELECT kind, id, pipeline, stage, entry_id, responsible, fields, custom_fields, created_at, updated_at FROM entities WHERE kind = $1 AND id = $2";

pub(super) type EntityRow = (
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    i64,
    i64,
);

pub(super) fn kind(text: &str) -> Result<EntityKind> {
    text.parse()
        .map_err(|e: crate::domain::ValueError| StoreError::Corrupt {
            what: "entity kind",
            detail: e.to_string(),
        })
}

/// An entity and its current stage entry.
pub(super) fn entity(row: EntityRow) -> Result<(Entity, Option<u64>)> {
    let (k, id, pipeline, stage, entry_id, responsible, fields, custom_fields, created_at, updated_at) = row;
    let entity = Entity {
        kind: kind(&k)?,
        id: id as u64,
        pipeline,
        stage,
        responsible: responsible.map(|u| u as u64),
        fields: from_json("entity fields", &fields)?,
        custom_fields: from_json("entity custom fields", &custom_fields)?,
        created_at: Timestamp(created_at),
        updated_at: Timestamp(updated_at),
    };
    Ok((entity, entry_id.map(|e| e as u64)))
}

pub(super) fn robot(id: i64, spec: &str) -> Result<RobotBinding> {
    let mut robot: RobotBinding = from_json("robot", spec)?;
    robot.id = id as u64;
    Ok(robot)
}

pub(super) fn trigger(id: i64, spec: &str) -> Result<TriggerBinding> {
    let mut trigger: TriggerBinding = from_json("trigger", spec)?;
    trigger.id = id as u64;
    Ok(trigger)
}

/// An installed plugin.
#[derive(Clone, Debug)]
pub struct StoredPlugin {
    pub name: String,
    pub digest: Digest,
    pub wasm: Vec<u8>,
    /// The permissions the admin approved: the grants its runs may use.
    pub grants: Vec<crate::domain::Permission>,
    /// For a webhook plugin, the URL the host posts each run to; `wasm` is
    /// then empty.
    pub webhook: Option<String>,
    /// Its package's fuel budgets.
    pub fuel: crate::domain::Fuel,
    /// Its package's version; none for a plugin installed on its own.
    pub version: Option<String>,
    /// Robots, or triggers.
    pub world: World,
}

pub(super) type PluginRow = (
    String,
    String,
    Vec<u8>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

pub(super) fn plugin((name, digest, wasm, grants, webhook, fuel, version, world): PluginRow) -> Result<StoredPlugin> {
    let digest = digest
        .parse()
        .map_err(|e: crate::domain::ValueError| StoreError::Corrupt {
            what: "plugin digest",
            detail: e.to_string(),
        })?;
    Ok(StoredPlugin {
        name,
        digest,
        wasm,
        grants: from_json("plugin grants", &grants)?,
        webhook,
        fuel: fuel
            .map(|f| from_json("plugin fuel", &f))
            .transpose()?
            .unwrap_or_default(),
        version,
        world: from_json("plugin world", &format!("\"{world}\""))?,
    })
}

fn run_status(text: &str) -> Result<RunStatus> {
    serde_json::from_value(serde_json::Value::String(text.into())).map_err(|_| StoreError::Corrupt {
        what: "run status",
        detail: text.into(),
    })
}

/// A run's report as stored. One this version cannot read (written by an
/// earlier one) is kept in the database untouched and served as absent.
fn run_report(id: i64, text: &str) -> Option<RunReport> {
    serde_json::from_str(text)
        .inspect_err(|error| tracing::warn!(run = id, %error, "a run report in an earlier form is not served"))
        .ok()
}

/// A run to create when an entity enters a stage.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub entry_id: u64,
    pub robot_id: u64,
    pub entity: EntityRef,
    pub status: RunStatus,
    pub cause: Cause,
    pub due_at: Timestamp,
    pub created_at: Timestamp,
    /// Set when the run ends before it is written (its entry closed).
    pub finished_at: Option<Timestamp>,
    /// Why it ended, when it ends before it is written.
    pub report: Option<RunReport>,
}

pub(super) const RUN_SELECT: &str = "SELECT id, entry_id, robot_id, kind, entity_id, status, cause, due_at, attempts, report, created_at, finished_at FROM runs";

pub(super) type RunRow = (
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    Option<i64>,
);

pub(super) fn run(row: RunRow) -> Result<Run> {
    let (id, entry_id, robot_id, k, entity_id, status, cause, due_at, attempts, report, created_at, finished_at) = row;
    Ok(Run {
        id: id as u64,
        entry_id: entry_id as u64,
        robot_id: robot_id as u64,
        entity: EntityRef {
            kind: kind(&k)?,
            id: entity_id as u64,
        },
        status: run_status(&status)?,
        cause: from_json("run cause", &cause)?,
        due_at: Timestamp(due_at),
        attempts: attempts as u32,
        report: report.and_then(|r| run_report(id, &r)),
        created_at: Timestamp(created_at),
        finished_at: finished_at.map(Timestamp),
    })
}

/// A version of an installed package.
#[derive(Clone, Debug)]
pub struct StoredPackage {
    pub name: String,
    pub version: String,
    pub publisher: String,
    /// Whether its signature was verified when installed.
    pub signed: bool,
    /// The manifest's text.
    pub manifest: String,
    /// The archive as uploaded, for rollback.
    pub archive: Vec<u8>,
    pub approved: Vec<crate::domain::Permission>,
}

pub(super) type PackageRow = (String, String, String, bool, String, Vec<u8>, String);

pub(super) fn package(row: PackageRow) -> Result<StoredPackage> {
    let (name, version, publisher, signed, manifest, archive, approved) = row;
    Ok(StoredPackage {
        name,
        version,
        publisher,
        signed,
        manifest,
        archive,
        approved: from_json("approved permissions", &approved)?,
    })
}

/// An API token as stored: its hash, never its text.
#[derive(Clone, Debug)]
pub struct StoredToken {
    pub hash: String,
    pub name: String,
    pub role: String,
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// The CRM user it acts for: the author of the changes made with it.
    pub user: Option<crate::domain::UserId>,
}

pub(super) const TOKEN_SELECT: &str = "SELECT hash, name, role, created_at, expires_at, user_id FROM api_tokens";

pub(super) type TokenRow = (String, String, String, i64, Option<i64>, Option<i64>);

pub(super) fn token((hash, name, role, created_at, expires_at, user): TokenRow) -> StoredToken {
    StoredToken {
        hash,
        name,
        role,
        created_at: Timestamp(created_at),
        expires_at: expires_at.map(Timestamp),
        user: user.map(|u| u as u64),
    }
}

/// What an attempt to deliver a message came to.
#[derive(Clone, Copy, Debug)]
pub enum Attempted<'a> {
    Sent {
        at: Timestamp,
    },
    /// Failed, to be tried again at `at`.
    Retry {
        at: Timestamp,
        error: &'a str,
    },
    /// Failed for good.
    Failed {
        error: &'a str,
    },
}

/// A message in the outbox.
#[derive(Clone, Debug, Serialize)]
pub struct OutboxMessage {
    pub id: u64,
    pub channel: crate::domain::Channel,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    pub about: Option<EntityRef>,
    pub run_id: Option<u64>,
    /// `queued` (for its first attempt or a later one), `sent`, or
    /// `failed` for good.
    pub status: String,
    /// Why its last attempt failed.
    pub error: Option<String>,
    /// Attempts made so far, the one under way included.
    pub attempts: u32,
    /// When its next attempt is due, while queued.
    pub due_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    /// An email's tracking token (see `domain::tracking`); none for other
    /// channels.
    pub token: Option<String>,
}

pub(super) const OUTBOX_COLUMNS: &str = "id, channel, recipient, subject, body, about_kind, about_id, run_id, status, error, \
    attempts, due_at, created_at, sent_at, token";
pub(super) const OUTBOX_SELECT: &str = "SELECT id, channel, recipient, subject, body, about_kind, about_id, run_id, status, \
    error, attempts, due_at, created_at, sent_at, token FROM outbox";

pub(super) type OutboxRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
);

pub(super) fn outbox(row: OutboxRow) -> Result<OutboxMessage> {
    let (
        id,
        channel,
        to,
        subject,
        body,
        about_kind,
        about_id,
        run_id,
        status,
        error,
        attempts,
        due_at,
        created_at,
        sent_at,
        token,
    ) = row;
    let about = match (about_kind, about_id) {
        (Some(k), Some(id)) => Some(EntityRef {
            kind: kind(&k)?,
            id: id as u64,
        }),
        _ => None,
    };
    Ok(OutboxMessage {
        id: id as u64,
        channel: from_json("message channel", &format!("\"{channel}\""))?,
        to,
        subject,
        body,
        about,
        run_id: run_id.map(|r| r as u64),
        status,
        error,
        attempts: attempts as u32,
        due_at: due_at.map(Timestamp),
        created_at: Timestamp(created_at),
        sent_at: sent_at.map(Timestamp),
        token,
    })
}

/// A run leased to a worker.
#[derive(Clone, Debug)]
pub struct Claim {
    pub run_id: u64,
    pub entry_id: u64,
    pub robot_id: u64,
    pub entity: EntityRef,
    pub cause: Cause,
    pub due_at: Timestamp,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Proves the lease when the run is finished.
    pub fence: u64,
}

pub(super) const CLAIM_RETURNING: &str =
    "RETURNING id, entry_id, robot_id, kind, entity_id, cause, due_at, attempts, fence";

pub(super) type ClaimRow = (i64, i64, i64, String, i64, String, i64, i64, i64);

pub(super) fn claim(row: ClaimRow) -> Result<Claim> {
    let (id, entry_id, robot_id, k, entity_id, cause, due_at, attempts, fence) = row;
    Ok(Claim {
        run_id: id as u64,
        entry_id: entry_id as u64,
        robot_id: robot_id as u64,
        entity: EntityRef {
            kind: kind(&k)?,
            id: entity_id as u64,
        },
        cause: from_json("run cause", &cause)?,
        due_at: Timestamp(due_at),
        attempt: attempts as u32,
        fence: fence as u64,
    })
}
