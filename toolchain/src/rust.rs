//! Rust guests: `cargo build --release --target wasm32-wasip2`, which writes
//! a component directly. Needs the `wasm32-wasip2` target, added with rustup
//! when missing. The calling build's flags (`RUSTFLAGS` and the like) are
//! not passed on: they are the host's, not the guest's.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, io_error, run};

/// The target guests are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds the `packages` of the cargo workspace `root/plugins` (all of it
/// when empty) and returns the folder holding the components,
/// `<target>/plugins/wasm32-wasip2/release`.
///
/// For build scripts: `<target>` is the calling build's target folder (from
/// `OUT_DIR`), and the guests get their own folder in it, so the two cargo
/// runs never wait on each other's lock. `ROBOHOST_PLUGINS_TARGET` names
/// another folder, so several checkouts sharing one target folder do not
/// overwrite each other's components.
pub fn build_workspace(root: &Path, packages: &[&str]) -> Result<PathBuf, Error> {
    println!("cargo:rerun-if-env-changed=ROBOHOST_PLUGINS_TARGET");
    let target_dir = match std::env::var_os("ROBOHOST_PLUGINS_TARGET") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("build_workspace runs in a build script"));
            // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
            out_dir
                .ancestors()
                .nth(4)
                .expect("OUT_DIR is deep enough")
                .join("plugins")
        }
    };
    ensure_target()?;
    let mut command = cargo();
    command.args(["build", "--release", "--target", TARGET]);
    for package in packages {
        command.args(["-p", package]);
    }
    command
        .arg("--manifest-path")
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    run("building the plugins in plugins/ for wasm32-wasip2", &mut command)?;
    Ok(target_dir.join(TARGET).join("release"))
}

/// Builds the cargo project in `dir` (a package, alone or in a workspace)
/// into its own target folder and copies its library's component to
/// `out_wasm`.
pub(crate) fn build(dir: &Path, out_wasm: &Path) -> Result<(), Error> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Error::NotAPlugin {
            dir: dir.to_owned(),
            language: crate::Language::Rust,
            needs: "Cargo.toml",
        });
    }
    ensure_target()?;
    let mut command = cargo();
    command
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        // The project's own target folder, not the calling build's (whose
        // lock that build holds).
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    let stdout = run(&format!("building {} for {TARGET}", dir.display()), &mut command)?;
    let built = cdylib(&stdout, &manifest).ok_or_else(|| Error::NoCdylib { dir: dir.to_owned() })?;
    std::fs::copy(&built, out_wasm).map_err(io_error(out_wasm))?;
    Ok(())
}

/// The `.wasm` cargo's JSON messages say it built for the cdylib of the
/// package of `manifest`.
fn cdylib(messages: &[u8], manifest: &Path) -> Option<PathBuf> {
    let manifest = manifest.canonicalize().ok()?;
    let mut found = None;
    for line in messages.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let ours = message["manifest_path"]
            .as_str()
            .is_some_and(|path| Path::new(path) == manifest);
        let is_cdylib = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib"));
        if message["reason"] != "compiler-artifact" || !ours || !is_cdylib {
            continue;
        }
        let files = message["filenames"].as_array()?;
        found = files
            .iter()
            .filter_map(|file| file.as_str())
            .find(|file| file.ends_with(".wasm"))
            .map(PathBuf::from);
    }
    found
}

/// `cargo` (the one running the calling build, if any), without the
/// calling build's flags and target.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    command
}

/// Adds the wasm32-wasip2 target with rustup when it is missing. Without
/// rustup the toolchain must already have it; cargo says so if it does not.
fn ensure_target() -> Result<(), Error> {
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        return Ok(());
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|line| line.trim() == TARGET)
    {
        return Ok(());
    }
    run(
        &format!("`rustup target add {TARGET}`"),
        Command::new("rustup").args(["target", "add", TARGET]),
    )?;
    Ok(())
}
