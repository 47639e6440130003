//! Compiling components in a worker process with time and memory caps.
//!
//! Compiling is the one step of an install whose cost a component's author
//! controls: a crafted component can keep Cranelift busy for minutes or
//! make it allocate gigabytes. So the sandbox compiles in a child process,
//! the host's own binary (`robohost compile-worker`): it caps its address
//! space (`RLIMIT_AS`) before reading anything, reads the component on
//! stdin, writes the compiled artifact on stdout, and is killed at its
//! deadline. A failure there fails the install with the limit it hit; the
//! host process is never at risk.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::SandboxConfig;

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

/// Compiles `wasm` in a worker within the limits of `config`; returns the
/// artifact, or why not in words that name the limit.
pub(super) fn in_worker(exe: &PathBuf, config: &SandboxConfig, wasm: &[u8]) -> Result<Vec<u8>, String> {
    let started = Instant::now();
    let deadline = started + config.compile_time();
    let mut child = Command::new(exe)
        .arg(WORKER_COMMAND)
        .args(["--max-wasm-stack", &config.max_wasm_stack.to_string()])
        .args(["--memory-bytes", &config.compile_memory_bytes.to_string()])
        .args(
            config
                .cache_dir
                .iter()
                .flat_map(|dir| [std::ffi::OsStr::new("--cache-dir"), dir.as_os_str()]),
        )
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
/// sandbox's (and its function cache in `cache_dir`), and writes the
/// artifact to stdout.
pub fn serve_worker(max_wasm_stack: usize, memory_bytes: u64, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
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
        cache_dir,
        ..SandboxConfig::default()
    };
    let engine = super::engine(&config, false).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let artifact = engine
        .precompile_component(&wasm)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    std::io::stdout().lock().write_all(&artifact)?;
    Ok(())
}
