//! Builds the standard robots (`plugins/standard`) for wasm32-wasip2, so the
//! host ships them inside its binary and installs them by default.

#[path = "../plugins/build_guests.rs"]
mod build_guests;

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ is inside the workspace");
    for dir in ["plugins/standard", "plugins/build_guests.rs", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let built = build_guests::build(root, &["standard"]);
    println!(
        "cargo:rustc-env=ROBOHOST_STANDARD_WASM={}",
        built.join("standard.wasm").display()
    );
}
