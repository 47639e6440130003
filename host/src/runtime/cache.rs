//! Compiled plugins on disk, keyed by content digest and engine, and
//! compiled functions, keyed by what Cranelift compiled them from.
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

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::SandboxConfig;
use super::compile::{CompileStats, Slots};
use crate::domain::Digest;

pub struct ArtifactCache {
    /// `<cache-dir>/<engine hash>`; `None` compiles in memory only.
    dir: Option<PathBuf>,
    /// Compiles running at once, capped by `compile-concurrency`.
    slots: Slots,
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
    pub fn new(engine: &Engine, config: &SandboxConfig) -> std::io::Result<Self> {
        let slots = Slots::new(config.compile_concurrency);
        let Some(root) = &config.cache_dir else {
            return Ok(ArtifactCache { dir: None, slots });
        };
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(&hex::encode(hasher.0.finalize())[..16]);
        fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
        }
        Ok(ArtifactCache { dir: Some(dir), slots })
    }

    /// The compiled component, from the cache or compiled now by
    /// `compile` (the artifact of `wasm` for `engine`) and stored.
    pub fn component(
        &self,
        engine: &Engine,
        digest: Digest,
        compile: impl FnOnce() -> wasmtime::Result<Vec<u8>>,
    ) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            let artifact = self.slots.run(compile)?;
            // SAFETY: compiled just now by this engine or this host's own
            // compile worker, whose engine is configured the same;
            // `deserialize` checks that the two agree.
            return unsafe { Component::deserialize(engine, &artifact) };
        };
        let path = dir.join(format!("{}.cwasm", digest.hex()));
        if let Ok(stored) = fs::read(&path) {
            if let Some(artifact) = checked(&stored) {
                // SAFETY: the artifact was produced by `precompile_component`
                // of an engine with this compatibility hash (the folder) and is
                // unchanged since (the checksum); nothing else writes here.
                return unsafe { Component::deserialize(engine, artifact) };
            }
            tracing::warn!(path = %path.display(), "compiled plugin failed its checksum; compiling again");
        }
        let artifact = self.slots.run(compile)?;
        if let Err(e) = store(&path, &artifact, true) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache a compiled plugin");
        }
        // SAFETY: produced just now by this engine or this host's compile
        // worker (see above).
        unsafe { Component::deserialize(engine, &artifact) }
    }

    /// Compiles so far, and the most at once.
    pub fn compile_stats(&self) -> CompileStats {
        self.slots.stats()
    }
}

/// Cranelift's incremental compilation cache: one checksummed file per
/// compiled function, named by the SHA-256 of its key (which covers the
/// function's code, the compiler's version and its settings).
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
}

impl FunctionCache {
    /// The function cache under `root`, the `cache-dir`.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        let dir = root.join("functions");
        fs::create_dir_all(&dir)?;
        Ok(FunctionCache { dir })
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        self.dir.join(hex::encode(Sha256::digest(key)))
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let stored = fs::read(self.path(key)).ok()?;
        let function = checked(&stored)?.to_vec();
        Some(function.into())
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        // Not synced: thousands of functions per component, and a torn
        // file fails its checksum, so the function is compiled again.
        store(&self.path(key), &value, false).is_ok()
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
