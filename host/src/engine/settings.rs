//! The engine's configuration (`[engine]`) and the portal's automation
//! settings: read into [`Settings`] once and kept until a change, which is
//! checked here, written in its own transaction and read back
//! ([`Engine::reload`]). Whether a robot or trigger may be placed is
//! `binding.rs`'s to decide.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::{Engine, EngineError, Result, binding, invalid};
use crate::domain::{
    Absence, Calendar, Constants, Department, Directory, Entity, FieldValue, Pipeline, Recipient, RobotBinding, Schema,
    TriggerBinding, User, UserId, Value,
};
use crate::storage::Tx;

/// How the engine retries, leases and polls: the `[engine]` table of the
/// configuration file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EngineConfig {
    /// Attempts a run gets before it is dead.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each one after.
    pub backoff_ms: i64,
    /// How long a worker holds a run before another may take it over.
    pub lease_ms: i64,
    /// Runs claimed, run and committed together.
    pub batch: u32,
    /// The longest a worker sleeps before looking for work that other
    /// processes queued.
    pub poll_ms: u64,
    /// Worker loops per process.
    pub workers: usize,
    /// Where people reach this host, for the links in what it sends: an
    /// email's links and open-tracking image go through `/t/` here.
    pub public_url: String,
    /// Days an inbound call's record is kept; a sender's idempotency key
    /// makes a retried call a no-op for as long.
    pub keep_calls_days: u32,
    /// Where the outbox's messages go: the configuration's own `[delivery]`
    /// table, not a key of `[engine]`.
    #[serde(skip)]
    pub delivery: super::DeliveryConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_attempts: 3,
            backoff_ms: 10_000,
            lease_ms: 30_000,
            batch: 64,
            poll_ms: 500,
            workers: 2,
            public_url: "http://127.0.0.1:8080".into(),
            keep_calls_days: 30,
            delivery: super::DeliveryConfig::default(),
        }
    }
}

/// The portal's automation settings, read once and kept until changed.
#[derive(Default)]
pub(crate) struct Settings {
    pub(super) pipelines: HashMap<String, Pipeline>,
    /// Robot bindings by stage, in order.
    pub(super) robots: HashMap<(String, String), Vec<RobotBinding>>,
    pub(super) triggers: HashMap<String, Vec<TriggerBinding>>,
    pub(super) directory: Directory,
    pub(super) constants: Constants,
    /// The constants' declared types, which bindings and uses are checked
    /// against.
    pub(super) constant_decls: HashMap<String, crate::domain::ConstantDecl>,
    pub(super) calendar: Arc<Calendar>,
    /// The declared custom fields every write is checked against.
    pub(super) fields: Schema,
}

impl Settings {
    pub(super) fn robots_at(&self, pipeline: &str, stage: &str) -> &[RobotBinding] {
        self.robots
            .get(&(pipeline.to_owned(), stage.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(super) fn robot(&self, id: u64) -> Option<&RobotBinding> {
        self.robots.values().flatten().find(|r| r.id == id)
    }

    /// The one user a recipient names for `entity`: `None` when it names
    /// no one (no responsible, a department head missing) or several
    /// ([`Recipient::Among`]); an error for a constant that holds no user.
    pub(super) fn addressee(&self, recipient: &Recipient, entity: &Entity) -> Result<Option<UserId>, String> {
        Ok(match recipient {
            Recipient::Responsible => entity.responsible,
            Recipient::Supervisor => entity.responsible.and_then(|u| self.directory.supervisor(u)),
            Recipient::User(u) => Some(*u),
            Recipient::Constant(name) => match self.constants.get(name) {
                Some(FieldValue::Single(Value::User(u))) => Some(*u),
                Some(_) => return Err(format!("constant `{name}` does not hold a user")),
                None => return Err(format!("constant `{name}` is not set")),
            },
            Recipient::Among(_) => None,
        })
    }

    /// The calendar `robot` counts working time by for `entity`: that of
    /// the one person it is addressed to, when they keep their own hours;
    /// else the portal's.
    pub(super) fn calendar_for(&self, robot: &RobotBinding, entity: &Entity) -> Cow<'_, Calendar> {
        let own = robot
            .recipient
            .as_ref()
            .and_then(|r| self.addressee(r, entity).ok().flatten())
            .and_then(|u| self.directory.user(u))
            .filter(|u| u.hours.is_some());
        match own {
            Some(user) => Cow::Owned(user.calendar(&self.calendar)),
            None => Cow::Borrowed(&self.calendar),
        }
    }
}

impl Engine {
    /// Reads the automation settings again, after a change.
    pub async fn reload(&self) -> Result<()> {
        let mut settings = Settings {
            pipelines: self
                .store
                .pipelines()
                .await?
                .into_iter()
                .map(|p| (p.code.clone(), p))
                .collect(),
            directory: self.store.directory().await?,
            constants: self.store.constants().await?,
            constant_decls: (self.store.constant_decls().await?.into_iter())
                .map(|c| (c.code.clone(), c))
                .collect(),
            calendar: Arc::new(self.store.calendar().await?),
            fields: Schema::new(self.store.custom_fields().await?),
            ..Settings::default()
        };
        for robot in self.store.all_robots().await? {
            settings
                .robots
                .entry((robot.pipeline.clone(), robot.stage.clone()))
                .or_default()
                .push(robot);
        }
        for trigger in self.store.all_triggers().await? {
            settings.triggers.entry(trigger.code.clone()).or_default().push(trigger);
        }
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
        Ok(())
    }

    /// Writes one checked configuration change in its own transaction, then
    /// reads the settings again so the next run sees it.
    pub(super) async fn configure<T, E>(&self, change: impl AsyncFnOnce(&mut Tx) -> Result<T, E>) -> Result<T>
    where
        EngineError: From<E>,
    {
        let mut tx = self.store.begin().await?;
        let done = change(&mut tx).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(done)
    }

    pub async fn put_pipeline(&self, pipeline: &Pipeline) -> Result<()> {
        if pipeline.code.is_empty() {
            return Err(invalid("code", "a pipeline needs a code"));
        }
        if pipeline.stages.is_empty() {
            return Err(invalid("stages", "a pipeline needs at least one stage"));
        }
        let mut seen = std::collections::HashSet::new();
        for stage in &pipeline.stages {
            if stage.code.is_empty() || !seen.insert(stage.code.as_str()) {
                return Err(invalid(
                    "stages",
                    format!("stage code `{}` is empty or given twice", stage.code),
                ));
            }
        }
        let before = self.settings().pipelines.get(&pipeline.code).cloned();
        let dropped: Vec<String> = before
            .iter()
            .flat_map(|p| &p.stages)
            .filter(|old| pipeline.stage(&old.code).is_none())
            .map(|old| old.code.clone())
            .collect();
        self.configure(async |tx| {
            for stage in &dropped {
                empty_or_refuse(tx, pipeline, Some(stage)).await?;
                tx.remove_bindings(&pipeline.code, Some(stage)).await?;
            }
            tx.put_pipeline(pipeline).await.map_err(EngineError::from)
        })
        .await
    }

    /// Removes a pipeline with its robots and triggers, refused while
    /// entities are in it.
    pub async fn remove_pipeline(&self, code: &str) -> Result<()> {
        let pipeline = self
            .settings()
            .pipelines
            .get(code)
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                what: format!("pipeline `{code}`"),
            })?;
        self.configure(async |tx| {
            empty_or_refuse(tx, &pipeline, None).await?;
            tx.remove_pipeline(code).await.map_err(EngineError::from)
        })
        .await
    }

    /// Removes a stage of a pipeline with its robots and triggers, refused
    /// while entities are in it or when it is the pipeline's only stage.
    pub async fn remove_stage(&self, code: &str, stage: &str) -> Result<()> {
        let mut pipeline = self
            .settings()
            .pipelines
            .get(code)
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                what: format!("pipeline `{code}`"),
            })?;
        if pipeline.stage(stage).is_none() {
            return Err(EngineError::NotFound {
                what: format!("stage `{stage}` of pipeline `{code}`"),
            });
        }
        pipeline.stages.retain(|s| s.code != stage);
        self.put_pipeline(&pipeline).await
    }

    /// Stores a user, refusing an absence that ends before it starts and
    /// working hours that leave no working time with the portal's calendar.
    pub async fn put_user(&self, user: &User) -> Result<()> {
        if let Some(away) = &user.away
            && away.from.is_some_and(|from| from > away.until)
        {
            let problem = format!(
                "the absence starts ({}) after it ends ({}); give `from` on or before `until`",
                away.from.unwrap_or(away.until),
                away.until
            );
            return Err(invalid("away", problem));
        }
        if let Some(hours) = &user.hours
            && let Err(e) = self.settings().calendar.with_hours(hours)
        {
            return Err(invalid(
                "hours",
                format!("{e}, with the portal's calendar filling in the rest"),
            ));
        }
        self.configure(async |tx| tx.put_user(user).await).await
    }

    /// Sets or clears (`None`) a user's absence; returns the user as stored.
    pub async fn set_absence(&self, id: u64, away: Option<Absence>) -> Result<User> {
        let mut user = self
            .settings()
            .directory
            .user(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                what: format!("user {id}"),
            })?;
        user.away = away;
        self.put_user(&user).await?;
        Ok(user)
    }

    pub async fn put_department(&self, department: &Department) -> Result<()> {
        self.configure(async |tx| tx.put_department(department).await).await
    }

    pub async fn set_calendar(&self, calendar: &Calendar) -> Result<()> {
        self.configure(async |tx| tx.set_calendar(calendar).await).await
    }

    /// Places a robot on a stage, if [`Engine::check_robot`] finds nothing
    /// against it. Returns its id.
    pub async fn add_robot(&self, robot: &RobotBinding) -> Result<u64> {
        binding::first(self.check_placed_robot(robot))?;
        self.configure(async |tx| tx.add_robot(robot).await).await
    }

    /// Replaces the robot with `robot`'s id on `robot`'s stage, checked as
    /// [`Engine::add_robot`] checks a new one. Runs already queued run with
    /// the new binding.
    pub async fn replace_robot(&self, robot: &RobotBinding) -> Result<()> {
        robot_on(&self.settings(), &robot.pipeline, &robot.stage, robot.id)?;
        binding::first(self.check_placed_robot(robot))?;
        let found = self.configure(async |tx| tx.replace_robot(robot).await).await?;
        if !found {
            return Err(robot_missing(&robot.pipeline, &robot.stage, robot.id));
        }
        Ok(())
    }

    /// Removes a robot from a stage. Its runs that have not started end
    /// cancelled ([`crate::domain::NotRun::RobotRemoved`]); where it had a
    /// run queued or awaiting a task, the robot after it that waited for it
    /// starts, as it would have once it finished.
    pub async fn remove_robot(&self, pipeline: &str, stage: &str, id: u64) -> Result<()> {
        let settings = self.settings();
        let robot = robot_on(&settings, pipeline, stage, id)?.clone();
        let now = self.now();
        self.configure(async |tx| {
            let started = tx.remove_robot(&robot, now).await?;
            if super::effects::next_waiting(&settings, id).is_some() {
                let targets: Vec<_> = started.iter().map(|(target, _)| *target).collect();
                tx.lock_entities(&targets).await?;
                for (target, entry) in started {
                    self.release_next(tx, &settings, id, target, entry, now).await?;
                }
            }
            Ok::<_, EngineError>(())
        })
        .await
    }

    /// Puts a stage's robots in the order of `ids`, which must name each of
    /// them once. Stage entries made afterwards follow the new order, and
    /// so does an "after previous" robot released afterwards.
    pub async fn order_robots(&self, pipeline: &str, stage: &str, ids: &[u64]) -> Result<()> {
        let settings = self.settings();
        if settings.pipelines.get(pipeline).and_then(|p| p.stage(stage)).is_none() {
            return Err(EngineError::NotFound {
                what: format!("stage `{stage}` of pipeline `{pipeline}`"),
            });
        }
        let current: Vec<u64> = settings.robots_at(pipeline, stage).iter().map(|r| r.id).collect();
        let list = |ids: Vec<&u64>| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ");
        let unknown: Vec<&u64> = ids.iter().filter(|id| !current.contains(id)).collect();
        if !unknown.is_empty() {
            let problem = format!("no robot {} on stage `{stage}`", list(unknown));
            return Err(invalid("ids", problem));
        }
        let missing: Vec<&u64> = current.iter().filter(|id| !ids.contains(id)).collect();
        if !missing.is_empty() {
            let problem = format!(
                "robot {} of stage `{stage}` missing; name each of its robots once",
                list(missing)
            );
            return Err(invalid("ids", problem));
        }
        if ids.len() != current.len() {
            return Err(invalid(
                "ids",
                "a robot is named twice; name each of the stage's robots once",
            ));
        }
        self.configure(async |tx| tx.order_robots(ids).await).await
    }

    /// Replaces the trigger with `trigger`'s id on `trigger`'s stage,
    /// checked as [`Engine::add_trigger`] checks a new one.
    pub async fn replace_trigger(&self, trigger: &TriggerBinding) -> Result<()> {
        trigger_on(&self.settings(), &trigger.pipeline, &trigger.stage, trigger.id)?;
        let (_, refusals) = binding::check_trigger(&self.settings().pipelines, trigger);
        binding::first(refusals)?;
        let found = self.configure(async |tx| tx.replace_trigger(trigger).await).await?;
        if !found {
            return Err(trigger_missing(&trigger.pipeline, &trigger.stage, trigger.id));
        }
        Ok(())
    }

    /// Removes a trigger from a stage.
    pub async fn remove_trigger(&self, pipeline: &str, stage: &str, id: u64) -> Result<()> {
        trigger_on(&self.settings(), pipeline, stage, id)?;
        self.configure(async |tx| tx.remove_trigger(id).await).await
    }

    /// Places a trigger on a stage, if [`Engine::check_trigger`] finds
    /// nothing against it. Returns its id.
    pub async fn add_trigger(&self, trigger: &TriggerBinding) -> Result<u64> {
        let (_, refusals) = binding::check_trigger(&self.settings().pipelines, trigger);
        binding::first(refusals)?;
        self.configure(async |tx| tx.add_trigger(trigger).await).await
    }
}

/// The robot `id` of a stage.
fn robot_on<'s>(settings: &'s Settings, pipeline: &str, stage: &str, id: u64) -> Result<&'s RobotBinding> {
    let robots = settings.robots_at(pipeline, stage);
    robots
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| robot_missing(pipeline, stage, id))
}

fn robot_missing(pipeline: &str, stage: &str, id: u64) -> EngineError {
    EngineError::NotFound {
        what: format!("robot {id} on stage `{stage}` of pipeline `{pipeline}`"),
    }
}

/// The trigger `id` of a stage.
fn trigger_on<'s>(settings: &'s Settings, pipeline: &str, stage: &str, id: u64) -> Result<&'s TriggerBinding> {
    let mut triggers = settings.triggers.values().flatten();
    triggers
        .find(|t| t.id == id && t.pipeline == pipeline && t.stage == stage)
        .ok_or_else(|| trigger_missing(pipeline, stage, id))
}

fn trigger_missing(pipeline: &str, stage: &str, id: u64) -> EngineError {
    EngineError::NotFound {
        what: format!("trigger {id} on stage `{stage}` of pipeline `{pipeline}`"),
    }
}

/// Refuses to remove a pipeline, or one of its stages, while entities are
/// in it, saying how many.
async fn empty_or_refuse(tx: &mut Tx, pipeline: &Pipeline, stage: Option<&str>) -> Result<()> {
    let n = tx.entities_in(&pipeline.code, stage).await?;
    if n == 0 {
        return Ok(());
    }
    let kind = pipeline.kind.as_str();
    let (plural, are, them) = if n == 1 { ("", "is", "it") } else { ("s", "are", "them") };
    let place = match stage {
        Some(stage) => format!("stage {stage}"),
        None => format!("pipeline {}", pipeline.code),
    };
    Err(EngineError::InUse(format!(
        "{n} {kind}{plural} {are} in {place}; move {them} first"
    )))
}
