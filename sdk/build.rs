//! Writes `$OUT_DIR/wit_dir.rs`: the macro `__with_wit_dir!` that hands the
//! absolute path of the contract's WIT folder to another macro. The export
//! macros generate their world in the plugin crate, where wit-bindgen reads
//! paths relative to the plugin, not to the SDK.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let wit = manifest_dir.join("../wit/since_v0.1.0");
    let wit = std::fs::canonicalize(&wit).unwrap_or_else(|e| panic!("the contract at {}: {e}", wit.display()));
    let wit = wit
        .to_str()
        .unwrap_or_else(|| panic!("the contract's path {} is not UTF-8", wit.display()));
    // `{:?}` writes a Rust string literal: quoted, with escapes.
    let source = format!(
        "/// Calls the macro named by the tokens given with the absolute path of the\n\
         /// contract's WIT folder, as a string literal.\n\
         #[doc(hidden)]\n\
         #[macro_export]\n\
         macro_rules! __with_wit_dir {{\n    ($($macro:tt)*) => {{ $($macro)*!({wit:?}); }};\n}}\n"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("wit_dir.rs");
    std::fs::write(&out, source).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    println!("cargo:rerun-if-changed=build.rs");
}
