//! Builds the plugins in `../plugins` for wasm32-wasip2 (with
//! `plugins/build_guests.rs`, shared with the host's build script) and the
//! Python and JavaScript example robots, so the tests and benchmarks run
//! real compiled components.

#[path = "../plugins/build_guests.rs"]
mod build_guests;

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("tests/ is inside the workspace");
    for dir in ["plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let plugins = build_guests::build(root, &[]);
    println!("cargo:rustc-env=ROBOHOST_PLUGINS={}", plugins.display());
    let target_dir = plugins
        .ancestors()
        .nth(2)
        .expect("<target>/plugins/wasm32-wasip2/release")
        .to_owned();

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
