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
mod state;

use std::collections::HashMap;
use std::future::Future;
use std::sync::mpsc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, Linker, Resource};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreContextMut, Trap, WasmBacktrace,
};

use crate::domain::{Cause, Digest, Entity, Fields, InboundCall, RobotInfo, Timestamp, TriggerHit, TriggerInfo};
use bindings::trigger_world::TriggerPre;
use bindings::{Robot, RobotPre, fields_in, fields_out, robot_types};
use budget::{HostCallLimitHit, OutputLimitHit};
use cache::{ArtifactCache, FunctionDirs, Staged};
use limiter::MemoryLimitHit;
use state::{HostFault, RunState};

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
    Describe { name: String, outcome: Outcome },
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
        let compile = |functions: Option<&FunctionDirs>| compile::compile(&self.engine, &self.config, wasm, functions);
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
            outcome: self.classify(error, self.config.fuel, store.data()),
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
        HandleReport {
            plugin: plugin.digest,
            blame: outcome.blame(),
            outcome,
            hits,
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

    /// The outcome of a guest's own failure: a refusal it could not recover
    /// from explains it better than its message.
    fn failed(&self, failure: bindings::wit::Failure, denials: &[Denial]) -> Outcome {
        match denials.first() {
            Some(d) => Outcome::CapabilityDenied {
                denied: d.denied.clone(),
                call: d.call.to_string(),
            },
            None => Outcome::RobotError {
                code: failure.code,
                message: failure.message,
                retryable: failure.retryable,
            },
        }
    }

    /// Maps a trap or error ending a run to its outcome.
    fn classify(&self, error: wasmtime::Error, fuel: u64, state: &RunState) -> Outcome {
        let config = &self.config;
        let denials = &state.denials;
        if let Some(hit) = error.downcast_ref::<MemoryLimitHit>() {
            return Outcome::MemoryLimit { limit_bytes: hit.limit };
        }
        if let Some(OutputLimitHit(what)) = error.downcast_ref::<OutputLimitHit>() {
            return Outcome::OutputLimit { what: what.clone() };
        }
        if let Some(HostCallLimitHit(what)) = error.downcast_ref::<HostCallLimitHit>() {
            return Outcome::HostCallLimit { what: what.clone() };
        }
        if let Some(wasmtime::component::ResourceTableError::Full) =
            error.downcast_ref::<wasmtime::component::ResourceTableError>()
        {
            return Outcome::HostCallLimit {
                what: format!(
                    "held more than {} resource handles at once (limit `sandbox.resource-handles`)",
                    config.resource_handles
                ),
            };
        }
        if let Some(HostFault(message)) = error.downcast_ref::<HostFault>() {
            return Outcome::HostError {
                message: message.clone(),
            };
        }
        if let Some(trap) = error.downcast_ref::<Trap>() {
            return match trap {
                Trap::OutOfFuel => Outcome::OutOfFuel { budget: fuel },
                Trap::Interrupt => Outcome::DeadlineExceeded {
                    limit_ms: config.wall_time_ms,
                },
                Trap::StackOverflow => Outcome::StackOverflow {
                    limit_bytes: config.max_wasm_stack,
                },
                trap => {
                    if let Some(d) = denials.first() {
                        return Outcome::CapabilityDenied {
                            denied: d.denied.clone(),
                            call: d.call.to_string(),
                        };
                    }
                    Outcome::GuestTrap {
                        message: trap.to_string(),
                        frames: guest_frames(&error),
                    }
                }
            };
        }
        // The per-call data cap surfaces as an error of wasmtime's own whose
        // type is private.
        let message = format!("{error:#}");
        if message.contains("fuel allocated for hostcalls") {
            return Outcome::OutputLimit {
                what: format!(
                    "passed more than {} bytes to the host at once (limit `sandbox.hostcall-bytes`)",
                    config.hostcall_bytes
                ),
            };
        }
        if message.contains("beyond capacity of MemoryOutputPipe") {
            return Outcome::OutputLimit {
                what: format!(
                    "wrote more than {} bytes to stdout or stderr (limit `sandbox.output-bytes`)",
                    config.output_bytes
                ),
            };
        }
        // Past instantiation, what is left is the canonical ABI refusing what
        // the guest handed over (a string that is not UTF-8 or lies outside
        // its memory, a bad handle or discriminant): a trap, by the
        // component model's rules, and the guest's doing.
        if state.called {
            return Outcome::GuestTrap {
                message: format!("handed the host malformed data: {message}"),
                frames: guest_frames(&error),
            };
        }
        Outcome::HostError { message }
    }
}

/// The guest's function names at the trap, innermost first.
fn guest_frames(error: &wasmtime::Error) -> Vec<String> {
    let Some(trace) = error.downcast_ref::<WasmBacktrace>() else {
        return Vec::new();
    };
    trace
        .frames()
        .iter()
        .filter_map(|frame| frame.func_name())
        .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
        .filter(|name| !name.starts_with("core::") && !name.starts_with("std::") && !name.starts_with("__rust"))
        .take(8)
        .collect()
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

fn cause_out(cause: &Cause) -> robot_types::Cause {
    match cause {
        Cause::StageEntered {
            pipeline,
            stage,
            previous_stage,
        } => robot_types::Cause::StageEntered(robot_types::StageEntry {
            pipeline: pipeline.clone(),
            stage: stage.clone(),
            previous_stage: previous_stage.clone(),
        }),
        Cause::Trigger { code } => robot_types::Cause::Trigger(code.clone()),
        Cause::Schedule { name } => robot_types::Cause::Schedule(name.clone()),
        Cause::Manual { user } => robot_types::Cause::Manual(*user),
    }
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

/// An engine for `config`; `functions` caches compiled functions, for an
/// engine that compiles one component.
fn engine(config: &SandboxConfig, pooling: bool, functions: Option<cache::FunctionCache>) -> wasmtime::Result<Engine> {
    let mut c = Config::new();
    if let Some(functions) = functions {
        c.enable_incremental_compilation(std::sync::Arc::new(functions))?;
    }
    c.consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        // Guests run on fibers: their stack holds the wasm stack and the
        // host calls made from it.
        .async_stack_size(config.max_wasm_stack + ASYNC_STACK_HEADROOM)
        .concurrency_support(false);
    if pooling {
        let slots = config.pool_slots;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(16))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(4))
            .total_stacks(slots)
            .max_core_instances_per_component(config.instances as u32)
            .max_memories_per_component(config.memories as u32)
            .max_tables_per_component(config.tables as u32)
            .max_memory_size(config.memory_bytes)
            .table_elements(config.table_elements)
            // Reset pages in place rather than unmapping them, and only the
            // ones a run dirtied: fresh sandboxes stay cheap on both cores.
            .linear_memory_keep_resident(2 * 1024 * 1024)
            .table_keep_resident(2 * 1024 * 1024)
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&c)
}

/// Refuses the ambient authority a WASI guest might reach for, recording
/// each attempt so the run's outcome can say what was refused.
fn refuse_ambient_authority(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
    linker.allow_shadowing(true);
    linker
        .instance(&format!("wasi:filesystem/preopens@{WASI_VERSION}"))?
        .func_wrap("get-directories", |mut store: StoreContextMut<'_, RunState>, (): ()| {
            store
                .data_mut()
                .deny(Denied::Filesystem, "wasi:filesystem/preopens.get-directories");
            Ok((Vec::<(Resource<wasmtime_wasi::filesystem::Descriptor>, String)>::new(),))
        })?;
    linker
        .instance(&format!("wasi:sockets/tcp-create-socket@{WASI_VERSION}"))?
        .func_wrap(
            "create-tcp-socket",
            |mut store: StoreContextMut<'_, RunState>, (_,): (IpAddressFamily,)| {
                store
                    .data_mut()
                    .deny(Denied::Network, "wasi:sockets/tcp-create-socket.create-tcp-socket");
                Ok((Err::<Resource<wasmtime_wasi::p2::TcpSocket>, _>(
                    ErrorCode::AccessDenied,
                ),))
            },
        )?;
    linker
        .instance(&format!("wasi:sockets/udp-create-socket@{WASI_VERSION}"))?
        .func_wrap(
            "create-udp-socket",
            |mut store: StoreContextMut<'_, RunState>, (_,): (IpAddressFamily,)| {
                store
                    .data_mut()
                    .deny(Denied::Network, "wasi:sockets/udp-create-socket.create-udp-socket");
                Ok((Err::<Resource<wasmtime_wasi::p2::UdpSocket>, _>(
                    ErrorCode::AccessDenied,
                ),))
            },
        )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The runtime guests' waits run on: its timers end them at the deadline,
/// and outbound HTTP connections live on it. Shut down without waiting, so
/// a sandbox may be dropped anywhere, an async context included.
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("robohost-sandbox-io")
            .enable_all()
            .build()?;
        Ok(IoRuntime(Some(runtime)))
    }

    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(|runtime| runtime.enter())
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let engine = engine.weak();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("robohost-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
