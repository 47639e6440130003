//! The wasmtime engine configured for untrusted code, the linker's refusal
//! of ambient authority, and the sandbox's two background parts: the small
//! runtime guests' waits run on, and the epoch ticker that ends runs at
//! their deadline.

use std::sync::mpsc;
use std::thread;

use wasmtime::component::{Linker, Resource};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, StoreContextMut};

use super::state::RunState;
use super::{ASYNC_STACK_HEADROOM, Denied, EPOCH_TICK, SandboxConfig, WASI_VERSION, cache};

/// An engine for `config`; `functions` caches compiled functions, for an
/// engine that compiles one component.
pub(super) fn engine(
    config: &SandboxConfig,
    pooling: bool,
    functions: Option<cache::FunctionCache>,
) -> wasmtime::Result<Engine> {
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
pub(super) fn refuse_ambient_authority(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
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
pub(super) struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    pub(super) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("robohost-sandbox-io")
            .enable_all()
            .build()?;
        Ok(IoRuntime(Some(runtime)))
    }

    pub(super) fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
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
pub(super) struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub(super) fn start(engine: &Engine) -> Self {
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
