//! The C example robot builds into a component that imports only robohost's
//! interfaces: no WASI, so it links on any host.

use std::path::Path;

use robohost_toolchain::{Language, build};
use wit_component::DecodedWasm;
use wit_parser::WorldItem;

#[test]
fn the_c_example_robot_imports_nothing_but_robohost() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("toolchain/ is in the repo");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c/rf_segmentation.wasm");
    build(
        Language::C,
        &root.join("plugins/c/rf_segmentation"),
        &root.join("wit/since_v0.1.0"),
        "robot",
        &out,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let wasm = std::fs::read(&out).unwrap();
    let DecodedWasm::Component(resolve, world) = wit_component::decode(&wasm).unwrap() else {
        panic!("not a component");
    };
    let world = &resolve.worlds[world];
    let interfaces: Vec<String> = world
        .imports
        .iter()
        .filter(|(_, item)| matches!(item, WorldItem::Interface { .. }))
        .map(|(key, _)| resolve.name_world_key(key))
        .collect();
    assert!(
        interfaces.iter().all(|name| name.starts_with("robohost:robot/")),
        "{interfaces:?}"
    );
    let exports: Vec<String> = world.exports.keys().map(|key| resolve.name_world_key(key)).collect();
    assert_eq!(exports, ["describe", "run"]);
}

#[test]
fn a_folder_without_sources_is_not_a_plugin() {
    let empty = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-plugin");
    std::fs::create_dir_all(&empty).unwrap();
    for (language, needs) in [
        (Language::C, ".c file"),
        (Language::Python, "app.py"),
        (Language::Js, "robot.js"),
        (Language::Rust, "Cargo.toml"),
    ] {
        assert!(!language.is_plugin_dir(&empty));
        let error = build(language, &empty, &empty, "robot", &empty.join("out.wasm")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not a {language} plugin folder: it has no {needs}",
                empty.display()
            )
        );
    }
}
