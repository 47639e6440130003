//! Builds the standard robots (`plugins/standard`) for wasm32-wasip2, so the
//! host ships them inside its binary and installs them by default. Installs
//! the target with rustup when it is missing. The plugin builds in its own
//! target folder beside this build's, so the two cargo runs never wait on
//! each other's lock.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ is inside the workspace");
    for dir in ["plugins/standard", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is deep enough")
        .join("plugins");

    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    if let Ok(out) = installed
        && !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET)
    {
        let status = Command::new("rustup")
            .args(["target", "add", TARGET])
            .status()
            .expect("running rustup");
        assert!(status.success(), "`rustup target add {TARGET}` failed");
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            "standard",
            "--manifest-path",
        ])
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The host build's flags are not the guest's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo to build the standard robots");
    assert!(
        status.success(),
        "building the standard robots in plugins/standard failed; the errors are above"
    );
    let wasm = target_dir.join(TARGET).join("release").join("standard.wasm");
    println!("cargo:rustc-env=ROBOHOST_STANDARD_WASM={}", wasm.display());
}
