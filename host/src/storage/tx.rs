//! A transaction: the primitives the engine combines into one atomic change.
//!
//! What decides something goes to the database at once: reading an entity
//! under lock, a run's fence, a new stage entry's id. Rows that are only
//! appended or replaced (events, new runs, entities, comments,
//! notifications) wait in the transaction and are written at commit with one
//! multi-row statement per table, so a batch of a hundred changes costs a
//! handful of statements. Entities read or written in the transaction stay
//! in it, so each step sees the ones before.

use std::collections::HashSet;

use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

mod pending;

use pending::{CommentRow, EntryRow, EventRow, Held, MessageRow, NotificationRow, Pending};

use super::{Backend, Result, rows, to_json};
use super::{NewRun, Scheduled, StoredPackage, StoredPlugin};
use crate::domain::{
    Calendar, Cause, Channel, ConstantDecl, Department, Entity, EntityId, EntityKind, EntityRef, FieldDecl, FieldValue,
    InstalledTemplate, Message, NotRun, Pipeline, RobotBinding, RobotNote, RunReport, RunStatus, Timestamp,
    TriggerBinding, User,
};

/// Bind parameters per statement, within both backends' limits.
pub(super) const MAX_BINDS: usize = 30_000;

/// How a leased run ends: finished with a status, or queued again.
pub struct RunEnd {
    pub id: u64,
    pub fence: u64,
    /// [`RunStatus::Queued`] with `retry_at` for another attempt.
    pub status: RunStatus,
    pub retry_at: Option<Timestamp>,
    /// For [`RunStatus::Awaiting`]: the task or activity awaited.
    pub awaiting: Option<EntityRef>,
    /// The run's report, serialised when the end is made: on SQLite the
    /// transaction that records it holds the one writer, which should not
    /// wait on serialising a batch of reports.
    report: String,
}

impl RunEnd {
    pub fn new(id: u64, fence: u64, status: RunStatus, retry_at: Option<Timestamp>, report: &RunReport) -> RunEnd {
        RunEnd {
            id,
            fence,
            status,
            retry_at,
            awaiting: None,
            report: to_json(report),
        }
    }
}

pub struct Tx {
    pub(super) conn: Backend<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>,
    pending: Pending,
}

impl Tx {
    pub(super) fn new(conn: Backend<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>) -> Tx {
        Tx {
            conn,
            pending: Pending::default(),
        }
    }

    /// Writes what waits, then commits.
    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        on!(self.conn, t => t.commit().await)?;
        Ok(())
    }

    pub async fn put_pipeline(&mut self, pipeline: &Pipeline) -> Result<()> {
        let spec = to_json(pipeline);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO pipelines (code, spec) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET spec = excluded.spec").bind(&pipeline.code).bind(&spec).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    pub async fn put_user(&mut self, user: &User) -> Result<()> {
        let away = user.away.as_ref().map(to_json);
        let hours = user.hours.as_ref().map(to_json);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO users (id, name, department, active, away, hours) VALUES ($1, $2, $3, $4, $5, $6) \
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, department = excluded.department, active = excluded.active, \
            away = excluded.away, hours = excluded.hours")
            .bind(user.id as i64).bind(&user.name).bind(user.department.map(|d| d as i64)).bind(user.active)
            .bind(&away).bind(&hours).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    pub async fn put_department(&mut self, d: &Department) -> Result<()> {
        on!(&mut self.conn, t => sqlx::query("INSERT INTO departments (id, name, head, parent) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, head = excluded.head, parent = excluded.parent")
            .bind(d.id as i64).bind(&d.name).bind(d.head.map(|h| h as i64)).bind(d.parent.map(|p| p as i64)).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    pub async fn set_constant(&mut self, code: &str, value: &FieldValue) -> Result<()> {
        let value = to_json(value);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO constants (code, value) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET value = excluded.value").bind(code).bind(&value).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    pub async fn set_calendar(&mut self, calendar: &Calendar) -> Result<()> {
        let value = to_json(calendar);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO settings (key, value) VALUES ('calendar', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value").bind(&value).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    pub async fn put_plugin(&mut self, plugin: &StoredPlugin, at: Timestamp) -> Result<()> {
        let grants = to_json(&plugin.grants);
        let fuel = to_json(&plugin.fuel);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO plugins (name, digest, wasm, grants, installed_at, webhook, fuel, version, world) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
            ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, wasm = excluded.wasm, grants = excluded.grants, installed_at = excluded.installed_at, webhook = excluded.webhook, fuel = excluded.fuel, version = excluded.version, world = excluded.world")
            .bind(&plugin.name).bind(plugin.digest.to_string()).bind(&plugin.wasm).bind(&grants).bind(at.0).bind(&plugin.webhook).bind(&fuel).bind(&plugin.version).bind(plugin.world.as_str()).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("plugins").await
    }

    /// Stores a robot binding, last of its stage; its `id` is assigned here.
    pub async fn add_robot(&mut self, robot: &RobotBinding) -> Result<u64> {
        let spec = to_json(robot);
        let id: i64 = on!(&mut self.conn, t => sqlx::query_scalar("INSERT INTO robots (pipeline, stage, spec, position) \
            VALUES ($1, $2, $3, (SELECT COALESCE(MAX(position), 0) + 1 FROM robots WHERE pipeline = $1 AND stage = $2)) RETURNING id")
            .bind(&robot.pipeline).bind(&robot.stage).bind(&spec).fetch_one(&mut **t).await)?;
        self.bump("settings").await?;
        Ok(id as u64)
    }

    /// Stores a trigger binding; its `id` is assigned here.
    pub async fn add_trigger(&mut self, trigger: &TriggerBinding) -> Result<u64> {
        let spec = to_json(trigger);
        let id: i64 = on!(&mut self.conn, t => sqlx::query_scalar("INSERT INTO triggers (pipeline, stage, code, spec) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(&trigger.pipeline).bind(&trigger.stage).bind(&trigger.code).bind(&spec).fetch_one(&mut **t).await)?;
        self.bump("settings").await?;
        Ok(id as u64)
    }

    /// Declares a custom field unless one with its kind and code exists;
    /// `true` when declared now.
    pub async fn declare_field(&mut self, field: &FieldDecl) -> Result<bool> {
        let spec = to_json(field);
        let n = on!(&mut self.conn, t => sqlx::query("INSERT INTO custom_fields (kind, code, spec) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(field.kind.as_str()).bind(&field.code).bind(&spec).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await?;
        Ok(n == 1)
    }

    /// Declares a custom field, or replaces its declaration.
    pub async fn put_field(&mut self, field: &FieldDecl) -> Result<()> {
        let spec = to_json(field);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO custom_fields (kind, code, spec) VALUES ($1, $2, $3) ON CONFLICT (kind, code) DO UPDATE SET spec = excluded.spec")
            .bind(field.kind.as_str()).bind(&field.code).bind(&spec).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    /// Removes a custom field's declaration; `false` when there was none.
    pub async fn remove_field(&mut self, kind: EntityKind, code: &str) -> Result<bool> {
        let n = on!(&mut self.conn, t => sqlx::query("DELETE FROM custom_fields WHERE kind = $1 AND code = $2")
            .bind(kind.as_str()).bind(code).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await?;
        Ok(n == 1)
    }

    /// Declares a global constant unless one with its code is declared;
    /// `true` when declared now.
    pub async fn declare_constant(&mut self, constant: &ConstantDecl) -> Result<bool> {
        let spec = to_json(constant);
        let n = on!(&mut self.conn, t => sqlx::query("INSERT INTO constant_decls (code, spec) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&constant.code).bind(&spec).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await?;
        Ok(n == 1)
    }

    /// Records a template's installed version, replacing the one before.
    pub async fn put_template(&mut self, template: &InstalledTemplate) -> Result<()> {
        let spec = to_json(template);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO templates (code, version, installed_at, spec) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (code) DO UPDATE SET version = excluded.version, installed_at = excluded.installed_at, spec = excluded.spec")
            .bind(&template.code).bind(&template.version).bind(template.installed_at.0).bind(&spec).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    /// Declares a constant, or replaces its declaration.
    pub async fn put_constant_decl(&mut self, constant: &ConstantDecl) -> Result<()> {
        let spec = to_json(constant);
        on!(&mut self.conn, t => sqlx::query("INSERT INTO constant_decls (code, spec) VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET spec = excluded.spec")
            .bind(&constant.code).bind(&spec).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    /// Stores a setting's JSON form under `key`.
    pub async fn set_setting(&mut self, key: &str, value: &serde_json::Value) -> Result<()> {
        let value = value.to_string();
        on!(&mut self.conn, t => sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value").bind(key).bind(&value).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    /// Replaces a stored robot binding (keeping its id).
    pub async fn update_robot(&mut self, robot: &RobotBinding) -> Result<()> {
        let spec = to_json(robot);
        on!(&mut self.conn, t => sqlx::query("UPDATE robots SET spec = $1 WHERE id = $2").bind(&spec).bind(robot.id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    /// Replaces the robot binding with `robot`'s id on `robot`'s stage;
    /// `false` when there is none there.
    pub async fn replace_robot(&mut self, robot: &RobotBinding) -> Result<bool> {
        let spec = to_json(robot);
        let n = on!(&mut self.conn, t => sqlx::query("UPDATE robots SET spec = $1 WHERE id = $2 AND pipeline = $3 AND stage = $4")
            .bind(&spec).bind(robot.id as i64).bind(&robot.pipeline).bind(&robot.stage).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await?;
        Ok(n == 1)
    }

    /// Removes a robot binding and cancels its runs that have not started,
    /// each with a report naming it. Returns the stage entries where it had
    /// a run queued or awaiting a task: the robot after it there may wait
    /// for it.
    pub async fn remove_robot(&mut self, robot: &RobotBinding, at: Timestamp) -> Result<Vec<(EntityRef, u64)>> {
        let id = robot.id as i64;
        let started: Vec<(String, i64, i64)> = on!(&mut self.conn, t => sqlx::query_as(
            "SELECT kind, entity_id, entry_id FROM runs WHERE robot_id = $1 AND status IN ('queued', 'awaiting') ORDER BY kind, entity_id"
        ).bind(id).fetch_all(&mut **t).await)?;
        // One statement per number of attempts, which the report repeats.
        let attempts: Vec<i64> = on!(&mut self.conn, t => sqlx::query_scalar(
            "SELECT DISTINCT attempts FROM runs WHERE robot_id = $1 AND status IN ('waiting', 'waiting-for-date', 'queued')"
        ).bind(id).fetch_all(&mut **t).await)?;
        for attempt in attempts {
            let report = to_json(&RunReport::not_run(
                RobotNote::of(robot),
                attempt as u32,
                NotRun::RobotRemoved,
            ));
            on!(&mut self.conn, t => sqlx::query("UPDATE runs SET status = 'cancelled', finished_at = $1, report = $2 \
                WHERE robot_id = $3 AND attempts = $4 AND status IN ('waiting', 'waiting-for-date', 'queued')")
                .bind(at.0).bind(&report).bind(id).bind(attempt).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        }
        on!(&mut self.conn, t => sqlx::query("DELETE FROM robots WHERE id = $1").bind(id).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await?;
        started
            .into_iter()
            .map(|(kind, id, entry)| {
                let kind = kind
                    .parse()
                    .map_err(|e: crate::domain::ValueError| super::StoreError::Corrupt {
                        what: "entity kind",
                        detail: e.to_string(),
                    })?;
                Ok((EntityRef { kind, id: id as u64 }, entry as u64))
            })
            .collect()
    }

    /// Puts a stage's robots in the order of `ids`.
    pub async fn order_robots(&mut self, ids: &[u64]) -> Result<()> {
        for (position, id) in ids.iter().enumerate() {
            on!(&mut self.conn, t => sqlx::query("UPDATE robots SET position = $1 WHERE id = $2")
                .bind(position as i64 + 1).bind(*id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        }
        self.bump("settings").await
    }

    /// Replaces the trigger binding with `trigger`'s id on `trigger`'s
    /// stage, and forgets when its old schedule fires next; `false` when
    /// there is none there.
    pub async fn replace_trigger(&mut self, trigger: &TriggerBinding) -> Result<bool> {
        let spec = to_json(trigger);
        let n = on!(&mut self.conn, t => sqlx::query("UPDATE triggers SET code = $1, spec = $2 WHERE id = $3 AND pipeline = $4 AND stage = $5")
            .bind(&trigger.code).bind(&spec).bind(trigger.id as i64).bind(&trigger.pipeline).bind(&trigger.stage)
            .execute(&mut **t).await.map(|r| r.rows_affected()))?;
        on!(&mut self.conn, t => sqlx::query("DELETE FROM schedules WHERE trigger_id = $1").bind(trigger.id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await?;
        Ok(n == 1)
    }

    /// Removes a trigger binding and its schedule.
    pub async fn remove_trigger(&mut self, id: u64) -> Result<()> {
        on!(&mut self.conn, t => sqlx::query("DELETE FROM schedules WHERE trigger_id = $1").bind(id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        on!(&mut self.conn, t => sqlx::query("DELETE FROM triggers WHERE id = $1").bind(id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("settings").await
    }

    /// How many entities are in a pipeline, or in one of its stages.
    pub async fn entities_in(&mut self, pipeline: &str, stage: Option<&str>) -> Result<u64> {
        let n: i64 = on!(&mut self.conn, t => sqlx::query_scalar("SELECT COUNT(*) FROM entities WHERE pipeline = $1 AND ($2 IS NULL OR stage = $2)")
            .bind(pipeline).bind(stage).fetch_one(&mut **t).await)?;
        Ok(n as u64)
    }

    /// Removes the robots and triggers of a pipeline, or of one of its
    /// stages, with the triggers' schedules.
    pub async fn remove_bindings(&mut self, pipeline: &str, stage: Option<&str>) -> Result<()> {
        on!(&mut self.conn, t => sqlx::query("DELETE FROM schedules WHERE trigger_id IN (SELECT id FROM triggers WHERE pipeline = $1 AND ($2 IS NULL OR stage = $2))")
            .bind(pipeline).bind(stage).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        for table in ["robots", "triggers"] {
            let sql = format!("DELETE FROM {table} WHERE pipeline = $1 AND ($2 IS NULL OR stage = $2)");
            on!(&mut self.conn, t => sqlx::query(&sql).bind(pipeline).bind(stage).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        }
        self.bump("settings").await
    }

    /// Removes a pipeline, with its robots and triggers.
    pub async fn remove_pipeline(&mut self, code: &str) -> Result<()> {
        self.remove_bindings(code, None).await?;
        on!(&mut self.conn, t => sqlx::query("DELETE FROM pipelines WHERE code = $1").bind(code).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes plugins, and the package they came in (every version).
    pub async fn remove_plugins(&mut self, package: Option<&str>, plugins: &[String]) -> Result<()> {
        if let Some(name) = package {
            on!(&mut self.conn, t => sqlx::query("DELETE FROM packages WHERE name = $1").bind(name).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        }
        for plugin in plugins {
            on!(&mut self.conn, t => sqlx::query("DELETE FROM plugins WHERE name = $1").bind(plugin).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        }
        self.bump("plugins").await
    }

    /// Stores a package version as the active one of its name.
    pub async fn put_package(&mut self, package: &StoredPackage, at: Timestamp) -> Result<()> {
        let approved = to_json(&package.approved);
        on!(&mut self.conn, t => sqlx::query("UPDATE packages SET active = FALSE WHERE name = $1").bind(&package.name).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        on!(&mut self.conn, t => sqlx::query("INSERT INTO packages (name, version, publisher, signed, manifest, archive, approved, installed_at, active) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE) ON CONFLICT (name, version) DO UPDATE SET publisher = excluded.publisher, \
            signed = excluded.signed, manifest = excluded.manifest, archive = excluded.archive, approved = excluded.approved, \
            installed_at = excluded.installed_at, active = TRUE")
            .bind(&package.name).bind(&package.version).bind(&package.publisher).bind(package.signed).bind(&package.manifest)
            .bind(&package.archive).bind(&approved).bind(at.0).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        self.bump("plugins").await
    }

    /// Counts a change of configuration (`settings` or `plugins`), so other
    /// processes reload it.
    async fn bump(&mut self, revision: &str) -> Result<()> {
        on!(&mut self.conn, t => sqlx::query("UPDATE revisions SET value = value + 1 WHERE name = $1").bind(revision).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Reserves `count` consecutive ids for entities of `kind`; returns the first.
    pub async fn reserve_ids(&mut self, kind: EntityKind, count: u64) -> Result<EntityId> {
        let next: i64 = on!(&mut self.conn, t => sqlx::query_scalar(
            "INSERT INTO id_sequences (kind, next) VALUES ($1, 1 + $2) ON CONFLICT (kind) DO UPDATE SET next = id_sequences.next + $2 RETURNING next"
        ).bind(kind.as_str()).bind(count as i64).fetch_one(&mut **t).await)?;
        Ok((next - count as i64) as u64)
    }

    /// The entity and its current stage entry, locked for this transaction
    /// on PostgreSQL (SQLite's single writer already serialises changes).
    pub async fn entity_for_update(&mut self, target: EntityRef) -> Result<Option<(Entity, Option<u64>)>> {
        self.lock_entities(&[target]).await?;
        Ok(self
            .pending
            .entities
            .get(&target)
            .map(|held| (held.entity.clone(), held.entry)))
    }

    /// Reads and locks the entities this transaction does not hold yet, in
    /// one statement and in key order (so two transactions never wait on
    /// each other in a cycle).
    pub async fn lock_entities(&mut self, targets: &[EntityRef]) -> Result<()> {
        let mut missing: Vec<EntityRef> = targets
            .iter()
            .filter(|t| !self.pending.entities.contains_key(t))
            .copied()
            .collect();
        missing.sort_unstable();
        missing.dedup();
        for chunk in missing.chunks(MAX_BINDS / 2) {
            let lock = match &self.conn {
                Backend::Sqlite(_) => "",
                Backend::Postgres(_) => " FOR UPDATE",
            };
            let head = format!("SELECT {} FROM entities WHERE (kind, id) IN (", rows::ENTITY_COLUMNS);
            let tail = format!(") ORDER BY kind, id{lock}");
            let found: Vec<rows::EntityRow> = on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new(&head);
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.kind.as_str()).push_bind(r.id as i64);
                });
                q.push(&tail);
                q.build_query_as().fetch_all(&mut **t).await
            })?;
            for row in found {
                let (entity, entry) = rows::entity(row)?;
                let held = Held {
                    entity,
                    entry,
                    changed: false,
                };
                self.pending.entities.insert(held.entity.reference(), held);
            }
        }
        Ok(())
    }

    /// Inserts or replaces an entity (written at commit).
    pub async fn put_entity(&mut self, e: &Entity, entry_id: Option<u64>) -> Result<()> {
        let held = Held {
            entity: e.clone(),
            entry: entry_id,
            changed: true,
        };
        self.pending.entities.insert(e.reference(), held);
        Ok(())
    }

    /// Links two entities both ways.
    pub async fn link(&mut self, a: EntityRef, b: EntityRef) -> Result<()> {
        for (x, y) in [(a, b), (b, a)] {
            on!(&mut self.conn, t => sqlx::query("INSERT INTO links (kind, id, other_kind, other_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(x.kind.as_str()).bind(x.id as i64).bind(y.kind.as_str()).bind(y.id as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Opens stage entry number `entry` of `target` (written at commit).
    pub fn open_entry(&mut self, target: EntityRef, entry: u64, pipeline: &str, stage: &str, at: Timestamp) {
        self.pending.entries.push(EntryRow {
            target,
            entry,
            pipeline: pipeline.to_owned(),
            stage: stage.to_owned(),
            entered_at: at,
            left_at: None,
        });
    }

    /// Closes a stage entry and cancels its runs that have not started,
    /// each with a report naming its robot (`robot` gives the note of a
    /// robot id) and the reason; a run that failed an attempt before keeps
    /// that attempt's report, with the reason added.
    pub async fn close_entry(
        &mut self,
        target: EntityRef,
        entry: u64,
        at: Timestamp,
        robot: impl Fn(u64) -> RobotNote,
    ) -> Result<()> {
        let ours = |r: &NewRun| r.entity == target && r.entry_id == entry;
        for run in self.pending.runs.iter_mut().filter(|r| ours(r)) {
            if matches!(
                run.status,
                RunStatus::Waiting | RunStatus::WaitingForDate | RunStatus::Queued
            ) {
                run.status = RunStatus::Cancelled;
                run.finished_at = Some(at);
                run.report = Some(RunReport::not_run(robot(run.robot_id), 0, NotRun::LeftStage));
            }
        }
        if let Some(open) = self
            .pending
            .entries
            .iter_mut()
            .find(|e| e.target == target && e.entry == entry)
        {
            open.left_at = Some(at);
            return Ok(());
        }
        let (kind, id) = (target.kind.as_str(), target.id as i64);
        on!(&mut self.conn, t => sqlx::query("UPDATE stage_entries SET left_at = $1 WHERE kind = $2 AND entity_id = $3 AND entry = $4")
            .bind(at.0).bind(kind).bind(id).bind(entry as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        let cancelled: Vec<(i64, i64, i64, Option<String>)> = on!(&mut self.conn, t => sqlx::query_as("UPDATE runs SET status = 'cancelled', finished_at = $1 WHERE kind = $2 AND entity_id = $3 AND entry_id = $4 AND status IN ('waiting', 'waiting-for-date', 'queued') RETURNING id, robot_id, attempts, report")
            .bind(at.0).bind(kind).bind(id).bind(entry as i64).fetch_all(&mut **t).await)?;
        if cancelled.is_empty() {
            return Ok(());
        }
        let reports: Vec<(i64, String)> = cancelled
            .into_iter()
            .map(|(id, robot_id, attempts, earlier)| {
                let report = match earlier.and_then(|text| serde_json::from_str::<RunReport>(&text).ok()) {
                    Some(earlier) => RunReport {
                        reason: Some(NotRun::LeftStage),
                        ..earlier
                    },
                    None => RunReport::not_run(robot(robot_id as u64), attempts as u32, NotRun::LeftStage),
                };
                (id, to_json(&report))
            })
            .collect();
        for chunk in reports.chunks(MAX_BINDS / 2) {
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new("UPDATE runs SET report = v.column2 FROM (");
                q.push_values(chunk, |mut b, (id, report)| {
                    b.push_bind(*id).push_bind(report.as_str());
                });
                q.push(") AS v WHERE runs.id = v.column1");
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Records an event (written at commit, in order).
    pub fn insert_event(&mut self, target: EntityRef, event: &str, data: &serde_json::Value, at: Timestamp) {
        self.pending.events.push(EventRow {
            target,
            event: event.to_owned(),
            data: data.to_string(),
            at,
        });
    }

    /// Queues a new run (written at commit).
    pub fn insert_run(&mut self, run: NewRun) {
        self.pending.runs.push(run);
    }

    /// Moves a schedule's next firing from `seen` to `next`, holding its row
    /// until this transaction ends; `false` when another process moved it
    /// first (PostgreSQL makes a concurrent mover wait for this
    /// transaction, then finds `seen` gone). What the firing does commits
    /// with the move, or neither does: a firing happens exactly once.
    pub async fn advance_schedule(&mut self, of: Scheduled, seen: Timestamp, next: Timestamp) -> Result<bool> {
        let (table, key, id) = of.row();
        let sql = format!("UPDATE {table} SET next_at = $1 WHERE {key} = $2 AND next_at = $3");
        let n = on!(&mut self.conn, t => sqlx::query(&sql).bind(next.0).bind(id).bind(seen.0).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Queues a run of `robot_id`, due at `at`, for every entity in a stage,
    /// on its current entry: one statement however many there are, so a
    /// firing over a large stage reads nothing into the process. Returns
    /// how many it queued.
    pub async fn queue_stage_runs(
        &mut self,
        pipeline: &str,
        stage: &str,
        robot_id: u64,
        cause: &Cause,
        at: Timestamp,
    ) -> Result<u64> {
        let cause = to_json(cause);
        Ok(on!(&mut self.conn, t => sqlx::query(
            "INSERT INTO runs (entry_id, robot_id, kind, entity_id, status, cause, due_at, created_at) \
             SELECT COALESCE(entry_id, 0), $1, kind, id, 'queued', $2, $3, $3 FROM entities WHERE pipeline = $4 AND stage = $5")
            .bind(robot_id as i64).bind(&cause).bind(at.0).bind(pipeline).bind(stage)
            .execute(&mut **t).await.map(|r| r.rows_affected()))?)
    }

    /// Queues the waiting run of `robot_id` in a stage entry, due at
    /// `due_at`; with no due time (its date field is empty), it waits for
    /// the date instead.
    pub async fn release_waiting(
        &mut self,
        target: EntityRef,
        entry: u64,
        robot_id: u64,
        due_at: Option<Timestamp>,
    ) -> Result<()> {
        self.requeue(target, entry, robot_id, RunStatus::Waiting, due_at).await
    }

    /// Queues the run of `robot_id` in a stage entry that waits for its date
    /// field, due at `due_at`.
    pub async fn release_dated(
        &mut self,
        target: EntityRef,
        entry: u64,
        robot_id: u64,
        due_at: Timestamp,
    ) -> Result<()> {
        self.requeue(target, entry, robot_id, RunStatus::WaitingForDate, Some(due_at))
            .await
    }

    /// Moves the run of `robot_id` in a stage entry from `from` to queued at
    /// `due_at`, or to waiting for its date without one.
    async fn requeue(
        &mut self,
        target: EntityRef,
        entry: u64,
        robot_id: u64,
        from: RunStatus,
        due_at: Option<Timestamp>,
    ) -> Result<()> {
        let (status, due_at) = match due_at {
            Some(due) => (RunStatus::Queued, Some(due)),
            None => (RunStatus::WaitingForDate, None),
        };
        let ours =
            |r: &&mut NewRun| r.entity == target && r.entry_id == entry && r.robot_id == robot_id && r.status == from;
        if let Some(run) = self.pending.runs.iter_mut().find(ours) {
            run.status = status;
            if let Some(due) = due_at {
                run.due_at = due;
            }
            return Ok(());
        }
        on!(&mut self.conn, t => sqlx::query("UPDATE runs SET status = $1, due_at = COALESCE($2, due_at) WHERE kind = $3 AND entity_id = $4 AND entry_id = $5 AND robot_id = $6 AND status = $7")
            .bind(status.as_str()).bind(due_at.map(|d| d.0)).bind(target.kind.as_str()).bind(target.id as i64).bind(entry as i64).bind(robot_id as i64).bind(from.as_str()).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends leased runs whose fences still hold, in one statement; returns
    /// the ids that ended. A run missing from the answer was taken over by
    /// another worker, and nothing of it may be applied.
    pub async fn end_runs(&mut self, ends: &[RunEnd], at: Timestamp) -> Result<HashSet<u64>> {
        let mut ended = HashSet::with_capacity(ends.len());
        for chunk in ends.chunks(MAX_BINDS / 7) {
            let ids: Vec<i64> = on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new(
                    "UPDATE runs SET status = v.column3, report = v.column4, due_at = COALESCE(v.column5, runs.due_at), \
                     awaiting_kind = v.column6, awaiting_id = v.column7, finished_at = CASE WHEN v.column5 IS NULL THEN ",
                );
                q.push_bind(at.0);
                q.push(" END, lease_owner = NULL, lease_until = NULL FROM (");
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.id as i64)
                        .push_bind(e.fence as i64)
                        .push_bind(e.status.as_str())
                        .push_bind(e.report.as_str())
                        .push_bind(e.retry_at.map(|t| t.0))
                        .push_bind(e.awaiting.map(|a| a.kind.as_str()))
                        .push_bind(e.awaiting.map(|a| a.id as i64));
                });
                q.push(") AS v WHERE runs.id = v.column1 AND runs.fence = v.column2 AND runs.status = 'leased' RETURNING runs.id");
                q.build_query_scalar().fetch_all(&mut **t).await
            })?;
            ended.extend(ids.into_iter().map(|id| id as u64));
        }
        Ok(ended)
    }

    /// Adds a comment to an entity's timeline (written at commit).
    pub fn add_comment(&mut self, target: EntityRef, text: &str, run_id: Option<u64>, at: Timestamp) {
        self.pending.comments.push(CommentRow {
            target,
            text: text.to_owned(),
            run_id,
            at,
        });
    }

    /// Notifies a user (written at commit).
    pub fn add_notification(
        &mut self,
        user: u64,
        text: &str,
        about: Option<EntityRef>,
        run_id: Option<u64>,
        at: Timestamp,
    ) {
        self.pending.notifications.push(NotificationRow {
            user,
            text: text.to_owned(),
            about,
            run_id,
            at,
        });
    }

    /// Puts a message in the outbox (written at commit).
    pub fn add_message(&mut self, message: Message, run_id: Option<u64>, at: Timestamp) {
        // An email gets a tracking token: 128 random bits, unguessable.
        let token = (message.channel == Channel::Email).then(|| {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).expect("the system has randomness");
            hex::encode(bytes)
        });
        self.pending.messages.push(MessageRow {
            message,
            run_id,
            at,
            token,
        });
    }

    /// Ends the runs that awaited `target`, now completed; returns each
    /// one's robot, entity and stage entry, for the robots after it.
    pub async fn end_awaiting(&mut self, target: EntityRef, at: Timestamp) -> Result<Vec<(u64, EntityRef, u64)>> {
        let rows: Vec<(i64, String, i64, i64)> = on!(&mut self.conn, t => sqlx::query_as(
            "UPDATE runs SET status = 'succeeded', finished_at = $1 WHERE status = 'awaiting' AND awaiting_kind = $2 AND awaiting_id = $3 \
             RETURNING robot_id, kind, entity_id, entry_id"
        ).bind(at.0).bind(target.kind.as_str()).bind(target.id as i64).fetch_all(&mut **t).await)?;
        rows.into_iter()
            .map(|(robot, kind, id, entry)| {
                let kind = kind
                    .parse()
                    .map_err(|e: crate::domain::ValueError| super::StoreError::Corrupt {
                        what: "entity kind",
                        detail: e.to_string(),
                    })?;
                Ok((robot as u64, EntityRef { kind, id: id as u64 }, entry as u64))
            })
            .collect()
    }

    pub async fn kv_set(&mut self, namespace: &str, key: &str, value: Option<&[u8]>) -> Result<()> {
        match value {
            Some(value) => {
                on!(&mut self.conn, t => sqlx::query("INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value")
                .bind(namespace).bind(key).bind(value).execute(&mut **t).await.map(|r| r.rows_affected()))?
            }
            None => {
                on!(&mut self.conn, t => sqlx::query("DELETE FROM kv WHERE namespace = $1 AND key = $2").bind(namespace).bind(key).execute(&mut **t).await.map(|r| r.rows_affected()))?
            }
        };
        Ok(())
    }
}
