//! Compiled plugins on disk, keyed by content digest and engine, and
//! compiled functions, keyed by what Cranelift compiled them from; what a
//! compile writes is staged until its plugin is accepted, and the whole
//! cache is kept under a size and an age.
//!
//! Loading a precompiled artifact runs native code, so only artifacts this
//! host compiled itself are ever loaded, and only from this cache: each file
//! starts with the SHA-256 of the rest, checked before it is deserialised, and
//! lives in a folder only the host's user can write.
//!
//! The function cache makes a component that shares functions with one
//! compiled before compile only what is new: every Python plugin carries the
//! same interpreter, every JavaScript plugin the same engine, so the second
//! one compiles in a third of the time.
//!
//! The folder (`cache-dir`):
//!
//! ```text
//! <engine hash>/<digest>.cwasm   compiled plugins of this engine (older engines' folders age out)
//! functions/<sha256 of key>      compiled functions, shared by every compile
//! staging/<pid>-<n>-<ns>/        one per compile in progress or not yet accepted:
//!     lock                         locked by the process that owns it
//!     functions/                   the functions this compile produced
//!     <digest>.cwasm               its artifact
//! ```
//!
//! Staging. An upload may be rejected after it compiled: a component of the
//! wrong world links to nothing, one may fail to describe itself, and a
//! package is refused whole when any of its components is. Whatever such an
//! upload compiled must not stay (one Python component is 60,000 function
//! files, 50 MB). So a compile reads the shared functions but writes new ones
//! only to its own staging folder (the compile worker too: it is given both
//! folders), and its artifact goes there as well. The result is a [`Staged`]
//! held by the loaded plugin: [`Staged::commit`] moves its files into the
//! shared folders once the caller accepts the plugin (the sandbox after it
//! linked and described; the package installer after the whole package
//! passed and was stored); dropping it unaccepted deletes the folder. A
//! crash leaves a staging folder whose lock nobody holds: the next sweep
//! removes it. A cache hit stages nothing. Two compiles producing the same
//! function each stage their copy; whichever is accepted puts it in place,
//! so a rejected one never takes away what an accepted one needs.
//!
//! Eviction. Each use refreshes a file's modification time (a hit touches
//! it; a commit's files are new), so that time is its last use. A sweep, when
//! the sandbox starts and after every commit, removes the files unused for
//! longer than `cache-max-age-days`, then the least recently used until the
//! cache holds at most `cache-bytes`. It only removes files named as this
//! module names them, so a `cache-dir` pointed at the wrong folder loses
//! nothing else. Removing an artifact never breaks a running host: a loaded
//! plugin's code was copied into memory when it was deserialised, and an
//! artifact found missing at the next load is compiled again. Readers that
//! lose a race with a sweep see a miss.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::SandboxConfig;
use super::compile::{CompileStats, Slots};
use crate::domain::Digest;

/// A staging folder whose lock is free is left alone this long after its
/// last change: the time between creating it and locking it.
const STAGING_GRACE: Duration = Duration::from_secs(60);

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

pub struct ArtifactCache {
    /// `None` compiles in memory only.
    disk: Option<Arc<Disk>>,
    /// Compiles running at once, capped by `compile-concurrency`.
    slots: Slots,
}

/// The cache folder and its limits.
#[derive(Debug)]
struct Disk {
    root: PathBuf,
    /// `<root>/<engine hash>`: this engine's artifacts.
    artifacts: PathBuf,
    /// `<root>/functions`.
    functions: PathBuf,
    /// `<root>/staging`.
    staging: PathBuf,
    max_bytes: u64,
    max_age: Duration,
}

/// Feeds `Hash` output into SHA-256, for a hash that is stable across runs.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only `write` is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    /// The cache in `config.cache_dir`, swept; or none.
    pub fn new(engine: &Engine, config: &SandboxConfig) -> std::io::Result<Self> {
        let slots = Slots::new(config.compile_concurrency);
        let Some(root) = &config.cache_dir else {
            return Ok(ArtifactCache { disk: None, slots });
        };
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let disk = Disk {
            root: root.clone(),
            artifacts: root.join(&hex::encode(hasher.0.finalize())[..16]),
            functions: root.join("functions"),
            staging: root.join("staging"),
            max_bytes: config.cache_bytes,
            max_age: DAY.saturating_mul(u32::try_from(config.cache_max_age_days).unwrap_or(u32::MAX)),
        };
        for dir in [&disk.artifacts, &disk.functions, &disk.staging] {
            fs::create_dir_all(dir)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
        }
        disk.sweep();
        Ok(ArtifactCache {
            disk: Some(Arc::new(disk)),
            slots,
        })
    }

    /// The compiled component, from the cache or compiled now by
    /// `compile` (the artifact of `wasm` for `engine`, its new functions
    /// written to the folders given) and staged.
    pub fn component(
        &self,
        engine: &Engine,
        digest: Digest,
        compile: impl FnOnce(Option<&FunctionDirs>) -> wasmtime::Result<Vec<u8>>,
    ) -> wasmtime::Result<(Component, Staged)> {
        let Some(disk) = &self.disk else {
            let artifact = self.slots.run(|| compile(None))?;
            // SAFETY: compiled just now by this engine or this host's own
            // compile worker, whose engine is configured the same;
            // `deserialize` checks that the two agree.
            let component = unsafe { Component::deserialize(engine, &artifact) }?;
            return Ok((component, Staged::default()));
        };
        let name = format!("{}.cwasm", digest.hex());
        let path = disk.artifacts.join(&name);
        if let Some(stored) = read_touched(&path) {
            if let Some(artifact) = checked(&stored) {
                // SAFETY: the artifact was produced by `precompile_component`
                // of an engine with this compatibility hash (the folder) and is
                // unchanged since (the checksum); nothing else writes here.
                let component = unsafe { Component::deserialize(engine, artifact) }?;
                return Ok((component, Staged::default()));
            }
            tracing::warn!(path = %path.display(), "compiled plugin failed its checksum; compiling again");
        }
        let mut staging = match Staging::create(disk) {
            Ok(staging) => Some(staging),
            Err(e) => {
                tracing::warn!(dir = %disk.staging.display(), error = %e, "cannot stage a compile; compiling without the cache");
                None
            }
        };
        let artifact = self.slots.run(|| compile(staging.as_ref().map(|s| &s.functions)))?;
        if let Some(staging) = &mut staging
            && let Err(e) = staging.put_artifact(&name, path, &artifact)
        {
            tracing::warn!(dir = %staging.dir.display(), error = %e, "could not stage a compiled plugin");
        }
        // SAFETY: produced just now by this engine or this host's compile
        // worker (see above).
        let component = unsafe { Component::deserialize(engine, &artifact) }?;
        Ok((component, Staged(staging.map(Box::new))))
    }

    /// Compiles so far, and the most at once.
    pub fn compile_stats(&self) -> CompileStats {
        self.slots.stats()
    }
}

/// What compiling one plugin wrote to disk, held apart from the shared
/// cache until the plugin is accepted. Dropped uncommitted, it is deleted.
/// Empty when nothing was compiled (a cache hit, or no cache folder).
#[derive(Debug, Default)]
pub struct Staged(Option<Box<Staging>>);

impl Staged {
    /// Moves what the compile wrote into the shared cache, then sweeps it.
    /// Failures only cost a compile later: they are logged.
    pub fn commit(&mut self) {
        if let Some(staging) = self.0.take() {
            staging.commit();
        }
    }
}

/// The two function folders of one compile: the shared one it reads, and
/// its staging folder, where the functions it compiles go.
#[derive(Clone, Debug)]
pub struct FunctionDirs {
    pub shared: PathBuf,
    pub staged: PathBuf,
}

/// One compile's staging folder; removed when dropped.
#[derive(Debug)]
struct Staging {
    dir: PathBuf,
    functions: FunctionDirs,
    /// Where the staged artifact goes on commit.
    artifact: Option<(PathBuf, PathBuf)>,
    disk: Arc<Disk>,
    /// Held (locked) while this process may still commit the folder.
    _lock: fs::File,
}

impl Staging {
    fn create(disk: &Arc<Disk>) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = disk.staging.join(format!("{}-{n}-{nanos}", std::process::id()));
        fs::create_dir(&dir)?;
        // From here on the folder is removed on any failure (`Drop`).
        let lock = fs::File::create(dir.join("lock"));
        let lock = match lock {
            Ok(lock) => lock,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let staging = Staging {
            functions: FunctionDirs {
                shared: disk.functions.clone(),
                staged: dir.join("functions"),
            },
            dir,
            artifact: None,
            disk: disk.clone(),
            _lock: lock,
        };
        staging._lock.try_lock().map_err(std::io::Error::from)?;
        fs::create_dir(&staging.functions.staged)?;
        Ok(staging)
    }

    fn put_artifact(&mut self, name: &str, destination: PathBuf, artifact: &[u8]) -> std::io::Result<()> {
        let staged = self.dir.join(name);
        store(&staged, artifact, true)?;
        self.artifact = Some((staged, destination));
        Ok(())
    }

    fn commit(self) {
        let mut moved = 0u64;
        if let Ok(entries) = fs::read_dir(&self.functions.staged) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                // Skips a write the compiler did not finish.
                if !name.to_str().is_some_and(is_function_name) {
                    continue;
                }
                match fs::rename(entry.path(), self.disk.functions.join(&name)) {
                    Ok(()) => moved += 1,
                    Err(e) => tracing::warn!(error = %e, "could not keep a compiled function"),
                }
            }
        }
        if let Some((staged, destination)) = &self.artifact {
            match fs::rename(staged, destination) {
                Ok(()) => moved += 1,
                Err(e) => {
                    tracing::warn!(path = %destination.display(), error = %e, "could not cache a compiled plugin")
                }
            }
        }
        let disk = self.disk.clone();
        drop(self);
        if moved > 0 {
            disk.sweep();
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a staging folder");
        }
    }
}

/// One file of the cache.
struct Entry {
    path: PathBuf,
    bytes: u64,
    used: SystemTime,
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Swept {
    removed_files: u64,
    removed_bytes: u64,
    kept_files: u64,
    kept_bytes: u64,
}

impl Disk {
    /// Removes staging folders nobody owns, files unused for longer than
    /// the age, then the least recently used files until the cache is
    /// under its size.
    fn sweep(&self) -> Swept {
        let started = std::time::Instant::now();
        self.sweep_staging();
        let mut entries = Vec::new();
        collect(&self.functions, is_function_name, &mut entries);
        if let Ok(dirs) = fs::read_dir(&self.root) {
            for dir in dirs.flatten() {
                let name = dir.file_name();
                if name.to_str().is_some_and(is_engine_dir_name) {
                    collect(&dir.path(), is_artifact_name, &mut entries);
                }
            }
        }
        let oldest = SystemTime::now().checked_sub(self.max_age);
        entries.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.path.cmp(&b.path)));
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        let mut swept = Swept::default();
        for entry in entries {
            let expired = oldest.is_some_and(|oldest| entry.used < oldest);
            if expired || total > self.max_bytes {
                total -= entry.bytes;
                match fs::remove_file(&entry.path) {
                    Ok(()) => {
                        swept.removed_files += 1;
                        swept.removed_bytes += entry.bytes;
                    }
                    // Removed by another sweep.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %entry.path.display(), error = %e, "could not evict from the cache")
                    }
                }
            } else {
                swept.kept_files += 1;
                swept.kept_bytes += entry.bytes;
            }
        }
        let ms = started.elapsed().as_millis() as u64;
        if swept.removed_files > 0 {
            tracing::info!(
                removed_files = swept.removed_files,
                removed_bytes = swept.removed_bytes,
                kept_files = swept.kept_files,
                kept_bytes = swept.kept_bytes,
                ms,
                "evicted compiled code from the cache"
            );
        } else {
            tracing::debug!(
                files = swept.kept_files,
                bytes = swept.kept_bytes,
                ms,
                "swept the compile cache"
            );
        }
        swept
    }

    /// Removes the staging folders whose owner is gone: their lock is free
    /// (a lock dies with its process) and they have not changed for a while
    /// (a folder is locked right after it is made).
    fn sweep_staging(&self) {
        let Ok(dirs) = fs::read_dir(&self.staging) else {
            return;
        };
        for dir in dirs.flatten() {
            let path = dir.path();
            let recent = dir
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at.elapsed().is_ok_and(|age| age < STAGING_GRACE));
            if recent {
                continue;
            }
            let owned = match fs::File::open(path.join("lock")) {
                Ok(lock) => match lock.try_lock() {
                    Ok(()) => false,
                    Err(fs::TryLockError::WouldBlock) => true,
                    Err(fs::TryLockError::Error(_)) => false,
                },
                Err(_) => false,
            };
            if !owned && let Err(e) = fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove a stale staging folder");
            }
        }
    }
}

/// Adds the files of `dir` named as `ours` says to `entries`.
fn collect(dir: &Path, ours: fn(&str) -> bool, entries: &mut Vec<Entry>) {
    let Ok(files) = fs::read_dir(dir) else {
        return;
    };
    for file in files.flatten() {
        if !file.file_name().to_str().is_some_and(ours) {
            continue;
        }
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        entries.push(Entry {
            path: file.path(),
            bytes: meta.len(),
            used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `<sha256>`, or `<sha256>.tmp<pid>` left by an interrupted write.
fn is_function_name(name: &str) -> bool {
    match name.split_once('.') {
        None => name.len() == 64 && is_hex(name),
        Some((sum, tmp)) => sum.len() == 64 && is_hex(sum) && is_tmp(tmp),
    }
}

/// `<digest>.cwasm`, or `<digest>.tmp<pid>` left by an interrupted write.
fn is_artifact_name(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(digest, ext)| digest.len() == 64 && is_hex(digest) && (ext == "cwasm" || is_tmp(ext)))
}

fn is_tmp(ext: &str) -> bool {
    ext.strip_prefix("tmp")
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// The 16 hex digits of an engine's compatibility hash.
fn is_engine_dir_name(name: &str) -> bool {
    name.len() == 16 && is_hex(name)
}

/// Reads a file and marks it used now (its modification time: access
/// times are often not kept).
fn read_touched(path: &Path) -> Option<Vec<u8>> {
    let mut file = fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let _ = file.set_modified(SystemTime::now());
    Some(bytes)
}

/// Cranelift's incremental compilation cache for one compile: one
/// checksummed file per compiled function, named by the SHA-256 of its key
/// (which covers the function's code, the compiler's version and its
/// settings). Reads the shared folder, then the compile's own; writes only
/// to its own.
#[derive(Debug)]
pub struct FunctionCache {
    dirs: FunctionDirs,
}

impl FunctionCache {
    pub fn new(dirs: FunctionDirs) -> Self {
        FunctionCache { dirs }
    }

    fn name(key: &[u8]) -> String {
        hex::encode(Sha256::digest(key))
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let name = Self::name(key);
        let stored =
            read_touched(&self.dirs.shared.join(&name)).or_else(|| fs::read(self.dirs.staged.join(&name)).ok())?;
        let function = checked(&stored)?.to_vec();
        Some(function.into())
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        // Not synced: thousands of functions per component, and a torn
        // file fails its checksum, so the function is compiled again.
        store(&self.dirs.staged.join(Self::name(key)), &value, false).is_ok()
    }
}

fn checked(stored: &[u8]) -> Option<&[u8]> {
    let (sum, artifact) = stored.split_at_checked(32)?;
    (Sha256::digest(artifact).as_slice() == sum).then_some(artifact)
}

/// Writes atomically: a reader sees the whole file or none; `sync` waits
/// until it is on disk.
fn store(path: &Path, artifact: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&Sha256::digest(artifact))?;
    file.write_all(artifact)?;
    if sync {
        file.sync_all()?;
    }
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests;
