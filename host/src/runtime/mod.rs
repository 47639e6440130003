//! The robot sandbox: the only code that links wasmtime.
//!
//! One [`Sandbox`] per process holds the engine, configured for untrusted
//! code, and the linker. A [`Plugin`] is a component compiled once (and kept
//! in the on-disk cache), type-checked against the `robot` world once, with
//! its catalog read once. Every run gets a fresh store with its own fuel,
//! deadline, memory and output limits, and ends in one typed [`Outcome`].
//!
//! Guests are driven with wasmtime's async API on the sandbox's own small
//! runtime, so every wait a guest can start (a clock, a stream, a `poll`,
//! an HTTP response) is a future that the run's deadline ends, and no
//! caller's runtime is blocked into or re-entered. The entry points block
//! their thread until the guest ends: call them where blocking is allowed.
//!
//! Invariants:
//! - Plugins have no ambient authority: no files, environment, arguments or
//!   sockets. They reach CRM data only through [`CrmData`], and only with a
//!   capability the robot requested and the caller granted.
//! - A run changes nothing by itself: effects and key-value writes come back
//!   in the [`AttemptReport`], and only from a successful run.
//! - Only artifacts compiled by this process's engine are deserialised.

mod bindings;
mod budget;
mod cache;
mod compile;
mod config;
mod data;
mod http;
mod limiter;
mod outcome;
mod output;
mod setup;
mod state;
mod trap;

use std::collections::HashMap;
use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store, Trap};

use crate::domain::{Cause, Digest, Entity, Fields, InboundCall, RobotInfo, Timestamp, TriggerHit, TriggerInfo};
use bindings::trigger_world::TriggerPre;
use bindings::{Robot, RobotPre, cause_out, fields_in, fields_out, robot_types};
use cache::{ArtifactCache, FunctionDirs, Staged};
use setup::{EpochTicker, IoRuntime, engine, refuse_ambient_authority};
use state::RunState;

pub use compile::{CompileStats, Compiler, WORKER_COMMAND, serve_worker};
pub use config::SandboxConfig;
pub use data::{CrmData, DataError};
pub use outcome::{AttemptReport, Blame, Denial, Denied, HandleReport, LogLevel, LogLine, Outcome};
pub use state::{Grants, RunContext};

/// How often the epoch advances: the resolution of the wall-clock limit.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Fiber stack beyond the wasm stack limit, for host calls made from wasm.
const ASYNC_STACK_HEADROOM: usize = 1024 * 1024;

/// The WASI version whose functions the sandbox overrides to refuse.
const WASI_VERSION: &str = "0.2.12";

/// A plugin that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{name} is not a WebAssembly component: {detail}")]
    NotAComponent { name: String, detail: &'static str },
    #[error("{name} does not compile: {detail}")]
    Compile { name: String, detail: String },
    #[error("{name} does not fit the {world} world of robohost:robot@0.1.0: {detail}")]
    WrongWorld {
        name: String,
        world: &'static str,
        detail: String,
    },
    #[error("{name} failed while describing itself: {outcome}")]
    Describe { name: String, outcome: Box<Outcome> },
    #[error("{name} describes itself wrongly: {detail}")]
    BadCatalog { name: String, detail: String },
}

/// A run that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("plugin {plugin} has no robot `{robot}`; it has: {known}")]
    UnknownRobot {
        plugin: String,
        robot: String,
        known: String,
    },
    #[error("a fuel budget of {asked} is above `sandbox.max-fuel` ({max})")]
    FuelAboveMax { asked: u64, max: u64 },
}

/// The engine and linker shared by every run in this process.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<RunState>,
    config: SandboxConfig,
    cache: ArtifactCache,
    pooling: bool,
    io: IoRuntime,
    _ticker: EpochTicker,
}

/// A plugin ready to run: compiled, linked, and its catalog read. What
/// compiling it wrote joins the compile cache only once it is accepted
/// ([`Plugin::accept`]); dropped unaccepted, it leaves nothing on disk.
pub struct Plugin {
    name: String,
    digest: Digest,
    pre: RobotPre<RunState>,
    robots: Vec<RobotInfo>,
    requested: HashMap<String, Grants>,
    /// What compiling it wrote, until it is accepted.
    staged: Staged,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The robots it provides, as its `describe` said.
    pub fn robots(&self) -> &[RobotInfo] {
        &self.robots
    }

    /// Keeps what compiling it wrote in the compile cache: call once the
    /// plugin is accepted. A plugin dropped unaccepted leaves nothing there.
    pub fn accept(&mut self) {
        self.staged.commit();
    }
}

/// A trigger plugin ready to handle inbound calls.
pub struct TriggerPlugin {
    name: String,
    digest: Digest,
    pre: TriggerPre<RunState>,
    triggers: Vec<TriggerInfo>,
    /// What compiling it wrote, until it is accepted.
    staged: Staged,
}

impl TriggerPlugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The triggers it provides, as its `describe` said.
    pub fn triggers(&self) -> &[TriggerInfo] {
        &self.triggers
    }

    /// Keeps what compiling it wrote in the compile cache (see
    /// [`Plugin::accept`]).
    pub fn accept(&mut self) {
        self.staged.commit();
    }
}

/// One run to make.
pub struct RunRequest<'a> {
    pub robot: &'a str,
    pub entity: &'a Entity,
    /// Resolved properties, defaults applied.
    pub properties: &'a Fields,
    pub cause: &'a Cause,
    pub run_id: &'a str,
    pub attempt: u32,
    pub idempotency_key: &'a str,
    pub now: Timestamp,
    /// What the admin granted; the robot gets what it also requested.
    pub grants: Grants,
    /// The fuel budget; `sandbox.fuel` when `None`.
    pub fuel: Option<u64>,
    pub context: RunContext,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> wasmtime::Result<Self> {
        let (engine, pooling) = match engine(&config, config.pooling, None) {
            Ok(engine) => (engine, config.pooling),
            Err(error) if config.pooling => {
                tracing::warn!(%error, "cannot reserve the pooling allocator here; using on-demand allocation (slower sandboxes)");
                (engine(&config, false, None)?, false)
            }
            Err(error) => return Err(error),
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        Robot::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| state)?;
        refuse_ambient_authority(&mut linker)?;
        let cache = ArtifactCache::new(&engine, &config)?;
        let ticker = EpochTicker::start(&engine);
        Ok(Sandbox {
            engine,
            linker,
            config,
            cache,
            pooling,
            io: IoRuntime::start()?,
            _ticker: ticker,
        })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Whether fresh sandboxes come from the pooling allocator.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    /// Compiles so far, and the most that ran at once.
    pub fn compile_stats(&self) -> CompileStats {
        self.cache.compile_stats()
    }

    /// Compiles (or takes from the cache), links and describes a robot
    /// plugin. `name` is how messages refer to it.
    pub fn load(&self, name: &str, wasm: &[u8], context: &RunContext) -> Result<Plugin, LoadError> {
        let (digest, pre, staged) = self.link(name, wasm, "robot")?;
        let pre = RobotPre::new(pre).map_err(|e| wrong_world(name, "robot", e))?;
        let mut store = self.store(
            RunState::new(&self.config, Grants::NONE, context.clone()),
            self.config.fuel,
        );
        let infos = self
            .drive(async {
                let robot = pre.instantiate_async(&mut store).await?;
                store.data_mut().called = true;
                robot.call_describe(&mut store).await
            })
            .map_err(|e| self.describe_failed(name, e, &mut store))?;
        let bad_catalog = |detail: String| LoadError::BadCatalog {
            name: name.into(),
            detail,
        };
        let robots = infos
            .into_iter()
            .map(|info| RobotInfo::try_from(info).map_err(|e| bad_catalog(e.0)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut requested = HashMap::new();
        for robot in &robots {
            check_code(
                &robot.code,
                requested
                    .insert(robot.code.clone(), robot.capabilities.iter().copied().collect())
                    .is_some(),
            )
            .map_err(bad_catalog)?;
        }
        Ok(Plugin {
            name: name.into(),
            digest,
            pre,
            robots,
            requested,
            staged,
        })
    }

    /// Compiles (or takes from the cache), links and describes a trigger
    /// plugin.
    pub fn load_trigger(&self, name: &str, wasm: &[u8], context: &RunContext) -> Result<TriggerPlugin, LoadError> {
        let (digest, pre, staged) = self.link(name, wasm, "trigger")?;
        let pre = TriggerPre::new(pre).map_err(|e| wrong_world(name, "trigger", e))?;
        let mut store = self.store(
            RunState::new(&self.config, Grants::NONE, context.clone()),
            self.config.fuel,
        );
        let infos = self
            .drive(async {
                let trigger = pre.instantiate_async(&mut store).await?;
                store.data_mut().called = true;
                trigger.call_describe(&mut store).await
            })
            .map_err(|e| self.describe_failed(name, e, &mut store))?;
        let triggers: Vec<TriggerInfo> = infos.into_iter().map(Into::into).collect();
        let mut seen = std::collections::HashSet::new();
        for trigger in &triggers {
            check_code(&trigger.code, !seen.insert(trigger.code.as_str())).map_err(|detail| LoadError::BadCatalog {
                name: name.into(),
                detail,
            })?;
        }
        Ok(TriggerPlugin {
            name: name.into(),
            digest,
            pre,
            triggers,
            staged,
        })
    }

    /// Compiles (or takes from the cache) and links; what compiling wrote
    /// is staged, deleted unless the caller accepts the plugin.
    fn link(
        &self,
        name: &str,
        wasm: &[u8],
        world: &'static str,
    ) -> Result<(Digest, InstancePre<RunState>, Staged), LoadError> {
        check_component_header(name, wasm)?;
        let digest = Digest::of(wasm);
        let compile = |functions: Option<&FunctionDirs>| {
            let started = Instant::now();
            let compiled = compile::compile(&self.engine, &self.config, wasm, functions);
            crate::metrics::metrics()
                .compile_seconds
                .observe(started.elapsed().as_secs_f64());
            compiled
        };
        let (component, staged): (Component, Staged) =
            self.cache
                .component(&self.engine, digest, compile)
                .map_err(|e| LoadError::Compile {
                    name: name.into(),
                    detail: format!("{e:#}"),
                })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| wrong_world(name, world, e))?;
        Ok((digest, pre, staged))
    }

    fn describe_failed(&self, name: &str, error: wasmtime::Error, store: &mut Store<RunState>) -> LoadError {
        store.data_mut().settle_denials();
        LoadError::Describe {
            name: name.into(),
            outcome: Box::new(self.classify(error, self.config.fuel, store.data())),
        }
    }

    /// Turns one inbound call into trigger hits, in a fresh sandbox.
    pub fn handle(
        &self,
        plugin: &TriggerPlugin,
        request: &InboundCall,
        grants: Grants,
        context: RunContext,
    ) -> HandleReport {
        let started = Instant::now();
        let fuel = self.config.fuel;
        let mut store = self.store(RunState::new(&self.config, grants, context), fuel);
        let request = request.into();
        let result = self.drive(async {
            let trigger = plugin.pre.instantiate_async(&mut store).await?;
            store.data_mut().called = true;
            trigger.call_handle(&mut store, &request).await
        });
        let fuel_used = fuel - store.get_fuel().unwrap_or(0);
        let mut state = store.into_data();
        state.settle_denials();
        let (outcome, hits) = match result {
            Ok(Ok(hits)) => match hits
                .into_iter()
                .map(TriggerHit::try_from)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(hits) => match hits
                    .iter()
                    .find(|h| !plugin.triggers.iter().any(|t| t.code == h.trigger))
                {
                    Some(unknown) => {
                        let message = format!(
                            "returned a hit for trigger `{}`, which it does not describe",
                            unknown.trigger
                        );
                        (
                            Outcome::RobotError {
                                code: "unknown-trigger".into(),
                                message,
                                retryable: false,
                            },
                            Vec::new(),
                        )
                    }
                    None => match state.keep_returned(&hits, "the hits returned") {
                        Ok(()) => (Outcome::Success, hits),
                        Err(hit) => (Outcome::OutputLimit { what: hit.0 }, Vec::new()),
                    },
                },
                Err(e) => {
                    let message = format!("returned an invalid hit: {}", e.0);
                    (
                        Outcome::RobotError {
                            code: "invalid-return".into(),
                            message,
                            retryable: false,
                        },
                        Vec::new(),
                    )
                }
            },
            Ok(Err(failure)) => (self.failed(failure, &state.denials), Vec::new()),
            Err(e) => (self.classify(e, fuel, &state), Vec::new()),
        };
        // Key-value writes, the only effects the trigger world has, are
        // made only when the handling succeeded.
        let kv = if outcome.is_success() {
            std::mem::take(&mut state.effects)
        } else {
            Vec::new()
        };
        HandleReport {
            plugin: plugin.digest,
            blame: outcome.blame(),
            outcome,
            hits,
            kv,
            logs: state.take_logs(),
            denials: state.denials,
            fuel_used,
            duration: started.elapsed(),
        }
    }

    /// Runs one robot in a fresh sandbox.
    pub fn run(&self, plugin: &Plugin, request: RunRequest<'_>) -> Result<AttemptReport, RunError> {
        let Some(requested) = plugin.requested.get(request.robot) else {
            let known: Vec<_> = plugin.robots.iter().map(|r| r.code.as_str()).collect();
            return Err(RunError::UnknownRobot {
                plugin: plugin.name.clone(),
                robot: request.robot.into(),
                known: known.join(", "),
            });
        };
        let fuel = request.fuel.unwrap_or(self.config.fuel);
        if fuel > self.config.max_fuel {
            return Err(RunError::FuelAboveMax {
                asked: fuel,
                max: self.config.max_fuel,
            });
        }
        let started = Instant::now();
        let time_zone = request.context.calendar.time_zone().name().to_owned();
        let state = RunState::new(&self.config, request.grants.intersect(requested), request.context);
        let mut store = self.store(state, fuel);
        let invocation = robot_types::Invocation {
            robot: request.robot.to_owned(),
            entity: request.entity.into(),
            properties: fields_out(request.properties),
            cause: cause_out(request.cause),
            run_id: request.run_id.to_owned(),
            attempt: request.attempt,
            idempotency_key: request.idempotency_key.to_owned(),
            now: request.now.0,
            time_zone,
        };
        let result = self.drive(async {
            let robot = plugin.pre.instantiate_async(&mut store).await?;
            store.data_mut().called = true;
            robot.call_run(&mut store, &invocation).await
        });
        let fuel_used = fuel - store.get_fuel().unwrap_or(0);
        let mut state = store.into_data();
        state.settle_denials();

        let (outcome, returns) = match result {
            Ok(Ok(values)) => match fields_in(values) {
                Ok(returns) => match state.keep_returned(&returns, "the values returned") {
                    Ok(()) => (Outcome::Success, returns),
                    Err(hit) => (Outcome::OutputLimit { what: hit.0 }, Fields::new()),
                },
                Err(e) => {
                    let message = format!("returned an invalid value: {}", e.0);
                    (
                        Outcome::RobotError {
                            code: "invalid-return".into(),
                            message,
                            retryable: false,
                        },
                        Fields::new(),
                    )
                }
            },
            Ok(Err(failure)) => (self.failed(failure, &state.denials), Fields::new()),
            Err(e) => (self.classify(e, fuel, &state), Fields::new()),
        };
        let logs = state.take_logs();
        let effects = if outcome.is_success() {
            std::mem::take(&mut state.effects)
        } else {
            Vec::new()
        };
        Ok(AttemptReport {
            plugin: plugin.digest,
            robot: request.robot.to_owned(),
            blame: outcome.blame(),
            outcome,
            effects,
            returns,
            logs,
            denials: state.denials,
            fuel_used,
            duration: started.elapsed(),
        })
    }

    /// Drives a guest's call until it ends or its wall-clock time is up.
    /// Wasm itself is stopped by the epoch deadline; a guest waiting in the
    /// host (a sleep, a stream, `poll`) is stopped here, its call dropped.
    fn drive<T>(&self, call: impl Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
        let _io = self.io.enter();
        let deadline = tokio::time::Instant::now() + self.config.wall_time();
        let mut call = std::pin::pin!(call);
        // Most guests never wait in the host: the timer, shared by every
        // run's thread, is set only for one that does.
        let mut timer = None;
        futures_executor::block_on(std::future::poll_fn(|cx| {
            if let Poll::Ready(ended) = call.as_mut().poll(cx) {
                return Poll::Ready(ended);
            }
            let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            timer.as_mut().poll(cx).map(|()| Err(Trap::Interrupt.into()))
        }))
    }

    fn store(&self, state: RunState, fuel: u64) -> Store<RunState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(fuel).expect("fuel is enabled on the engine");
        store.set_epoch_deadline(self.config.wall_time_ms.div_ceil(EPOCH_TICK.as_millis() as u64) + 1);
        store.set_hostcall_fuel(self.config.hostcall_bytes);
        store
    }
}

fn wrong_world(name: &str, world: &'static str, e: wasmtime::Error) -> LoadError {
    LoadError::WrongWorld {
        name: name.into(),
        world,
        detail: format!("{e:#}"),
    }
}

/// A catalog code must be present and unique.
fn check_code(code: &str, duplicate: bool) -> Result<(), String> {
    if code.is_empty() {
        return Err("an entry has an empty code".into());
    }
    if duplicate {
        return Err(format!("two entries have the code `{code}`"));
    }
    Ok(())
}

/// Only binary components are accepted: wasmtime would also compile WAT text
/// and core modules, which no plugin is.
fn check_component_header(name: &str, wasm: &[u8]) -> Result<(), LoadError> {
    let not = |detail| {
        Err(LoadError::NotAComponent {
            name: name.into(),
            detail,
        })
    };
    match wasm.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 0x01, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
            not("it is a core module; build for wasm32-wasip2 or wrap it with `wasm-tools component new`")
        }
        Some([0, b'a', b's', b'm', ..]) => not("it is a WebAssembly binary of an unknown version"),
        _ => not("it does not start with the WebAssembly magic bytes"),
    }
}
