//! The automation engine: turns "this entity entered that stage" into robot
//! runs whose effects are committed exactly once, now or days later, on one
//! process or several sharing a database.
//!
//! - A change (create, update, move) and the events and runs it causes are
//!   written in one transaction ([`Engine::create_entity`],
//!   [`Engine::move_entity`]...).
//! - Runs are the durable queue: due runs are leased to a worker with a
//!   fence, run in the sandbox, and finished in one transaction with their
//!   effects; a worker whose lease was taken over cannot finish ([`worker`]).
//! - Time comes from a [`Clock`]; the scheduler sleeps until the next due
//!   run or a wake-up ([`Engine::serve`]).

mod clock;
mod create;
mod data;
mod demo;
mod outbox;
mod packages;
mod stage;
mod template;
mod webhook;
mod worker;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{
    Calendar, Capability, Cause, Constants, Department, Directory, Entity, EntityKind, EntityRef, FieldValue, Fields,
    HitTarget, Permission, Pipeline, RobotBinding, Timestamp, TriggerBinding, User,
};
use crate::runtime::{Grants, LoadError, Plugin, RunContext, Sandbox};
use crate::storage::{Store, StoreError, StoredPlugin};

pub use clock::{Clock, ManualClock, SystemClock};
pub use data::StoreData;
pub use outbox::{Delivery, LogDelivery};
pub use packages::PackageReport;
pub use template::{InstallReport, PROM2B};
pub use worker::Batch;

/// The trigger code the host fires itself when a user changes an entity's
/// fields: a trigger with this code and a condition moves an entity once a
/// field reaches a value.
pub const UPDATED: &str = "updated";

/// The name the standard robots are installed under.
pub const STANDARD_PLUGIN: &str = "standard";

/// The standard robots (`plugins/standard`), built by `host/build.rs`.
pub const STANDARD_ROBOTS: &[u8] = include_bytes!(env!("ROBOHOST_STANDARD_WASM"));

/// A request the engine refuses, or a failure underneath it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{what} does not exist")]
    NotFound { what: String },
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
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
        }
    }
}

/// The portal's automation settings, read once and kept until changed.
#[derive(Default)]
pub(crate) struct Settings {
    pipelines: HashMap<String, Pipeline>,
    /// Robot bindings by stage, in order.
    robots: HashMap<(String, String), Vec<RobotBinding>>,
    triggers: HashMap<String, Vec<TriggerBinding>>,
    directory: Directory,
    constants: Constants,
    calendar: Arc<Calendar>,
}

impl Settings {
    fn robots_at(&self, pipeline: &str, stage: &str) -> &[RobotBinding] {
        self.robots
            .get(&(pipeline.to_owned(), stage.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn robot(&self, id: u64) -> Option<&RobotBinding> {
        self.robots.values().flatten().find(|r| r.id == id)
    }
}

fn check_plugin_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(invalid("name", "a plugin name is letters, digits, `_` and `-`"));
    }
    Ok(())
}

/// The longest delay, either way: ten years. Past it a due time is no longer
/// a date anyone means, and far past it arithmetic on milliseconds overflows.
const MAX_DELAY_SECONDS: u64 = 10 * 365 * 24 * 3600;

fn check_timing(timing: &crate::domain::Timing) -> Result<()> {
    let too_far = |field: &str| {
        invalid(
            field,
            format!("a delay is at most {MAX_DELAY_SECONDS} seconds (ten years)"),
        )
    };
    if timing.delay_seconds > MAX_DELAY_SECONDS {
        return Err(too_far("timing.delay_seconds"));
    }
    if let Some(relative) = &timing.relative_to
        && relative.offset_seconds.unsigned_abs() > MAX_DELAY_SECONDS
    {
        return Err(too_far("timing.relative_to.offset_seconds"));
    }
    Ok(())
}

/// Checks a robot binding against the robot's catalog entry: the robot
/// exists, every property is known, every required one is given.
fn check_against_catalog(robot: &RobotBinding, plugin: &Plugin) -> Result<()> {
    let info = plugin.robots().iter().find(|r| r.code == robot.robot).ok_or_else(|| {
        invalid(
            "robot",
            format!("plugin `{}` has no robot `{}`", robot.plugin, robot.robot),
        )
    })?;
    for code in robot.properties.keys() {
        if !info.properties.iter().any(|p| &p.code == code) {
            let problem = format!("robot `{}` has no property `{code}`", robot.robot);
            return Err(invalid(format!("properties.{code}"), problem));
        }
    }
    for spec in info.properties.iter().filter(|p| p.required && p.default.is_none()) {
        let given =
            robot.properties.contains_key(&spec.code) || (spec.code == "recipient" && robot.recipient.is_some());
        if !given {
            return Err(invalid(format!("properties.{}", spec.code), "is required"));
        }
    }
    Ok(())
}

impl Engine {
    /// What a robot binding may ask of the plugin it names: fuel up to its
    /// package's `fuel.max` (and `sandbox.max-fuel`), a robot the plugin
    /// describes, and the properties that robot takes. The API and
    /// templates both check bindings here.
    fn check_against_plugin(&self, robot: &RobotBinding, installed: &Installed) -> Result<()> {
        let max_fuel = installed
            .fuel
            .max
            .unwrap_or(u64::MAX)
            .min(self.sandbox.config().max_fuel);
        if let Some(fuel) = robot.fuel
            && fuel > max_fuel
        {
            let problem = format!(
                "{fuel} is more than this robot may get, {max_fuel} (its package's fuel.max, or sandbox.max-fuel)"
            );
            return Err(invalid("fuel", problem));
        }
        // A webhook describes no catalog: its properties are its own.
        match &installed.handler {
            Handler::Wasm(plugin) => check_against_catalog(robot, plugin),
            Handler::Webhook { .. } => Ok(()),
        }
    }
}

/// An installed plugin, loaded into the sandbox.
struct Installed {
    handler: Handler,
    grants: Grants,
    fuel: crate::domain::Fuel,
    /// Its package's version, recorded on each run.
    version: Option<String>,
}

impl Installed {
    fn digest(&self) -> crate::domain::Digest {
        match &self.handler {
            Handler::Wasm(plugin) => plugin.digest(),
            Handler::Webhook { digest, .. } => *digest,
        }
    }
}

/// An installed plugin that does not load (any more).
#[derive(Clone, Debug)]
pub struct Broken {
    pub digest: crate::domain::Digest,
    pub reason: String,
}

/// The configuration revisions an engine has loaded (see
/// [`Store::revisions`]), and when it last compared them.
#[derive(Default)]
struct Seen {
    settings: i64,
    plugins: i64,
    checked: Option<std::time::Instant>,
}

/// What runs a plugin's robots.
enum Handler {
    /// A component, in the sandbox.
    Wasm(Plugin),
    /// An HTTP handler the host posts each run to.
    Webhook { url: String, digest: crate::domain::Digest },
}

/// Fields of an entity to create.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEntityRequest {
    pub kind: Option<EntityKind>,
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub responsible: Option<u64>,
    #[serde(default)]
    pub fields: Fields,
    #[serde(default)]
    pub custom_fields: Fields,
    /// Entities to link it to, such as a deal's contact.
    #[serde(default)]
    pub links: Vec<EntityRef>,
}

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
    creations: create::Queue,
    seen: std::sync::Mutex<Seen>,
    /// Where outbox messages go.
    delivery: Arc<dyn Delivery>,
    wake: Notify,
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
            creations: create::Queue::default(),
            seen: std::sync::Mutex::default(),
            delivery: Arc::new(LogDelivery),
            wake: Notify::new(),
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

    /// Reloads the settings and plugins another process changed; compares
    /// revisions at most once per poll interval.
    pub async fn refresh(self: &Arc<Self>) -> Result<()> {
        let poll = std::time::Duration::from_millis(self.config.poll_ms);
        let (settings, plugins) = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.checked.is_some_and(|at| at.elapsed() < poll) {
                return Ok(());
            }
            seen.checked = Some(std::time::Instant::now());
            (seen.settings, seen.plugins)
        };
        let (new_settings, new_plugins) = self.store.revisions().await?;
        if new_settings != settings {
            self.reload().await?;
        }
        if new_plugins != plugins {
            let stored = self.store.plugins().await?;
            // Plugins removed elsewhere are unloaded here too.
            let installed = |name: &String| stored.iter().any(|s| &s.name == name);
            self.plugins
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|name, _| installed(name));
            self.broken
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|name, _| installed(name));
            for stored in stored {
                let loaded = self
                    .plugin(&stored.name)
                    .map(|i| i.digest())
                    .or_else(|| self.broken(&stored.name).map(|b| b.digest));
                if loaded != Some(stored.digest) {
                    self.load_or_mark_broken(&stored).await;
                }
            }
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        (seen.settings, seen.plugins) = (new_settings, new_plugins);
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

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

    pub(crate) fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The robots a loaded plugin describes; none for a webhook, which
    /// describes no catalog.
    pub fn plugin_robots(&self, name: &str) -> Vec<crate::domain::RobotInfo> {
        match self.plugin(name).as_deref().map(|i| &i.handler) {
            Some(Handler::Wasm(plugin)) => plugin.robots().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Why an installed plugin did not load, if it did not.
    pub fn broken(&self, name: &str) -> Option<Broken> {
        self.broken.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    fn plugin(&self, name: &str) -> Option<Arc<Installed>> {
        self.plugins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn context(&self, namespace: &str) -> RunContext {
        RunContext {
            data: Arc::new(StoreData {
                store: self.store.clone(),
                handle: tokio::runtime::Handle::current(),
            }),
            calendar: self.settings().calendar.clone(),
            kv_namespace: namespace.into(),
        }
    }

    /// Loads an installed plugin; one that fails is kept aside as broken,
    /// with the reason, and the error logged. Loading may take the sandbox's
    /// whole wall-clock limit (a `describe` that waits), so it runs where
    /// blocking is allowed.
    async fn load_or_mark_broken(self: &Arc<Self>, stored: &StoredPlugin) {
        let (engine, plugin) = (self.clone(), stored.clone());
        let loaded = tokio::task::spawn_blocking(move || engine.load_plugin(&plugin)).await;
        let reason = match loaded {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(panicked) => format!("loading it panicked: {panicked}"),
        };
        tracing::error!(plugin = %stored.name, %reason, "an installed plugin does not load; its robots fail until it is replaced or removed");
        self.plugins
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&stored.name);
        self.broken.write().unwrap_or_else(|e| e.into_inner()).insert(
            stored.name.clone(),
            Broken {
                digest: stored.digest,
                reason,
            },
        );
    }

    fn load_plugin(&self, stored: &StoredPlugin) -> Result<()> {
        // `describe` runs with nothing granted: the context is never read.
        let context = self.context(&stored.name);
        let handler = match &stored.webhook {
            Some(url) => Handler::Webhook {
                url: url.clone(),
                digest: stored.digest,
            },
            None => {
                // Linked and described: accepted, its compiled code is kept.
                let mut plugin = self.sandbox.load(&stored.name, &stored.wasm, &context)?;
                plugin.accept();
                Handler::Wasm(plugin)
            }
        };
        let grants = Grants::scoped(&stored.grants);
        self.broken
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&stored.name);
        self.plugins.write().unwrap_or_else(|e| e.into_inner()).insert(
            stored.name.clone(),
            Arc::new(Installed {
                handler,
                grants,
                fuel: stored.fuel,
                version: stored.version.clone(),
            }),
        );
        Ok(())
    }

    /// Installs (or replaces) a webhook plugin: robots run by posting to
    /// `url` (plain HTTP, such as a handler on the local network).
    pub async fn install_webhook(&self, name: &str, url: &str, grants: Vec<Capability>) -> Result<()> {
        check_plugin_name(name)?;
        if !url.starts_with("http://") || url.parse::<hyper::Uri>().is_err() {
            return Err(invalid("url", format!("`{url}` is not an http:// URL")));
        }
        let digest = crate::domain::Digest::of(url.as_bytes());
        let stored = StoredPlugin {
            name: name.into(),
            digest,
            wasm: Vec::new(),
            grants: Permission::unscoped(grants),
            webhook: Some(url.into()),
            fuel: Default::default(),
            version: None,
        };
        self.load_plugin(&stored)?;
        let mut tx = self.store.begin().await?;
        tx.put_plugin(&stored, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Installs (or replaces) a robot plugin under `name`, granting it `grants`.
    /// Installs the standard robots shipped in this binary (plugin
    /// `standard`, every capability granted) unless that exact build is
    /// installed already.
    pub async fn install_standard(&self) -> Result<()> {
        let digest = crate::domain::Digest::of(STANDARD_ROBOTS);
        if self.plugin(STANDARD_PLUGIN).map(|i| i.digest()) == Some(digest) {
            return Ok(());
        }
        self.install_plugin(STANDARD_PLUGIN, STANDARD_ROBOTS.to_vec(), Capability::ALL.to_vec())
            .await
    }

    pub async fn install_plugin(&self, name: &str, wasm: Vec<u8>, grants: Vec<Capability>) -> Result<()> {
        check_plugin_name(name)?;
        let digest = crate::domain::Digest::of(&wasm);
        let stored = StoredPlugin {
            name: name.into(),
            digest,
            wasm,
            grants: Permission::unscoped(grants),
            webhook: None,
            fuel: Default::default(),
            version: None,
        };
        self.load_plugin(&stored)?;
        let mut tx = self.store.begin().await?;
        tx.put_plugin(&stored, self.now()).await?;
        tx.commit().await?;
        Ok(())
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
        let mut tx = self.store.begin().await?;
        tx.put_pipeline(pipeline).await?;
        tx.commit().await?;
        self.reload().await
    }

    pub async fn put_user(&self, user: &User) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.put_user(user).await?;
        tx.commit().await?;
        self.reload().await
    }

    pub async fn put_department(&self, department: &Department) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.put_department(department).await?;
        tx.commit().await?;
        self.reload().await
    }

    pub async fn set_constant(&self, code: &str, value: &FieldValue) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.set_constant(code, value).await?;
        tx.commit().await?;
        self.reload().await
    }

    pub async fn set_calendar(&self, calendar: &Calendar) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.set_calendar(calendar).await?;
        tx.commit().await?;
        self.reload().await
    }

    /// Places a robot on a stage, after checking it against the pipeline and
    /// the plugin's catalog. Returns its id.
    pub async fn add_robot(&self, robot: &RobotBinding) -> Result<u64> {
        let settings = self.settings();
        let pipeline = settings
            .pipelines
            .get(&robot.pipeline)
            .ok_or_else(|| invalid("pipeline", format!("no pipeline `{}`", robot.pipeline)))?;
        if pipeline.stage(&robot.stage).is_none() {
            return Err(invalid(
                "stage",
                format!("pipeline `{}` has no stage `{}`", robot.pipeline, robot.stage),
            ));
        }
        check_timing(&robot.timing)?;
        let installed = self
            .plugin(&robot.plugin)
            .ok_or_else(|| invalid("plugin", format!("no plugin `{}` is installed", robot.plugin)))?;
        self.check_against_plugin(robot, &installed)?;
        for (code, value) in &robot.properties {
            crate::domain::check(value).map_err(|e| invalid(format!("properties.{code}"), e.to_string()))?;
        }
        let mut tx = self.store.begin().await?;
        let id = tx.add_robot(robot).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(id)
    }

    /// Places a trigger on a stage. Returns its id.
    pub async fn add_trigger(&self, trigger: &TriggerBinding) -> Result<u64> {
        let settings = self.settings();
        let pipeline = settings
            .pipelines
            .get(&trigger.pipeline)
            .ok_or_else(|| invalid("pipeline", format!("no pipeline `{}`", trigger.pipeline)))?;
        if pipeline.stage(&trigger.stage).is_none() {
            return Err(invalid(
                "stage",
                format!("pipeline `{}` has no stage `{}`", trigger.pipeline, trigger.stage),
            ));
        }
        if trigger.code.is_empty() {
            return Err(invalid("code", "a trigger needs a code"));
        }
        if let Some(expr) = &trigger.schedule {
            cron::Schedule::from_str(expr).map_err(|e| {
                invalid(
                    "schedule",
                    format!("`{expr}` is not a cron expression such as `0 0 9 * * Mon` ({e})"),
                )
            })?;
        }
        let mut tx = self.store.begin().await?;
        let id = tx.add_trigger(trigger).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(id)
    }

    /// Changes fields (an empty value removes one) and the responsible.
    /// Then fires the triggers with code [`UPDATED`] for the entity, so a
    /// stage can be reached when a field gets a value.
    pub async fn update_entity(
        &self,
        target: EntityRef,
        fields: Fields,
        custom_fields: Fields,
        responsible: Option<u64>,
    ) -> Result<Entity> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let (mut entity, entry) = tx
            .entity_for_update(target)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: target.to_string(),
            })?;
        let changed: Vec<&String> = fields.keys().chain(custom_fields.keys()).collect();
        let data = json!({ "fields": changed });
        let (fields, custom) = stage::split_custom(fields);
        stage::set_fields(&mut entity.fields, fields);
        stage::set_fields(&mut entity.custom_fields, custom);
        stage::set_fields(&mut entity.custom_fields, custom_fields);
        if let Some(user) = responsible {
            entity.responsible = Some(user);
        }
        entity.updated_at = now;
        tx.insert_event(target, "updated", &data, now);
        tx.put_entity(&entity, entry).await?;
        self.completed(&mut tx, &self.settings(), &entity, now).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        // The change is committed: a trigger that fails to fire is logged,
        // not reported as a failed update.
        if self.settings().triggers.contains_key(UPDATED)
            && let Err(error) = self
                .fire_trigger(UPDATED, &HitTarget::Entity(target), &Fields::new())
                .await
        {
            tracing::error!(%error, entity = %target, "the `updated` trigger could not fire");
        }
        Ok(entity)
    }

    /// Moves an entity to a stage of its pipeline, or of another pipeline.
    /// Moving it to the stage it is in changes nothing.
    pub async fn move_entity(&self, target: EntityRef, pipeline: Option<&str>, stage_code: &str) -> Result<Entity> {
        let settings = self.settings();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let (mut entity, mut entry) = tx
            .entity_for_update(target)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: target.to_string(),
            })?;
        let pipeline = match pipeline.or(entity.pipeline.as_deref()) {
            Some(p) => p.to_owned(),
            None => {
                return Err(invalid("pipeline", format!("{target} is in no pipeline; name one")));
            }
        };
        let (pipeline, stage_code) = stage::target(&settings, entity.kind, &pipeline, Some(stage_code))?;
        // Already there: nothing enters, so no robot runs again.
        if entity.pipeline.as_deref() == Some(pipeline.as_str()) && entity.stage.as_deref() == Some(stage_code.as_str())
        {
            return Ok(entity);
        }
        stage::enter(
            &mut tx,
            &settings,
            &mut entity,
            &mut entry,
            &pipeline,
            &stage_code,
            None,
            now,
        )
        .await?;
        tx.put_entity(&entity, entry).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(entity)
    }

    /// Fires trigger `code` for `target`: each entity it finds (or the
    /// entities of a trigger's kind linked to it) moves to the stage of a
    /// matching trigger of its pipeline, forward only unless allowed.
    /// Returns the entities moved.
    pub async fn fire_trigger(&self, code: &str, target: &HitTarget, data: &Fields) -> Result<Vec<Entity>> {
        let settings = self.settings();
        let Some(triggers) = settings.triggers.get(code) else {
            return Err(EngineError::NotFound {
                what: format!("a trigger with code `{code}`"),
            });
        };
        let found = match target {
            HitTarget::Entity(r) => vec![*r],
            HitTarget::Lookup { kind, code, value } => self
                .store
                .find(*kind, code, value, 20)
                .await?
                .iter()
                .map(Entity::reference)
                .collect(),
        };
        let mut candidates = Vec::new();
        for r in found {
            for trigger in triggers {
                let kind = settings.pipelines.get(&trigger.pipeline).map(|p| p.kind);
                match kind {
                    Some(k) if k == r.kind => candidates.push(r),
                    Some(k) => candidates.extend(self.store.related(r, k).await?.iter().map(Entity::reference)),
                    None => {}
                }
            }
        }
        candidates.sort();
        candidates.dedup();
        self.move_by_triggers(&settings, triggers, code, &candidates, data)
            .await
    }

    /// Moves each candidate by the trigger of its pipeline that applies
    /// (see [`stage::pick_trigger`]), in one transaction. Returns the moved.
    async fn move_by_triggers(
        &self,
        settings: &Settings,
        triggers: &[TriggerBinding],
        code: &str,
        candidates: &[EntityRef],
        data: &Fields,
    ) -> Result<Vec<Entity>> {
        let now = self.now();
        let mut moved = Vec::new();
        let mut tx = self.store.begin().await?;
        for &r in candidates {
            let Some((mut entity, mut entry)) = tx.entity_for_update(r).await? else {
                continue;
            };
            let Some(trigger) = stage::pick_trigger(settings, triggers, &entity) else {
                continue;
            };
            let data = json!({ "code": code, "stage": trigger.stage, "data": data });
            tx.insert_event(r, "trigger-fired", &data, now);
            let cause = Cause::Trigger { code: code.into() };
            let (pipeline, stage_code) = (trigger.pipeline.clone(), trigger.stage.clone());
            stage::enter(
                &mut tx,
                settings,
                &mut entity,
                &mut entry,
                &pipeline,
                &stage_code,
                Some(cause),
                now,
            )
            .await?;
            tx.put_entity(&entity, entry).await?;
            moved.push(entity);
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(moved)
    }

    /// Fires the scheduled triggers whose time has come, each once however
    /// many processes share the database, and sets their next time. Returns
    /// how many entities moved.
    pub async fn run_schedules(&self) -> Result<usize> {
        let settings = self.settings();
        let now = self.now();
        let tz = settings.calendar.time_zone();
        let mut moved = 0;
        for trigger in settings.triggers.values().flatten() {
            let Some(expr) = &trigger.schedule else { continue };
            let Ok(schedule) = cron::Schedule::from_str(expr) else {
                continue;
            };
            let next_after = |at: Timestamp| {
                schedule
                    .after(&at.to_datetime().with_timezone(&tz))
                    .next()
                    .map(|t| Timestamp::from_datetime(t.to_utc()))
            };
            let seen = self.store.schedule_next(trigger.id).await?;
            match seen {
                None => {
                    if let Some(next) = next_after(now) {
                        self.store.advance_schedule(trigger.id, None, next).await?;
                    }
                }
                Some(due) if due <= now => {
                    let next = next_after(now).unwrap_or(Timestamp(i64::MAX));
                    if !self.store.advance_schedule(trigger.id, Some(due), next).await? {
                        continue;
                    }
                    let candidates: Vec<EntityRef> = self
                        .store
                        .entities_in(&trigger.pipeline)
                        .await?
                        .iter()
                        .map(Entity::reference)
                        .collect();
                    let only = std::slice::from_ref(trigger);
                    moved += self
                        .move_by_triggers(&settings, only, &trigger.code, &candidates, &Fields::new())
                        .await?
                        .len();
                }
                Some(_) => {}
            }
        }
        Ok(moved)
    }

    /// Runs due work until none is left at the current time; returns how
    /// many runs it finished. Tests drive the engine with this.
    pub async fn run_until_idle(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.run_due(self.config.batch).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Works until `shutdown`: runs due work, then sleeps until the next
    /// due run, a wake-up, or at most `poll_ms` (other processes add work
    /// too). A batch in flight is finished before it returns.
    pub async fn serve(self: Arc<Self>, shutdown: CancellationToken) {
        let poll = std::time::Duration::from_millis(self.config.poll_ms);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let woken = self.wake.notified();
            if let Err(error) = self.refresh().await {
                tracing::error!(%error, "reading configuration changes failed; trying again");
            }
            if let Err(error) = self.deliver_outbox().await {
                tracing::error!(%error, "delivering the outbox failed; trying again");
            }
            if let Err(error) = self.run_schedules().await {
                tracing::error!(%error, "firing scheduled triggers failed; trying again");
            }
            match self.run_due(self.config.batch).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "running due work failed; trying again"),
            }
            let wait = match self.store.next_due().await {
                Ok(Some(at)) => {
                    std::time::Duration::from_millis((at.0 - self.now().0).clamp(0, poll.as_millis() as i64) as u64)
                }
                _ => poll,
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
