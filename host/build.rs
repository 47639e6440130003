//! Builds the standard robots (`plugins/standard`) for wasm32-wasip2 with
//! robohost-toolchain, so the host ships them inside its binary and installs
//! them by default.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ is inside the workspace");
    for dir in ["plugins/standard", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let built = robohost_toolchain::rust::build_workspace(root, &["standard"]).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "cargo:rustc-env=ROBOHOST_STANDARD_WASM={}",
        built.join("standard.wasm").display()
    );
}
