//! The engine's configuration (`[engine]`) and the portal's automation
//! settings: read into [`Settings`] once and kept until a change, which is
//! checked here, written in its own transaction and read back
//! ([`Engine::reload`]). Whether a robot or trigger may be placed is
//! `binding.rs`'s to decide.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Engine, Result, binding, invalid};
use crate::domain::{
    Calendar, Constants, Department, Directory, FieldValue, Pipeline, RobotBinding, TriggerBinding, User,
};
use crate::storage::{StoreError, Tx};

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
    pub(super) calendar: Arc<Calendar>,
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
            calendar: Arc::new(self.store.calendar().await?),
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
    async fn configure<T>(&self, change: impl AsyncFnOnce(&mut Tx) -> Result<T, StoreError>) -> Result<T> {
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
        self.configure(async |tx| tx.put_pipeline(pipeline).await).await
    }

    pub async fn put_user(&self, user: &User) -> Result<()> {
        self.configure(async |tx| tx.put_user(user).await).await
    }

    pub async fn put_department(&self, department: &Department) -> Result<()> {
        self.configure(async |tx| tx.put_department(department).await).await
    }

    pub async fn set_constant(&self, code: &str, value: &FieldValue) -> Result<()> {
        self.configure(async |tx| tx.set_constant(code, value).await).await
    }

    pub async fn set_calendar(&self, calendar: &Calendar) -> Result<()> {
        self.configure(async |tx| tx.set_calendar(calendar).await).await
    }

    /// Places a robot on a stage, if [`Engine::check_robot`] finds nothing
    /// against it. Returns its id.
    pub async fn add_robot(&self, robot: &RobotBinding) -> Result<u64> {
        let (_, refusals) = self.check_robot(&self.settings().pipelines, robot);
        binding::first(refusals)?;
        self.configure(async |tx| tx.add_robot(robot).await).await
    }

    /// Places a trigger on a stage, if [`Engine::check_trigger`] finds
    /// nothing against it. Returns its id.
    pub async fn add_trigger(&self, trigger: &TriggerBinding) -> Result<u64> {
        let (_, refusals) = binding::check_trigger(&self.settings().pipelines, trigger);
        binding::first(refusals)?;
        self.configure(async |tx| tx.add_trigger(trigger).await).await
    }
}
