// Shared by host/build.rs and tests/build.rs (included with `#[path]`):
// builds plugins of the `plugins/` workspace for wasm32-wasip2 into their
// own target folder beside the calling build's, so the two cargo runs never
// wait on each other's lock. Installs the target with rustup when missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// The folder holding the built components: `<target>/plugins/wasm32-wasip2/release`.
/// Builds `packages` (all of the workspace when empty) first.
pub fn build(root: &Path, packages: &[&str]) -> PathBuf {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is deep enough")
        .join("plugins");
    ensure_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "--target", TARGET]);
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command
        .arg("--manifest-path")
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The host build's flags are not the guest's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins in plugins/ failed; the errors are above"
    );
    target_dir.join(TARGET).join("release")
}

fn ensure_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    // Without rustup the toolchain must already have the target; the build
    // says so if it does not.
    if let Ok(out) = installed
        && !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET)
    {
        let status = Command::new("rustup")
            .args(["target", "add", TARGET])
            .status()
            .expect("running rustup");
        assert!(status.success(), "`rustup target add {TARGET}` failed");
    }
}
