//! Compiling components in a worker process with time and memory caps,
//! a few at a time.
//!
//! Compiling is the one step of an install whose cost a component's author
//! controls: a crafted component can keep Cranelift busy for minutes or
//! make it allocate gigabytes. So the sandbox compiles in a child process,
//! the host's own binary (`robohost compile-worker`): it caps its address
//! space (`RLIMIT_AS`) before reading anything, reads the component on
//! stdin, writes the compiled artifact on stdout, and is killed at its
//! deadline. A failure there fails the install with the limit it hit; the
//! host process is never at risk.
//!
//! Those caps hold per compile; [`Slots`] caps how many compiles run at
//! once in this process (`compile-concurrency`), so concurrent installs
//! (three compile bombs took 2.1 GB together) wait for their turn instead
//! of multiplying the memory and CPU one compile may take. The wait is not
//! part of `compile-time-ms`.
//!
//! The worker reads the shared function cache and writes the functions it
//! compiles to the compile's staging folder (see [`super::cache`]), never
//! to the shared one: a rejected upload's functions go with its staging.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Engine;

use super::SandboxConfig;
use super::cache::{FunctionCache, FunctionDirs};

/// The hidden subcommand the worker runs as.
pub const WORKER_COMMAND: &str = "compile-worker";

/// How components are compiled: in this process, or in a worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Compiler {
    /// In this process: for library users without the `robohost` binary.
    #[default]
    InProcess,
    /// In a child process running `exe compile-worker`, which must be the
    /// `robohost` binary of this build (the artifact must match the engine).
    Worker { exe: PathBuf },
}

/// Compiles so far in a sandbox, and the most that ran at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Compiles started (cache hits compile nothing).
    pub compiles: u64,
    /// The most compiles that ran at the same time.
    pub peak: usize,
}

/// A counting semaphore around compiling: at most `cap` compiles at once,
/// the others wait.
pub(super) struct Slots {
    cap: usize,
    state: Mutex<SlotsState>,
    freed: Condvar,
}

#[derive(Default)]
struct SlotsState {
    running: usize,
    stats: CompileStats,
}

impl Slots {
    /// At most `cap` at once; 0 counts as 1.
    pub fn new(cap: usize) -> Self {
        Slots {
            cap: cap.max(1),
            state: Mutex::default(),
            freed: Condvar::new(),
        }
    }

    /// Runs `compile` once a slot is free; blocks until then.
    pub fn run<T>(&self, compile: impl FnOnce() -> T) -> T {
        let _slot = self.take();
        compile()
    }

    fn take(&self) -> Slot<'_> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.running >= self.cap {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.running += 1;
        state.stats.compiles += 1;
        state.stats.peak = state.stats.peak.max(state.running);
        Slot(self)
    }

    pub fn stats(&self) -> CompileStats {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stats
    }
}

/// A compile's slot, given back when dropped (also by a panic).
struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running -= 1;
        self.0.freed.notify_one();
    }
}

/// Compiles `wasm` for `engine` where `config` says, its new functions
/// written to `functions.staged` (when there is a cache).
pub(super) fn compile(
    engine: &Engine,
    config: &SandboxConfig,
    wasm: &[u8],
    functions: Option<&FunctionDirs>,
) -> wasmtime::Result<Vec<u8>> {
    match (&config.compiler, functions) {
        (Compiler::Worker { exe }, _) => in_worker(exe, config, wasm, functions).map_err(wasmtime::Error::msg),
        // The function cache is an engine's setting: a compile writing to
        // a staging folder of its own needs an engine of its own. Its
        // artifact loads in the sandbox's engine as the worker's does.
        (Compiler::InProcess, Some(dirs)) => {
            super::engine(config, false, Some(FunctionCache::new(dirs.clone())))?.precompile_component(wasm)
        }
        (Compiler::InProcess, None) => engine.precompile_component(wasm),
    }
}

/// Compiles `wasm` in a worker within the limits of `config`; returns the
/// artifact, or why not in words that name the limit.
fn in_worker(
    exe: &PathBuf,
    config: &SandboxConfig,
    wasm: &[u8],
    functions: Option<&FunctionDirs>,
) -> Result<Vec<u8>, String> {
    let started = Instant::now();
    let deadline = started + config.compile_time();
    let mut command = Command::new(exe);
    command
        .arg(WORKER_COMMAND)
        .args(["--max-wasm-stack", &config.max_wasm_stack.to_string()])
        .args(["--memory-bytes", &config.compile_memory_bytes.to_string()]);
    if let Some(dirs) = functions {
        command
            .arg("--functions")
            .arg(&dirs.shared)
            .arg("--new-functions")
            .arg(&dirs.staged);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .spawn()
        .map_err(|e| format!("could not start the compile worker {}: {e}", exe.display()))?;
    let (mut stdin, mut stdout, stderr) = (
        child.stdin.take().expect("piped"),
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let (status, artifact, errors) = std::thread::scope(|s| {
        // The worker reads all its input before it writes anything, but
        // the pipes are drained on their own threads all the same.
        s.spawn(move || stdin.write_all(wasm));
        let artifact = s.spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).map(|_| out)
        });
        let errors = s.spawn(move || {
            let mut out = String::new();
            let _ = stderr.take(64 * 1024).read_to_string(&mut out);
            out
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "compiling took longer than {} ms (limit `sandbox.compile-time-ms`)",
                        config.compile_time_ms
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => break Err(format!("waiting for the compile worker: {e}")),
            }
        };
        (status, artifact.join(), errors.join().unwrap_or_default())
    });
    let status = status?;
    if !status.success() {
        let limit = config.compile_memory_bytes / (1024 * 1024);
        if errors.contains("memory allocation of") || errors.contains("Cannot allocate memory") {
            return Err(format!(
                "compiling needed more than {limit} MiB (limit `sandbox.compile-memory-bytes`)"
            ));
        }
        let said = errors.lines().next().unwrap_or("it said nothing");
        return Err(format!("the compile worker failed ({status}): {said}"));
    }
    let artifact = artifact
        .map_err(|_| "the compile worker's output reader panicked".to_owned())?
        .map_err(|e| format!("reading the compile worker's output: {e}"))?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        bytes = artifact.len(),
        "compiled in a worker"
    );
    Ok(artifact)
}

/// The worker's side (`robohost compile-worker`): caps its own address
/// space, compiles the component on stdin with an engine configured as the
/// sandbox's (reading compiled functions from `functions` and writing new
/// ones to `new_functions`, when both are given), and writes the artifact
/// to stdout.
pub fn serve_worker(
    max_wasm_stack: usize,
    memory_bytes: u64,
    functions: Option<PathBuf>,
    new_functions: Option<PathBuf>,
) -> anyhow::Result<()> {
    let limit = rustix::process::Rlimit {
        current: Some(memory_bytes),
        maximum: Some(memory_bytes),
    };
    rustix::process::setrlimit(rustix::process::Resource::As, limit)
        .map_err(|e| anyhow::anyhow!("capping the address space: {e}"))?;
    let mut wasm = Vec::new();
    std::io::stdin().read_to_end(&mut wasm)?;
    let config = SandboxConfig {
        max_wasm_stack,
        ..SandboxConfig::default()
    };
    let cache = functions
        .zip(new_functions)
        .map(|(shared, staged)| FunctionCache::new(FunctionDirs { shared, staged }));
    let engine = super::engine(&config, false, cache).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let artifact = engine
        .precompile_component(&wasm)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    std::io::stdout().lock().write_all(&artifact)?;
    Ok(())
}
