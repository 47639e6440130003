//! The worker: leases due runs, prepares them (stage still current?
//! condition? properties), runs them in the sandbox on a blocking thread, and
//! finishes them in one transaction with their effects.
//!
//! A batch of runs shares that transaction, so the database sees one commit
//! for many runs; each run still finishes only if its fence holds, so a
//! worker whose lease was taken over applies nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::effects::next_waiting;
use super::stage;
use super::{Engine, Result, Settings};
use crate::domain::{
    Effect, Entity, EntityRef, FieldValue, Fields, IfEmpty, LogLevel, LogLine, NotRun, Outcome, Recipient, Reference,
    RobotBinding, RobotNote, RunReport, RunStatus, Scope, Timestamp, Value, check, evaluate_with, readable, resolve,
};
use futures_util::future::join_all;

use super::webhook;
use crate::runtime::{AttemptReport, RunError, RunRequest};
use crate::storage::{Claim, RunEnd};

/// Keeps a batch's leases alive; stops when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Leased runs, prepared and not yet worked; their leases are kept alive
/// until the batch is worked or dropped.
pub struct Batch {
    steps: Vec<Step>,
    settings: Arc<Settings>,
    _heartbeat: Heartbeat,
}

/// What to do with one leased run.
enum Step {
    /// Finish without running: cancelled, skipped, or unrunnable.
    Finish {
        claim: Claim,
        status: RunStatus,
        report: Box<RunReport>,
    },
    /// Run it in the sandbox.
    Run(Box<Prepared>),
}

/// How a leased run ends, decided before the transaction that records it.
struct Ending {
    claim: Claim,
    end: RunEnd,
    /// What the attempt came to, for the metrics and the log.
    observed: Observed,
    /// The plugin whose effects these are.
    plugin: String,
    /// Applied only if the run succeeds and its fence holds.
    effects: Vec<Effect>,
}

/// An attempt's outcome (or why the run did not run) and blame as labels,
/// and, when the robot ran, how long and on how much fuel.
struct Observed {
    outcome: String,
    blame: &'static str,
    ran: Option<(f64, u64)>,
    /// The outcome in words, for the log of a failure.
    said: String,
}

impl Observed {
    fn of(report: &RunReport) -> Observed {
        let tag = |value: serde_json::Result<serde_json::Value>, key: &str| {
            value.ok().and_then(|v| v[key].as_str().map(str::to_owned))
        };
        let outcome = match (&report.outcome, &report.reason) {
            (Some(outcome), _) => tag(serde_json::to_value(outcome), "outcome"),
            (None, Some(reason)) => tag(serde_json::to_value(reason), "reason"),
            (None, None) => None,
        };
        Observed {
            outcome: outcome.unwrap_or_else(|| "none".into()),
            blame: match report.blame {
                Some(crate::domain::Blame::Guest) => "guest",
                Some(crate::domain::Blame::Host) => "host",
                Some(crate::domain::Blame::External) => "external",
                None => "none",
            },
            ran: report
                .outcome
                .as_ref()
                .map(|_| (report.duration_us as f64 / 1e6, report.fuel_used)),
            said: report.outcome.as_ref().map(ToString::to_string).unwrap_or_default(),
        }
    }

    /// Counts the attempt, and logs it when it failed.
    fn record(&self, run: u64, robot: u64, attempt: u32, status: RunStatus) {
        let metrics = crate::metrics::metrics();
        let labels = crate::metrics::RunLabels {
            status: status.as_str().into(),
            outcome: self.outcome.clone(),
            blame: self.blame.into(),
        };
        metrics.runs.get_or_create(&labels).inc();
        if let Some((seconds, fuel)) = self.ran {
            metrics.run_seconds.observe(seconds);
            metrics.run_fuel.observe(fuel as f64);
        }
        let (outcome, blame) = (&self.said, self.blame);
        match status {
            RunStatus::Dead => tracing::error!(run, robot, attempt, blame, %outcome, "a run failed for good"),
            RunStatus::Queued => {
                tracing::warn!(run, robot, attempt, blame, %outcome, "a run failed; it will be tried again")
            }
            _ => {}
        }
    }
}

impl Ending {
    fn new(claim: Claim, status: RunStatus, retry_at: Option<Timestamp>, report: &RunReport) -> Ending {
        let end = RunEnd::new(claim.run_id, claim.fence, status, retry_at, report);
        Ending {
            observed: Observed::of(report),
            claim,
            end,
            plugin: String::new(),
            effects: Vec::new(),
        }
    }
}

/// A leased run ready to run: its robot as bound, its entity, its resolved
/// properties and the plugin installed when it was leased.
struct Prepared {
    claim: Claim,
    robot: RobotBinding,
    entity: Entity,
    properties: Fields,
    installed: Arc<super::Installed>,
}

impl Engine {
    /// Leases, runs and finishes up to `limit` due runs; returns how many.
    pub async fn run_due(&self, limit: u32) -> Result<usize> {
        match self.lease(limit).await? {
            Some(batch) => self.work(batch).await,
            None => Ok(0),
        }
    }

    /// Leases up to `limit` due runs and prepares them: each run holds the
    /// plugin installed now, and keeps it even if the plugin is upgraded
    /// before the run is worked. `None` when nothing is due.
    pub async fn lease(&self, limit: u32) -> Result<Option<Batch>> {
        let now = self.now();
        let until = Timestamp(now.0 + self.config.lease_ms);
        let claims = self.store.claim(&self.owner, now, until, limit).await?;
        if claims.is_empty() {
            return Ok(None);
        }
        let heartbeat = self.keep_leases(claims.iter().map(|c| c.run_id).collect());
        let settings = self.settings();
        let refs: Vec<EntityRef> = claims.iter().map(|c| c.entity).collect();
        let entities = self.store.entities_with_entry(&refs).await?;
        let mut steps = Vec::with_capacity(claims.len());
        for claim in claims {
            // A batch may hold several runs of one entity: each gets a copy.
            let found = entities.get(&claim.entity).cloned();
            steps.push(self.prepare(&settings, claim, found).await?);
        }
        Ok(Some(Batch {
            steps,
            settings,
            _heartbeat: heartbeat,
        }))
    }

    /// Runs a leased batch and records how each run ended; returns how many.
    pub async fn work(&self, batch: Batch) -> Result<usize> {
        let Batch { steps, settings, .. } = batch;
        let count = steps.len();
        let now = self.now();
        let mut endings = Vec::with_capacity(count);
        let (mut wasm, mut hooks) = (Vec::new(), Vec::new());
        for step in steps {
            match step {
                Step::Finish { claim, status, report } => endings.push(Ending::new(claim, status, None, &report)),
                Step::Run(run) if matches!(run.installed.handler, super::Handler::Wasm(_)) => wasm.push(*run),
                Step::Run(run) => hooks.push(*run),
            }
        }
        // Webhook robots wait on the network: call them all at once, while
        // the sandboxed ones run on a blocking thread.
        let called = join_all(hooks.iter().map(|run| {
            use tracing::Instrument as _;
            let span = tracing::info_span!("run", id = run.claim.run_id, robot = run.claim.robot_id);
            self.call_webhook(run, now).instrument(span)
        }));
        let sandboxed = self.run_sandboxed(wasm, now);
        let (called, mut ran) = tokio::join!(called, sandboxed);
        ran.extend(hooks.into_iter().zip(called.into_iter().map(Ok)));

        let now = self.now();
        for (run, report) in ran {
            endings.push(match report {
                Ok(report) => self.complete(&settings, run, report, now).await,
                Err(e) => {
                    let outcome = Outcome::HostError { message: e.to_string() };
                    let report = RunReport::failed(RobotNote::of(&run.robot), run.claim.attempt, outcome);
                    self.fail(run.claim, report, false, now)
                }
            });
        }
        self.record(&settings, endings, now).await?;
        self.wake.notify_waiters();
        Ok(count)
    }

    /// Records how a batch of runs ended, in one transaction: their ends
    /// (each only while its fence holds) in one statement, then the effects
    /// of the runs that succeeded, on entities locked together, and the
    /// robots that waited for them.
    async fn record(&self, settings: &Settings, endings: Vec<Ending>, now: Timestamp) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let mut observed = Vec::with_capacity(endings.len());
        let (ends, applied): (Vec<RunEnd>, Vec<_>) = endings
            .into_iter()
            .map(|e| {
                let awaits = e.end.status == RunStatus::Awaiting;
                observed.push((e.end.id, e.end.status, e.claim.robot_id, e.claim.attempt, e.observed));
                (e.end, (e.claim, e.plugin, e.effects, awaits))
            })
            .unzip();
        let ended = tx.end_runs(&ends, now).await?;
        let mut done = Vec::with_capacity(ends.len());
        for (end, applied) in ends.iter().zip(applied) {
            if !ended.contains(&end.id) {
                tracing::warn!(run = end.id, "lease lost before finishing; another worker owns the run");
            } else if end.retry_at.is_none() {
                done.push(applied);
            }
        }
        let mut touched: Vec<EntityRef> = Vec::new();
        for (claim, _, effects, awaits) in &done {
            touched.extend(effects.iter().filter_map(Effect::changes));
            if !awaits && next_waiting(settings, claim.robot_id).is_some() {
                touched.push(claim.entity);
            }
        }
        tx.lock_entities(&touched).await?;
        for (claim, plugin, effects, awaits) in done {
            for effect in effects {
                self.apply(&mut tx, settings, &plugin, claim.run_id, effect, now)
                    .await?;
            }
            // An awaiting run releases the next robot when its task is done.
            if !awaits {
                self.release_next(&mut tx, settings, claim.robot_id, claim.entity, claim.entry_id, now)
                    .await?;
            }
        }
        tx.commit().await?;
        for (id, status, robot, attempt, seen) in observed {
            if ended.contains(&id) {
                seen.record(id, robot, attempt, status);
            }
        }
        Ok(())
    }

    /// Runs sandboxed runs one after another on a blocking thread.
    async fn run_sandboxed(
        &self,
        runs: Vec<Prepared>,
        now: Timestamp,
    ) -> Vec<(Prepared, Result<AttemptReport, RunError>)> {
        if runs.is_empty() {
            return Vec::new();
        }
        let sandbox = self.sandbox.clone();
        let written = super::data::Written::default();
        let contexts: Vec<_> = (runs.iter())
            .map(|j| self.context_after(&j.robot.plugin, written.clone()))
            .collect();
        tokio::task::spawn_blocking(move || {
            runs.into_iter()
                .zip(contexts)
                .map(|(run, context)| {
                    let super::Handler::Wasm(plugin) = &run.installed.handler else {
                        unreachable!("only sandboxed runs come here")
                    };
                    let run_id = run.claim.run_id.to_string();
                    let key = format!("run-{}", run.claim.run_id);
                    let request = RunRequest {
                        robot: &run.robot.robot,
                        entity: &run.entity,
                        properties: &run.properties,
                        cause: &run.claim.cause,
                        run_id: &run_id,
                        attempt: run.claim.attempt,
                        idempotency_key: &key,
                        now,
                        grants: run.installed.grants.clone(),
                        fuel: run.robot.fuel.or(run.installed.fuel.default),
                        context,
                    };
                    // What the sandbox logs while it runs carries the run.
                    let span = tracing::info_span!("run", id = run.claim.run_id, robot = run.claim.robot_id);
                    let report = span.in_scope(|| sandbox.run(plugin, request));
                    if let Ok(attempt) = &report
                        && attempt.outcome.is_success()
                    {
                        written.record(&run.robot.plugin, &attempt.effects);
                    }
                    (run, report)
                })
                .collect()
        })
        .await
        .expect("the sandbox thread does not panic")
    }

    async fn call_webhook(&self, run: &Prepared, now: Timestamp) -> AttemptReport {
        let super::Handler::Webhook { url, digest } = &run.installed.handler else {
            unreachable!("only webhook robots come here")
        };
        let call = webhook::Call {
            url,
            digest: *digest,
            robot: &run.robot.robot,
            entity: &run.entity,
            properties: &run.properties,
            cause: &run.claim.cause,
            run_id: run.claim.run_id,
            attempt: run.claim.attempt,
            now,
            grants: run.installed.grants.clone(),
            timeout: self.sandbox.config().wall_time(),
        };
        webhook::run(&self.http, call).await
    }

    /// Extends the leases on `runs` every third of a lease until dropped, so
    /// a long batch is not taken over while it is still working.
    fn keep_leases(&self, runs: Vec<u64>) -> Heartbeat {
        let (store, owner, clock, lease) = (
            self.store.clone(),
            self.owner.clone(),
            self.clock.clone(),
            self.config.lease_ms,
        );
        Heartbeat(tokio::spawn(async move {
            let period = std::time::Duration::from_millis((lease / 3).max(1) as u64);
            loop {
                tokio::time::sleep(period).await;
                if let Err(error) = store.heartbeat(&owner, &runs, Timestamp(clock.now().0 + lease)).await {
                    tracing::warn!(%error, "could not extend leases");
                }
            }
        }))
    }

    async fn prepare(&self, settings: &Settings, claim: Claim, found: Option<(Entity, Option<u64>)>) -> Result<Step> {
        let robot = settings.robot(claim.robot_id).cloned();
        let note = robot.as_ref().map_or_else(RobotNote::removed, RobotNote::of);
        let not_run = |claim: Claim, reason: NotRun| {
            let report = RunReport::not_run(note.clone(), claim.attempt, reason);
            Ok(Step::Finish {
                status: report.reason.as_ref().map_or(RunStatus::Cancelled, NotRun::status),
                claim,
                report: Box::new(report),
            })
        };
        let failed = |claim: Claim, outcome: Outcome| {
            Ok(Step::Finish {
                report: Box::new(RunReport::failed(note.clone(), claim.attempt, outcome)),
                claim,
                status: RunStatus::Dead,
            })
        };
        let Some((entity, entry)) = found else {
            return not_run(claim, NotRun::EntityGone);
        };
        if entry != Some(claim.entry_id) {
            return not_run(claim, NotRun::LeftStage);
        }
        let Some(robot) = robot else {
            return not_run(claim, NotRun::RobotRemoved);
        };
        if let Some(reason) = &robot.disabled {
            return not_run(
                claim,
                NotRun::RobotDisabled {
                    because: reason.clone(),
                },
            );
        }
        let Some(installed) = self.plugin(&robot.plugin) else {
            let message = match self.broken(&robot.plugin) {
                Some(broken) => format!(
                    "plugin `{}` is installed but does not load: {}; replace or remove it",
                    robot.plugin, broken.reason
                ),
                None => format!("plugin `{}` is not installed", robot.plugin),
            };
            return failed(claim, Outcome::HostError { message });
        };
        if matches!(installed.handler, super::Handler::Trigger(_)) {
            let message = format!("plugin `{}` is a trigger plugin: it has no robots", robot.plugin);
            return failed(claim, Outcome::ConfigurationError { message });
        }
        if robot.timing.skip_outside_working_time
            && !settings.calendar_for(&robot, &entity).is_working_time(claim.due_at)
        {
            return not_run(claim, NotRun::OutsideWorkingTime);
        }
        if let Some(rel) = robot
            .timing
            .relative_to
            .as_ref()
            .filter(|r| r.if_empty == IfEmpty::Skip)
            && stage::date_of(&entity, &rel.field, &settings.calendar).is_none()
        {
            let field = rel.field.clone();
            return not_run(claim, NotRun::DateEmpty { field });
        }
        if let Some(condition) = &robot.condition {
            match evaluate_with(condition, &entity, claim.cause.event()) {
                Ok(verdict) if !verdict.passed => {
                    return not_run(
                        claim,
                        NotRun::ConditionFalse {
                            because: verdict.reason,
                        },
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    let message = format!("the condition cannot be checked: {e}");
                    return failed(claim, Outcome::ConfigurationError { message });
                }
            }
        }
        // Only robots that use earlier robots' values pay for reading them.
        let uses_returns = robot
            .properties
            .values()
            .filter_map(|v| check(v).ok())
            .flatten()
            .any(|r| matches!(r, Reference::Robot { .. }));
        let returns = if uses_returns {
            self.earlier_returns(claim.entity, claim.entry_id).await?
        } else {
            BTreeMap::new()
        };
        let now = self.now();
        match self.properties(
            settings,
            &robot,
            &installed,
            &entity,
            &returns,
            claim.cause.event(),
            now,
        ) {
            Ok(properties) => Ok(Step::Run(Box::new(Prepared {
                claim,
                robot,
                entity,
                properties,
                installed,
            }))),
            Err(message) => failed(claim, Outcome::ConfigurationError { message }),
        }
    }

    /// Values returned by the stage entry's finished robots, by robot id.
    async fn earlier_returns(&self, entity: EntityRef, entry: u64) -> Result<BTreeMap<String, Fields>> {
        let mut returns = BTreeMap::new();
        for run in self.store.entry_runs(entity, entry).await? {
            if let Some(report) = run.report {
                returns.insert(run.robot_id.to_string(), report.returns);
            }
        }
        Ok(returns)
    }

    /// The robot's properties: defaults, then the binding's values with
    /// expressions resolved, then the recipient: one user, or for a group
    /// the list of its people present `now`.
    #[allow(clippy::too_many_arguments)]
    fn properties(
        &self,
        settings: &Settings,
        robot: &RobotBinding,
        installed: &super::Installed,
        entity: &Entity,
        returns: &BTreeMap<String, Fields>,
        event: &Fields,
        now: Timestamp,
    ) -> Result<Fields, String> {
        let scope = Scope {
            entity,
            directory: &settings.directory,
            constants: &settings.constants,
            returns,
            event,
            time_zone: settings.calendar.time_zone(),
        };
        let mut properties = Fields::new();
        let info = match &installed.handler {
            super::Handler::Wasm(plugin) => plugin.robots().iter().find(|r| r.code == robot.robot),
            super::Handler::Webhook { .. } | super::Handler::Trigger(_) => None,
        };
        if let Some(info) = info {
            for spec in &info.properties {
                if let Some(default) = &spec.default {
                    properties.insert(spec.code.clone(), default.clone());
                }
            }
        }
        for (code, value) in &robot.properties {
            let mut value = resolve(value, &scope).map_err(|e| format!("property `{code}`: {e}"))?;
            // A text property gets text, whatever an expression in it
            // gave: `{=Document.X}` of an option field is its code.
            let spec = info.and_then(|info| info.properties.iter().find(|p| &p.code == code));
            if spec.is_some_and(|p| p.value_type == crate::domain::ValueType::Text) {
                value = as_text(value, scope.time_zone);
            }
            properties.insert(code.clone(), value);
        }
        match &robot.recipient {
            Some(Recipient::Among(among)) => {
                let directory = &settings.directory;
                let people = if among.skip_absent {
                    directory
                        .present(&among.users, &among.departments, now, &settings.calendar)
                        .map_err(|why| format!("no one the robot may choose is present: {}", why.join("; ")))?
                } else {
                    let people = directory.people(&among.users, &among.departments);
                    if people.is_empty() {
                        return Err("the recipients' list is empty and their departments have no members".into());
                    }
                    people
                };
                let people = people.into_iter().map(Value::User).collect();
                properties.insert("recipient".into(), FieldValue::List(people));
            }
            Some(recipient) => {
                let user = settings.addressee(recipient, entity)?;
                let user = user.ok_or_else(|| format!("the recipient ({recipient:?}) resolves to no user"))?;
                properties.insert("recipient".into(), FieldValue::Single(Value::User(user)));
            }
            None => {}
        }
        Ok(properties)
    }

    /// How a run the sandbox ran ends: succeeded with its effects (checked
    /// first), or failed.
    async fn complete(&self, settings: &Settings, run: Prepared, attempt: AttemptReport, now: Timestamp) -> Ending {
        let mut report = RunReport {
            robot: RobotNote::of(&run.robot),
            attempt: run.claim.attempt,
            reason: None,
            outcome: Some(attempt.outcome),
            blame: attempt.blame,
            plugin: Some(attempt.plugin),
            version: run.installed.version.clone(),
            properties: run.properties,
            effects: attempt.effects,
            returns: attempt.returns,
            logs: attempt.logs,
            denials: attempt.denials,
            fuel_used: attempt.fuel_used,
            duration_us: attempt.duration.as_micros() as u64,
        };
        let outcome = report.outcome.as_ref().expect("an attempt has an outcome");
        if !outcome.is_success() {
            let retryable = outcome.is_retryable();
            return self.fail(run.claim, report, retryable, now);
        }
        // A conversion's copies go only where the new entity's kind
        // declares the field; what was left out is logged on the run.
        for effect in &mut report.effects {
            if let Effect::CreateEntity { id, entity: new } = effect
                && new.parent == Some(run.entity.reference())
            {
                let dropped = settings.fields.drop_uncopied(id.kind, &mut new.fields, &run.entity);
                if !dropped.is_empty() {
                    let kind = id.kind.as_str();
                    report.logs.push(LogLine {
                        level: LogLevel::Info,
                        message: format!(
                            "not copied to the new {kind} {id}: {} (not declared for {kind}s)",
                            dropped.join(", ")
                        ),
                    });
                }
            }
        }
        if let Err(problem) = self.check_effects(settings, &run.entity, &report.effects).await {
            let outcome = Outcome::RobotError {
                code: "effect-refused".into(),
                message: format!("asked for an effect the host cannot make: {problem}"),
                retryable: false,
            };
            report.blame = outcome.blame();
            report.outcome = Some(outcome);
            report.effects.clear();
            return self.fail(run.claim, report, false, now);
        }
        let awaiting = report.effects.iter().find_map(|e| match e {
            Effect::WaitFor { target } => Some(*target),
            _ => None,
        });
        let status = if awaiting.is_some() {
            RunStatus::Awaiting
        } else {
            RunStatus::Succeeded
        };
        let mut ending = Ending::new(run.claim, status, None, &report);
        ending.end.awaiting = awaiting;
        ending.plugin = run.robot.plugin;
        ending.effects = report.effects;
        ending
    }

    /// A failed run: another attempt after a backoff, or dead after its
    /// last attempt or a failure that cannot pass.
    fn fail(&self, claim: Claim, report: RunReport, retryable: bool, now: Timestamp) -> Ending {
        if retryable && claim.attempt < self.config.max_attempts {
            let retry_at = Timestamp(now.0 + backoff(self.config.backoff_ms, &claim));
            return Ending::new(claim, RunStatus::Queued, Some(retry_at), &report);
        }
        Ending::new(claim, RunStatus::Dead, None, &report)
    }
}

/// A value as text: each value written as it reads.
fn as_text(value: FieldValue, time_zone: chrono_tz::Tz) -> FieldValue {
    let text = |v: Value| match v {
        Value::Text(t) => Value::Text(t),
        other => Value::Text(readable(&other, time_zone)),
    };
    match value {
        FieldValue::Single(v) => FieldValue::Single(text(v)),
        FieldValue::List(vs) => FieldValue::List(vs.into_iter().map(text).collect()),
        FieldValue::Empty => FieldValue::Empty,
    }
}

/// How long a failed run waits before its next attempt: `backoff_ms`
/// doubling with each attempt, plus up to a quarter more, so runs that
/// failed together (a database restart, an outside service down) do not
/// all come back at once. The jitter is drawn from the run and attempt, so
/// a retry's time is reproducible.
fn backoff(backoff_ms: i64, claim: &Claim) -> i64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let base = backoff_ms << (claim.attempt.max(1) - 1).min(16);
    let draw = BuildHasherDefault::<DefaultHasher>::default().hash_one((claim.run_id, claim.attempt));
    base + (draw % (base as u64 / 4 + 1)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Cause, EntityKind, EntityRef};

    fn claim(run_id: u64, attempt: u32) -> Claim {
        Claim {
            run_id,
            entry_id: 1,
            robot_id: 1,
            entity: EntityRef {
                kind: EntityKind::Deal,
                id: 1,
            },
            cause: Cause::Manual { user: 1 },
            due_at: Timestamp(0),
            attempt,
            fence: 1,
        }
    }

    #[test]
    fn backoff_doubles_with_a_reproducible_jitter_of_up_to_a_quarter() {
        for attempt in 1..=5 {
            let base = 10_000i64 << (attempt - 1);
            let waits: Vec<i64> = (1..=200).map(|run| backoff(10_000, &claim(run, attempt))).collect();
            assert!(waits.iter().all(|w| (base..=base + base / 4).contains(w)), "{waits:?}");
            let distinct: std::collections::HashSet<_> = waits.iter().collect();
            assert!(distinct.len() > 100, "runs that failed together are spread out");
            assert_eq!(waits[0], backoff(10_000, &claim(1, attempt)), "reproducible");
        }
    }
}
