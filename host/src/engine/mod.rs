//! The automation engine: turns "this entity entered that stage" into robot
//! runs whose effects are committed exactly once, now or days later, on one
//! process or several sharing a database.
//!
//! - A change (create, update, move) and the events and runs it causes are
//!   written in one transaction ([`Engine::create_entity`],
//!   [`Engine::move_entity`]...; `create.rs`, `changes.rs`).
//! - Runs are the durable queue: due runs are leased to a worker with a
//!   fence, run in the sandbox, and finished in one transaction with their
//!   effects; a worker whose lease was taken over cannot finish ([`worker`]).
//! - Time comes from a [`Clock`]; the scheduler sleeps until the next due
//!   run or a wake-up ([`Engine::run`], `scheduler.rs`).
//! - The portal's configuration is cached in [`Settings`] (`settings.rs`);
//!   what a valid robot or trigger binding is, is decided in `binding.rs`;
//!   plugins are loaded in `plugins.rs`.
//!
//! This file is the wiring: the [`Engine`], its error, and how it starts.

mod binding;
mod changes;
mod clock;
mod constants;
mod create;
mod data;
mod delivery;
mod demo;
mod effects;
mod endpoints;
mod fields;
mod inbound;
mod jobs;
mod outbox;
mod packages;
mod plugins;
mod scheduler;
mod settings;
mod stage;
mod template;
mod webhook;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use crate::domain::{Constants, Directory, EntityKind, Permission, Pipeline, RobotBinding, Timestamp, TriggerBinding};
use crate::runtime::{LoadError, RunContext, Sandbox};
use crate::storage::{Store, StoreError};

pub use binding::MAX_CODE;
pub use clock::{Clock, ManualClock, SystemClock};
pub use data::{StoreData, Written};
pub use delivery::{Delivery, DeliveryConfig, GatewayConfig, LogDelivery, SmtpConfig};
pub use endpoints::{CatalogTrigger, new_secret};
pub use fields::{Misfit, Misfits};
pub use inbound::{Arrival, FORM_SUBMISSIONS, REFUSALS_RECORDED};
pub use packages::{PackagePreview, PackageReport};
pub use plugins::{Broken, STANDARD_PLUGIN, STANDARD_ROBOTS};
pub use settings::EngineConfig;
pub(crate) use settings::Settings;
pub use template::{InstallReport, PROM2B};
pub use worker::Batch;

use plugins::{Handler, Installed, Seen};

/// The trigger code the host fires itself when a user changes an entity's
/// fields: a trigger with this code and a condition moves an entity once a
/// field reaches a value.
pub const UPDATED: &str = "updated";

/// A request the engine refuses, or a failure underneath it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{what} does not exist")]
    NotFound { what: String },
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
    /// A change refused while something depends on what it would remove,
    /// such as a stage with entities in it.
    #[error("{0}")]
    InUse(String),
    #[error(transparent)]
    Plugin(#[from] LoadError),
    #[error(transparent)]
    Package(#[from] crate::package::PackageError),
    /// A package whose requested permissions were not all approved.
    #[error(
        "package `{package}` requests permissions that were not approved: {}; approve them to install it{}",
        list(needed),
        if added.is_empty() { String::new() } else { format!(" (new in this version: {})", list(added)) }
    )]
    Unapproved {
        package: String,
        needed: Vec<Permission>,
        added: Vec<Permission>,
    },
    /// A template with problems; nothing of it was installed.
    #[error("the template has {} problem(s), nothing was installed:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Template(Vec<crate::domain::Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host failed in a way no request can cause, such as the system
    /// having no randomness.
    #[error("{0}")]
    Internal(String),
}

fn list(permissions: &[Permission]) -> String {
    permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

type Result<T, E = EngineError> = std::result::Result<T, E>;

pub struct Engine {
    store: Store,
    sandbox: Arc<Sandbox>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    settings: RwLock<Arc<Settings>>,
    plugins: RwLock<HashMap<String, Arc<Installed>>>,
    /// Installed plugins that failed to load, with why: their robots fail
    /// with the reason, and an admin can still see and remove them.
    broken: RwLock<HashMap<String, Broken>>,
    /// Who leases runs: unique per engine.
    owner: String,
    /// Calls webhook robots, keeping connections alive.
    http: webhook::HttpClient,
    /// Entity ids left in the blocks this engine reserved, by kind.
    ids: std::sync::Mutex<HashMap<EntityKind, std::ops::Range<u64>>>,
    /// New entities waiting for their group commit.
    creations: create::GroupCommit,
    seen: std::sync::Mutex<Seen>,
    /// Where outbox messages go, by channel.
    delivery: delivery::Channels,
    /// Form submissions per address, for the rate limit.
    limiter: inbound::Limiter,
    /// Worker loops running now.
    running: std::sync::atomic::AtomicUsize,
    wake: Notify,
    /// Whether this engine's job loop runs (started by its first worker loop).
    jobs_started: std::sync::atomic::AtomicBool,
    /// Wakes the job loop when a job starts.
    jobs_wake: Notify,
}

impl Engine {
    pub async fn new(
        store: Store,
        sandbox: Arc<Sandbox>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<Arc<Engine>> {
        static ENGINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = ENGINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let owner = format!("{}-{}-{n}", std::process::id(), Timestamp::now().0);
        let delivery = delivery::Channels::new(&config.delivery)?;
        let engine = Arc::new(Engine {
            store,
            sandbox,
            clock,
            config,
            settings: RwLock::default(),
            plugins: RwLock::default(),
            broken: RwLock::default(),
            owner,
            http: webhook::client(),
            ids: std::sync::Mutex::default(),
            creations: create::GroupCommit::default(),
            seen: std::sync::Mutex::default(),
            delivery,
            limiter: Default::default(),
            running: Default::default(),
            wake: Notify::new(),
            jobs_started: Default::default(),
            jobs_wake: Notify::new(),
        });
        // The revisions first: a change after them is loaded again later.
        let (settings, plugins) = engine.store.revisions().await?;
        engine.reload().await?;
        for stored in engine.store.plugins().await? {
            // One plugin that no longer loads must not keep the portal down.
            engine.load_or_mark_broken(&stored).await;
        }
        *engine.seen.lock().unwrap_or_else(|e| e.into_inner()) = Seen {
            settings,
            plugins,
            checked: Some(std::time::Instant::now()),
        };
        Ok(engine)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Where people reach this host (`[engine] public-url`).
    pub fn public_url(&self) -> &str {
        &self.config.public_url
    }

    /// The pipelines as loaded, by code.
    pub fn pipelines(&self) -> Vec<Pipeline> {
        let mut pipelines: Vec<Pipeline> = self.settings().pipelines.values().cloned().collect();
        pipelines.sort_by(|a, b| a.code.cmp(&b.code));
        pipelines
    }

    /// The robots (in order) and triggers of a stage, as loaded.
    pub fn stage_automation(&self, pipeline: &str, stage: &str) -> (Vec<RobotBinding>, Vec<TriggerBinding>) {
        let settings = self.settings();
        let robots = settings.robots_at(pipeline, stage).to_vec();
        let mut triggers: Vec<TriggerBinding> = (settings.triggers.values().flatten())
            .filter(|t| t.pipeline == pipeline && t.stage == stage)
            .cloned()
            .collect();
        triggers.sort_by_key(|t| t.id);
        (robots, triggers)
    }

    /// The ids of the robots placed from plugin `plugin`, disabled ones
    /// too: what its runs are filtered by.
    pub fn placed_robots(&self, plugin: &str) -> Vec<u64> {
        let settings = self.settings();
        let placed = settings.robots.values().flatten();
        placed.filter(|r| r.plugin == plugin).map(|r| r.id).collect()
    }

    /// How many worker loops ([`Engine::run`]) are running.
    pub fn workers(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the database answers and has every migration this binary
    /// knows; why not, in words.
    pub async fn readiness(&self) -> std::result::Result<(), String> {
        self.store.check_ready().await
    }

    /// The runs due now and not taken, and how long the oldest has waited.
    pub async fn queue(&self) -> Result<(u64, i64)> {
        let now = self.now();
        let (depth, oldest) = self.store.queue_depth(now).await?;
        Ok((depth, oldest.map_or(0, |due| (now.0 - due.0).max(0))))
    }

    /// The portal's time zone, the working-time calendar's.
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.settings().calendar.time_zone()
    }

    /// Every robot placed, in its stage's order, stage by stage.
    pub fn all_robots(&self) -> Vec<RobotBinding> {
        let settings = self.settings();
        let mut robots: Vec<RobotBinding> = settings.robots.values().flatten().cloned().collect();
        robots.sort_by(|a, b| (&a.pipeline, &a.stage).cmp(&(&b.pipeline, &b.stage)));
        robots
    }

    /// The robot placed with `id`, as loaded.
    pub fn robot_binding(&self, id: u64) -> Option<RobotBinding> {
        self.settings().robot(id).cloned()
    }

    /// The trigger placed with `id`, as loaded.
    pub fn trigger_binding(&self, id: u64) -> Option<TriggerBinding> {
        let settings = self.settings();
        let found = settings.triggers.values().flatten().find(|t| t.id == id);
        found.cloned()
    }

    /// The portal's users and departments, as loaded.
    pub fn directory(&self) -> Directory {
        self.settings().directory.clone()
    }

    /// The global constants' values, as loaded.
    pub fn constants(&self) -> Constants {
        self.settings().constants.clone()
    }

    /// Puts the dead runs among `ids` back in the queue, due now with their
    /// attempts anew (an admin's retry once the cause is fixed); returns
    /// those retried and those that were not dead.
    pub async fn retry_dead(&self, ids: &[u64]) -> Result<(Vec<u64>, Vec<u64>)> {
        let now = self.now();
        let (mut retried, mut not_dead) = (Vec::new(), Vec::new());
        for &id in ids {
            match self.store.requeue_dead(id, now).await? {
                true => retried.push(id),
                false => not_dead.push(id),
            }
        }
        if !retried.is_empty() {
            tracing::info!(?retried, "dead runs put back in the queue");
            self.wake.notify_waiters();
        }
        Ok((retried, not_dead))
    }

    pub(crate) fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What a run (or a plugin's `describe`) of plugin `namespace` reads
    /// through: the store, the calendar, its key-value namespace.
    fn context(&self, namespace: &str) -> RunContext {
        self.context_after(namespace, data::Written::default())
    }

    /// [`Engine::context`] for a run of a batch, which reads what the
    /// batch's earlier runs wrote.
    fn context_after(&self, namespace: &str, written: data::Written) -> RunContext {
        RunContext {
            data: Arc::new(StoreData {
                store: self.store.clone(),
                handle: tokio::runtime::Handle::current(),
                written,
            }),
            calendar: self.settings().calendar.clone(),
            kv_namespace: namespace.into(),
        }
    }
}
