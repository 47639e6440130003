//! Builds the plugins so the tests and benchmarks run real compiled
//! components, with robohost-toolchain: the Rust workspace `../plugins` for
//! wasm32-wasip2, and each robot folder of `plugins/python`, `plugins/js`
//! and `plugins/c` into `<target>/LANGUAGE/NAME.wasm`.

use std::path::{Path, PathBuf};

use robohost_toolchain::{Language, rust};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("tests/ is inside the workspace");
    for dir in ["plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let plugins = rust::build_workspace(root, &[]).unwrap_or_else(|e| panic!("{e}"));
    println!("cargo:rustc-env=ROBOHOST_PLUGINS={}", plugins.display());
    let target_dir = plugins
        .ancestors()
        .nth(2)
        .expect("<target>/plugins/wasm32-wasip2/release");

    let wit = root.join("wit/since_v0.1.0");
    for (language, env) in [
        (Language::Python, "ROBOHOST_PYTHON_PLUGINS"),
        (Language::Js, "ROBOHOST_JS_PLUGINS"),
        (Language::C, "ROBOHOST_C_PLUGINS"),
    ] {
        let out = target_dir.join(language.name());
        for dir in robot_folders(&root.join("plugins").join(language.name()), language) {
            let name = dir.file_name().expect("a folder name").to_string_lossy();
            robohost_toolchain::build(language, &dir, &wit, "robot", &out.join(format!("{name}.wasm")))
                .unwrap_or_else(|e| panic!("building the {language} robot {}: {e}", dir.display()));
        }
        println!("cargo:rustc-env={env}={}", out.display());
    }
}

/// The folders of `dir` holding a robot in `language`, sorted.
fn robot_folders(dir: &Path, language: Language) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut folders: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| language.is_plugin_dir(path))
        .collect();
    folders.sort();
    folders
}
