//! The sandbox's limits. Every limit has a default, a key under `[sandbox]`
//! in `robohost.toml`, and a note on the threat it stops.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

const MIB: usize = 1024 * 1024;

/// How a run is confined. Read from the `[sandbox]` table of the
/// configuration file; every key is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SandboxConfig {
    /// `fuel`: wasm instructions one run may execute. Stops a guest that
    /// computes forever or too long (an endless loop, tail-call recursion),
    /// deterministically: the same input always uses the same fuel. 500 M is
    /// about 40 ms of tight loop here, enough for a Python robot.
    pub fuel: u64,
    /// `max-fuel`: the largest per-robot fuel budget an admin may set. Stops a
    /// configuration mistake from giving one robot unbounded CPU.
    pub max_fuel: u64,
    /// `wall-time-ms`: wall-clock time of one run. The backstop for what fuel
    /// misses: time the thread is descheduled, and slow host calls. Enforced by
    /// epoch interruption.
    pub wall_time_ms: u64,
    /// `memory-bytes`: linear memory of one run, summed over all of its
    /// memories. Stops a memory bomb, including one spread over many core
    /// instances each under a per-memory cap.
    pub memory_bytes: usize,
    /// `table-elements`: elements of one table. Stops a guest exhausting host
    /// memory through `table.grow`.
    pub table_elements: usize,
    /// `instances`: core instances, `tables` and `memories` one run may
    /// create. Stops a small component that instantiates itself many times.
    pub instances: usize,
    pub tables: usize,
    pub memories: usize,
    /// `max-wasm-stack`: bytes of native stack wasm may use. Stops unbounded
    /// recursion before it overflows the host thread's stack.
    pub max_wasm_stack: usize,
    /// `hostcall-bytes`: bytes a guest may pass to the host in one call or
    /// return from `run`. Stops a guest making the host allocate without
    /// bound (a 1 GiB string).
    pub hostcall_bytes: usize,
    /// `output-bytes`: bytes of log lines, stdout and stderr kept per run,
    /// each line counting 64 bytes more. Stops a guest filling the run log
    /// and the database behind it, empty lines included.
    pub output_bytes: usize,
    /// `record-bytes`: bytes a run may hand the host to keep, log, refusals,
    /// effects and returned values together, each item counting 64 bytes
    /// more. Stops a run whose record (in memory, then in the database)
    /// grows without bound: a million refusals, a hundred 1 MiB effects.
    pub record_bytes: usize,
    /// `host-calls`: calls a run may make to robohost's interfaces (`crm`,
    /// `effects`, `kv`, `calendar`, `log`). Stops a guest making the host
    /// work (database reads) as often as its fuel allows.
    pub host_calls: usize,
    /// `rows-read`: entities a run's `crm` reads may return in all. Stops a
    /// guest reading the portal's tables again and again.
    pub rows_read: usize,
    /// `resource-handles`: WASI and HTTP resources (streams, pollables,
    /// requests) a run may hold at once. Stops a guest filling host memory
    /// with handles it never drops.
    pub resource_handles: usize,
    /// `max-effects`: effects one run may ask for. Stops a run that would
    /// commit millions of changes in one transaction.
    pub max_effects: usize,
    /// `kv-value-bytes`: size of one value in the plugin's key-value store.
    pub kv_value_bytes: usize,
    /// `pool-slots`: runs that may be in flight at once in this process; the
    /// pooling allocator reserves address space for this many.
    pub pool_slots: u32,
    /// `pooling`: use the pooling instance allocator (fast fresh sandboxes).
    /// When the machine cannot reserve its address space the sandbox falls
    /// back to on-demand allocation by itself.
    pub pooling: bool,
    /// `cache-dir`: where compiled plugins are kept, keyed by content digest
    /// and engine. Nothing precompiled is loaded from anywhere else.
    pub cache_dir: Option<PathBuf>,
    /// `compile-time-ms`: wall-clock time compiling one component may take.
    /// Stops a component crafted to keep the compiler busy for minutes.
    pub compile_time_ms: u64,
    /// `compile-memory-bytes`: address space of the worker compiling one
    /// component. Stops a component crafted to make the compiler allocate
    /// without bound.
    pub compile_memory_bytes: u64,
    /// Where components are compiled: the `robohost` binary sets a worker
    /// process (itself); not a configuration key.
    #[serde(skip)]
    pub compiler: super::Compiler,
    /// `http-requests`: outbound HTTP requests one run may attempt, refused
    /// ones included; later ones are refused. Stops a robot using the host as
    /// a request cannon (flooding an approved service, probing hosts and
    /// ports) and bounds what the run record keeps of them.
    pub http_requests: u32,
    /// `http-bytes`: request and response body bytes one run may move over
    /// outbound HTTP, counted as they stream; the body that crosses it fails.
    /// Stops a robot exfiltrating data in bulk or pulling unbounded downloads
    /// through the host. (Time is capped by `wall-time-ms`: every wait of a
    /// request ends when the run's time does.)
    pub http_bytes: u64,
    /// Fixed addresses of host names, used instead of DNS for them; not a
    /// configuration key. Tests use it so no lookup leaves the machine; its
    /// addresses are checked like resolved ones.
    #[serde(skip)]
    pub http_hosts: BTreeMap<String, Vec<IpAddr>>,
    /// `compile-concurrency`: components compiled at once in this process
    /// (0 counts as 1); other installs wait for their turn. Stops concurrent
    /// installs from multiplying what one compile may take: three compile
    /// bombs at once took 2.1 GB.
    pub compile_concurrency: usize,
    /// `cache-bytes`: the most the `cache-dir` may hold (compiled plugins and
    /// compiled functions); past it the least recently used go first. Stops
    /// uploads, each compiled and kept, from filling the disk (one Python
    /// plugin leaves about 50 MB of functions).
    pub cache_bytes: u64,
    /// `cache-max-age-days`: compiled plugins and functions unused this long
    /// are removed, whatever the size. Stops code no plugin uses any more
    /// (replaced versions, an older wasmtime's artifacts) from staying
    /// forever.
    pub cache_max_age_days: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            fuel: 500_000_000,
            max_fuel: 10_000_000_000,
            wall_time_ms: 2_000,
            memory_bytes: 128 * MIB,
            table_elements: 100_000,
            instances: 50,
            tables: 50,
            memories: 10,
            max_wasm_stack: 512 * 1024,
            hostcall_bytes: 4 * MIB,
            output_bytes: 256 * 1024,
            record_bytes: MIB,
            host_calls: 10_000,
            rows_read: 10_000,
            resource_handles: 10_000,
            max_effects: 1_000,
            kv_value_bytes: 64 * 1024,
            pool_slots: 128,
            pooling: true,
            cache_dir: None,
            compile_time_ms: 60_000,
            compile_memory_bytes: 4 * 1024 * MIB as u64,
            compiler: super::Compiler::InProcess,
            http_requests: 16,
            http_bytes: 8 * MIB as u64,
            http_hosts: BTreeMap::new(),
            compile_concurrency: 1,
            cache_bytes: 2 * 1024 * MIB as u64,
            cache_max_age_days: 30,
        }
    }
}

impl SandboxConfig {
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_time_ms)
    }

    pub fn compile_time(&self) -> Duration {
        Duration::from_millis(self.compile_time_ms)
    }
}
