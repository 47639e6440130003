//! Builds robohost guest components: one plugin folder, in any of the guest
//! languages robohost supports, into one component file for the `robot` or
//! `trigger` world ([`World`]), and new plugin folders to start from
//! ([`NewPlugin`]), a Rust one depending on the SDK this crate carries
//! ([`sdk::unpack`]).
//! The tests' and the host's build scripts use it, and so do
//! `robohost plugin new | build | test | pack`.
//!
//! What each language needs (installed on first use where possible):
//!
//! | language | folder holds | tools |
//! |---|---|---|
//! | [`Language::Rust`] | a cargo project whose lib is a `cdylib` | rustup's `wasm32-wasip2` target (added with rustup when missing) |
//! | [`Language::Python`] | `app.py` defining `class WitWorld` | Python 3 with venv; componentize-py 0.25.1 is installed into a cached venv |
//! | [`Language::Js`] | `robot.js` (or `trigger.js`, for the trigger world) exporting the world's functions | Node.js and npm; componentize-js 0.23 is installed into a cached npm folder |
//! | [`Language::C`] | `*.c` files including the generated `WORLD.h` | clang, lld, wasi-libc and compiler-rt for wasm32 (`apt-get install`ed when running as root) |
//!
//! The Python and JavaScript tools live in
//! `${ROBOHOST_CACHE:-$HOME/.cache/robohost}/wit-check`, shared with
//! `.ci/check-wit` under the same lock file, so one installs for both.
//! A Rust plugin brings its own bindings (the SDK or wit-bindgen), so the WIT
//! folder and world only matter to the other languages.

mod c;
mod js;
mod python;
pub mod rust;
mod scaffold;
pub mod sdk;

pub use scaffold::{NewPlugin, WIT_VERSION, detect};

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::str::FromStr;

/// A guest language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// A cargo project built for wasm32-wasip2.
    Rust,
    /// `app.py`, with componentize-py.
    Python,
    /// `robot.js` (`trigger.js` for a trigger), with componentize-js.
    Js,
    /// `*.c`, with wit-bindgen's C bindings, clang and the preview1 adapter.
    C,
}

impl Language {
    /// Every language.
    pub const ALL: [Language; 4] = [Language::Rust, Language::Python, Language::Js, Language::C];

    /// `rust`, `python`, `js` or `c`.
    pub const fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
        }
    }

    /// Whether `dir` looks like a plugin folder of this language: it holds
    /// `Cargo.toml`, `app.py`, `robot.js` or `trigger.js`, or a `.c` file.
    pub fn is_plugin_dir(self, dir: &Path) -> bool {
        match self {
            Language::Rust => dir.join("Cargo.toml").is_file(),
            Language::Python => dir.join(python::ENTRY).is_file(),
            Language::Js => World::ALL
                .iter()
                .any(|world| dir.join(js::entry(world.name())).is_file()),
            Language::C => c::sources(dir).is_ok_and(|sources| !sources.is_empty()),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Language {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        Language::ALL
            .into_iter()
            .find(|language| language.name() == name)
            .ok_or_else(|| Error::UnknownLanguage(name.to_owned()))
    }
}

/// A world of the contract a plugin's component is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum World {
    /// Robots: exports `describe` and `run`.
    Robot,
    /// Trigger plugins: exports `describe` and `handle`.
    Trigger,
}

impl World {
    /// Every world.
    pub const ALL: [World; 2] = [World::Robot, World::Trigger];

    /// `robot` or `trigger`, as the WIT names it.
    pub const fn name(self) -> &'static str {
        match self {
            World::Robot => "robot",
            World::Trigger => "trigger",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for World {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        World::ALL
            .into_iter()
            .find(|world| world.name() == name)
            .ok_or_else(|| Error::UnknownWorld(name.to_owned()))
    }
}

/// Why a plugin could not be built. Each message names what is missing or
/// what failed, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown guest language `{0}`: expected rust, python, js or c")]
    UnknownLanguage(String),
    #[error("unknown world `{0}`: expected robot or trigger")]
    UnknownWorld(String),
    #[error(
        "{} holds no plugin: expected Cargo.toml (Rust), app.py (Python), robot.js or trigger.js (JavaScript) or .c files (C)",
        .0.display()
    )]
    NoLanguage(PathBuf),
    #[error("`{0}` is not a plugin name: use lowercase letters, digits, `-` and `_`, starting with a letter")]
    BadName(String),
    #[error("{} already exists: choose another name or folder", .0.display())]
    Exists(PathBuf),
    #[error("{dir} is not a {language} plugin folder: it has no {needs}")]
    NotAPlugin {
        dir: PathBuf,
        language: Language,
        needs: &'static str,
    },
    #[error("no cache folder to unpack the Rust SDK into: set ROBOHOST_CACHE, XDG_CACHE_HOME or HOME")]
    NoCache,
    /// `error` is in the message and not a source, which anyhow's `{:#}`
    /// would print again after the advice.
    #[error(
        "could not unpack the Rust SDK into {}: {error}; set ROBOHOST_CACHE to a folder you can write",
        dir.display()
    )]
    Sdk { dir: PathBuf, error: io::Error },
    #[error("{tool} is not installed: {fix}")]
    Missing { tool: &'static str, fix: String },
    #[error("could not run `{command}`: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("{what} failed ({status}); its output ends with:\n{output}")]
    Failed {
        what: String,
        status: ExitStatus,
        output: String,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("generating C bindings for world `{world}` of {}: {message}", wit.display())]
    Bindings {
        wit: PathBuf,
        world: String,
        message: String,
    },
    #[error("making a component of {}: {message}", module.display())]
    Componentize { module: PathBuf, message: String },
    #[error(
        "building {} wrote no .wasm library: its Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`",
        dir.display()
    )]
    NoCdylib { dir: PathBuf },
}

/// Builds the plugin in `source_dir`, written in `language`, into the
/// component `out_wasm` for `world` of the WIT package in `wit_dir`
/// (creating `out_wasm`'s folder). Rust plugins bring their own bindings and
/// ignore `wit_dir` and `world`.
pub fn build(language: Language, source_dir: &Path, wit_dir: &Path, world: &str, out_wasm: &Path) -> Result<(), Error> {
    if let Some(parent) = out_wasm.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    match language {
        Language::Rust => rust::build(source_dir, out_wasm),
        Language::Python => python::build(source_dir, wit_dir, world, out_wasm),
        Language::Js => js::build(source_dir, wit_dir, world, out_wasm),
        Language::C => c::build(source_dir, wit_dir, world, out_wasm),
    }
}

/// The cache shared with `.ci/check-wit`:
/// `${ROBOHOST_CACHE:-$HOME/.cache/robohost}/wit-check`.
fn tool_cache() -> PathBuf {
    let root = match std::env::var_os("ROBOHOST_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/robohost"),
    };
    root.join("wit-check")
}

/// Holds the cache's lock (the file `.ci/check-wit` locks with `flock`)
/// until dropped: one installer at a time.
fn lock_cache(cache: &Path) -> Result<File, Error> {
    std::fs::create_dir_all(cache).map_err(io_error(cache))?;
    let path = cache.join(".lock");
    let file = File::create(&path).map_err(io_error(&path))?;
    file.lock().map_err(io_error(&path))?;
    Ok(file)
}

/// `path` made absolute, for tools run in another folder.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// How many lines of a failed tool's output an error keeps.
const OUTPUT_LINES: usize = 40;

/// Runs `command`, its output captured; an error names `what` failed and
/// holds the end of the output.
fn run(what: &str, command: &mut Command) -> Result<Vec<u8>, Error> {
    let output = command.output().map_err(|source| Error::Spawn {
        command: format!("{command:?}"),
        source,
    })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().collect();
    Err(Error::Failed {
        what: what.to_owned(),
        status: output.status,
        output: lines[lines.len().saturating_sub(OUTPUT_LINES)..].join("\n"),
    })
}

/// Whether `program --version` runs.
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_from_their_names() {
        for language in Language::ALL {
            assert_eq!(language.to_string().parse::<Language>().unwrap(), language);
        }
        let error = "go".parse::<Language>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown guest language `go`: expected rust, python, js or c"
        );
    }

    #[test]
    fn worlds_parse_from_their_names() {
        for world in World::ALL {
            assert_eq!(world.to_string().parse::<World>().unwrap(), world);
        }
        assert_eq!(
            "webhook".parse::<World>().unwrap_err().to_string(),
            "unknown world `webhook`: expected robot or trigger"
        );
    }
}
