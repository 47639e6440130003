//! Builds the plugins in `../plugins` for wasm32-wasip2, so the tests and
//! benchmarks run real compiled components. Installs the target with rustup
//! when it is missing. The plugins build in their own target folder, beside
//! this build's, so the two cargo runs never wait on each other's lock.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("tests/ is inside the workspace");
    for dir in ["plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is deep enough")
        .join("plugins");

    ensure_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
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
    let plugins = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=ROBOHOST_PLUGINS={}", plugins.display());

    // The Python and JavaScript robots, with componentize-py and -js.
    for (language, env) in [("python", "ROBOHOST_PYTHON_PLUGINS"), ("js", "ROBOHOST_JS_PLUGINS")] {
        let out = target_dir.join(language);
        let script = root.join(format!("plugins/{language}/build.sh"));
        let status = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            status.success(),
            "building the {language} robots failed; the errors are above"
        );
        println!("cargo:rustc-env={env}={}", out.display());
    }
}

fn ensure_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) => {}
        Ok(_) => {
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()
                .expect("running rustup");
            assert!(status.success(), "`rustup target add {TARGET}` failed");
        }
        // Without rustup the toolchain must already have the target; the
        // build below says so if it does not.
        Err(_) => {}
    }
}
