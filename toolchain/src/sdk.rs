//! The Rust SDK a new Rust plugin depends on, carried in the binary: its
//! source and the WIT it is built from, unpacked on first use into a
//! versioned folder of the cache, so `robohost plugin new --lang rust` works
//! for someone who has only the `robohost` binary.
//!
//! The folder is `<cache>/sdk-<version>-<hash>/`: `<cache>` is
//! `$ROBOHOST_CACHE`, else `$XDG_CACHE_HOME/robohost`, else
//! `$HOME/.cache/robohost`; `<version>` the SDK's, and `<hash>` the first 12
//! hex digits of the sha256 of the files, so a binary carrying other sources
//! never reuses another's folder. It holds `sdk/` (the crate) and
//! `wit/since_v0.1.0/`, where the SDK's build script finds the contract
//! (`../wit/since_v0.1.0` from the crate's folder). The folder is written
//! under another name and renamed into place once complete, so a crash or
//! two runs at once never leave half an SDK.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::scaffold::WIT;
use crate::{Error, absolute};

/// The SDK's files, by path in the unpacked folder. `Cargo.lock` is left
/// out: cargo reads only the lock file of the plugin depending on the SDK.
const SDK: [(&str, &str); 12] = [
    ("sdk/Cargo.toml", include_str!("../../sdk/Cargo.toml")),
    ("sdk/README.md", include_str!("../../sdk/README.md")),
    ("sdk/build.rs", include_str!("../../sdk/build.rs")),
    ("sdk/src/catalog.rs", include_str!("../../sdk/src/catalog.rs")),
    ("sdk/src/context.rs", include_str!("../../sdk/src/context.rs")),
    ("sdk/src/decimal.rs", include_str!("../../sdk/src/decimal.rs")),
    ("sdk/src/effects.rs", include_str!("../../sdk/src/effects.rs")),
    ("sdk/src/failure.rs", include_str!("../../sdk/src/failure.rs")),
    ("sdk/src/lib.rs", include_str!("../../sdk/src/lib.rs")),
    ("sdk/src/log.rs", include_str!("../../sdk/src/log.rs")),
    ("sdk/src/trigger.rs", include_str!("../../sdk/src/trigger.rs")),
    ("sdk/src/values.rs", include_str!("../../sdk/src/values.rs")),
];

/// Where the WIT goes in the unpacked folder: where `sdk/build.rs` and the
/// SDK's bindings look for it.
const WIT_DIR: &str = "wit/since_v0.1.0";

/// The file a complete folder holds, written last.
const COMPLETE: &str = ".complete";

/// Every file unpacked, by path in the folder: the SDK's, then the WIT.
fn files() -> impl Iterator<Item = (String, &'static str)> {
    let (sdk, wit): (&'static [_], &'static [_]) = (&SDK, &WIT);
    let sdk = sdk.iter().map(|(path, text)| ((*path).to_owned(), *text));
    sdk.chain(wit.iter().map(|(file, text)| (format!("{WIT_DIR}/{file}"), *text)))
}

/// The SDK's version, from its `Cargo.toml`.
pub fn version() -> &'static str {
    let (_, manifest) = SDK[0];
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("version = \"")?.strip_suffix('"'))
        .expect("the SDK's Cargo.toml names its version")
}

/// The folder's name: `sdk-<version>-<first 12 hex digits of the files' sha256>`.
fn folder_name() -> String {
    let mut hash = Sha256::new();
    for (path, text) in files() {
        // The path and the length before the text: no two sets of files
        // hash alike.
        hash.update(path.as_bytes());
        hash.update(b"\0");
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text);
    }
    let hex = hex::encode(hash.finalize());
    format!("sdk-{}-{}", version(), &hex[..12])
}

/// The cache folder, from the environment variables `var` reads:
/// `$ROBOHOST_CACHE`, else `$XDG_CACHE_HOME/robohost`, else
/// `$HOME/.cache/robohost`. An empty variable counts as unset, and so does a
/// relative `XDG_CACHE_HOME` (as the XDG specification says).
fn cache_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    set("ROBOHOST_CACHE")
        .or_else(|| {
            set("XDG_CACHE_HOME")
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join("robohost"))
        })
        .or_else(|| set("HOME").map(|home| home.join(".cache/robohost")))
}

/// Unpacks the SDK into its versioned folder of the cache, unless that
/// folder is complete already, and returns the absolute path of the SDK's
/// crate in it (`<cache>/sdk-<version>-<hash>/sdk`), for a plugin's
/// `Cargo.toml`.
pub fn unpack() -> Result<PathBuf, Error> {
    let cache = cache_dir(|name| std::env::var_os(name)).ok_or(Error::NoCache)?;
    unpack_into(&absolute(&cache))
}

/// [`unpack`] into the cache folder `cache`.
fn unpack_into(cache: &Path) -> Result<PathBuf, Error> {
    let name = folder_name();
    let dir = cache.join(&name);
    if !dir.join(COMPLETE).is_file() {
        // A folder of this attempt's own beside the final one, so renaming
        // it into place is one step.
        static ATTEMPT: AtomicU64 = AtomicU64::new(0);
        let attempt = ATTEMPT.fetch_add(1, Ordering::Relaxed);
        let partial = cache.join(format!(".{name}.{}-{attempt}", std::process::id()));
        let placed = write_all(&partial).and_then(|()| place(&partial, &dir));
        // Left only when writing failed, or another run placed its folder first.
        let _ = std::fs::remove_dir_all(&partial);
        placed.map_err(|error| Error::Sdk {
            dir: dir.clone(),
            error,
        })?;
    }
    Ok(dir.join("sdk"))
}

/// Writes every file into `dir`, then the mark that it is complete.
fn write_all(dir: &Path) -> io::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    for (path, text) in files() {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("every file is in a folder"))?;
        std::fs::write(&path, text)?;
    }
    std::fs::write(dir.join(COMPLETE), "")
}

/// Renames the complete folder `partial` to `dir`. A complete `dir` there
/// already is another run's, made first: it is kept. An incomplete one
/// (which this code never leaves) is replaced.
fn place(partial: &Path, dir: &Path) -> io::Result<()> {
    let complete = || dir.join(COMPLETE).is_file();
    if std::fs::rename(partial, dir).is_ok() || complete() {
        return Ok(());
    }
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    match std::fs::rename(partial, dir) {
        Err(_) if complete() => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The relative paths of every file under `dir`.
    fn walk(dir: &Path, prefix: &str, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = format!("{prefix}{}", entry.file_name().to_str().unwrap());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{path}/"), found);
            } else {
                found.insert(path);
            }
        }
    }

    /// A fresh folder for one test.
    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("robohost-sdk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_source_of_the_sdk_and_the_contract_is_carried() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let carried: BTreeSet<String> = files().map(|(path, _)| path).collect();
        assert_eq!(carried.len(), SDK.len() + WIT.len(), "a file is listed twice");
        for folder in ["sdk/src", WIT_DIR] {
            let mut found = BTreeSet::new();
            walk(&root.join(folder), &format!("{folder}/"), &mut found);
            let missing: Vec<_> = found.difference(&carried).collect();
            assert!(missing.is_empty(), "add {missing:?} to `SDK` (or `WIT`)");
        }
        for (path, text) in files() {
            assert_eq!(std::fs::read_to_string(root.join(&path)).unwrap(), text, "{path}");
        }
    }

    #[test]
    fn the_version_is_the_sdks() {
        assert_eq!(version(), "0.1.0");
        let name = folder_name();
        let hash = name.strip_prefix("sdk-0.1.0-").unwrap();
        assert!(
            hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
    }

    /// The file names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        let names = std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name());
        names.map(|name| name.into_string().unwrap()).collect()
    }

    /// [`cache_dir`] with only the environment variables `vars`.
    fn env(vars: &[(&str, &str)]) -> Option<PathBuf> {
        cache_dir(|name| {
            let (_, value) = vars.iter().find(|(var, _)| *var == name)?;
            Some(OsString::from(value))
        })
    }

    #[test]
    fn the_cache_is_robohosts_then_xdgs_then_homes() {
        let all = [("ROBOHOST_CACHE", "/r"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(env(&all), Some("/r".into()));
        assert_eq!(env(&all[1..]), Some("/x/robohost".into()));
        assert_eq!(env(&all[2..]), Some("/h/.cache/robohost".into()));
        assert_eq!(
            env(&[("ROBOHOST_CACHE", ""), ("XDG_CACHE_HOME", "x"), ("HOME", "/h")]),
            Some("/h/.cache/robohost".into())
        );
        assert_eq!(env(&[]), None);
    }

    #[test]
    fn unpacking_writes_a_versioned_folder_once() {
        let cache = temp("unpack");
        let sdk = unpack_into(&cache).unwrap();
        let dir = cache.join(folder_name());
        assert_eq!(sdk, dir.join("sdk"));
        for (path, text) in files() {
            assert_eq!(std::fs::read_to_string(dir.join(&path)).unwrap(), text, "{path}");
        }
        // Where sdk/build.rs looks for the contract.
        let wit = std::fs::canonicalize(sdk.join("../wit/since_v0.1.0")).unwrap();
        assert!(wit.join("robot.wit").is_file() && wit.join("trigger.wit").is_file());

        // A complete folder is kept as it is; nothing else is left.
        std::fs::write(sdk.join("kept"), "").unwrap();
        assert_eq!(unpack_into(&cache).unwrap(), sdk);
        assert!(sdk.join("kept").is_file());
        assert_eq!(names(&cache), [folder_name()]);

        // An incomplete one is replaced.
        std::fs::remove_file(dir.join(COMPLETE)).unwrap();
        std::fs::remove_file(sdk.join("src/lib.rs")).unwrap();
        assert_eq!(unpack_into(&cache).unwrap(), sdk);
        assert!(sdk.join("src/lib.rs").is_file() && !sdk.join("kept").exists());
        std::fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn runs_at_once_unpack_one_folder() {
        let cache = temp("race");
        let sdks: Vec<PathBuf> = std::thread::scope(|scope| {
            let cache = &cache;
            let runs: Vec<_> = (0..4)
                .map(|_| scope.spawn(move || unpack_into(cache).unwrap()))
                .collect();
            runs.into_iter().map(|run| run.join().unwrap()).collect()
        });
        assert!(sdks.iter().all(|sdk| *sdk == cache.join(folder_name()).join("sdk")));
        assert_eq!(names(&cache), [folder_name()]);
        assert!(cache.join(folder_name()).join(COMPLETE).is_file());
        std::fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn a_cache_that_cannot_be_written_is_named() {
        let cache = temp("unwritable");
        let file = cache.join("file");
        std::fs::write(&file, "").unwrap();
        let error = unpack_into(&file).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "could not unpack the Rust SDK into {}: ",
                file.join(folder_name()).display()
            )),
            "{error}"
        );
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
