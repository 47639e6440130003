//! The C example robot, and the C trigger a new plugin starts from, build
//! into components of their worlds that import only robohost's interfaces:
//! no WASI, so they link on any host.

use std::path::Path;

use robohost_toolchain::{Language, NewPlugin, World, build};
use wit_component::DecodedWasm;
use wit_parser::WorldItem;

/// The interfaces the component at `wasm` imports and what it exports.
fn imports_and_exports(wasm: &Path) -> (Vec<String>, Vec<String>) {
    let wasm = std::fs::read(wasm).unwrap();
    let DecodedWasm::Component(resolve, world) = wit_component::decode(&wasm).unwrap() else {
        panic!("not a component");
    };
    let world = &resolve.worlds[world];
    let imports = world
        .imports
        .iter()
        .filter(|(_, item)| matches!(item, WorldItem::Interface { .. }))
        .map(|(key, _)| resolve.name_world_key(key))
        .collect();
    let exports = world.exports.keys().map(|key| resolve.name_world_key(key)).collect();
    (imports, exports)
}

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

    let (imports, exports) = imports_and_exports(&out);
    assert!(
        imports.iter().all(|name| name.starts_with("robohost:robot/")),
        "{imports:?}"
    );
    assert_eq!(exports, ["describe", "run"]);
}

#[test]
fn the_c_trigger_scaffold_builds_into_a_trigger_component() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-trigger/form-hook");
    let _ = std::fs::remove_dir_all(&dir);
    NewPlugin {
        name: "form-hook",
        publisher: "acme",
        language: Language::C,
        world: World::Trigger,
        sdk: Path::new("/sdk"),
    }
    .write(&dir)
    .unwrap();
    let out = dir.join("build/form-hook.wasm");
    build(Language::C, &dir, &dir.join("wit"), "trigger", &out).unwrap_or_else(|e| panic!("{e}"));

    let (mut imports, exports) = imports_and_exports(&out);
    imports.sort();
    assert_eq!(
        imports,
        [
            "robohost:robot/log@0.1.0",
            "robohost:robot/trigger-types@0.1.0",
            "robohost:robot/types@0.1.0"
        ]
    );
    assert_eq!(exports, ["describe", "handle"]);
}

#[test]
fn a_folder_without_sources_is_not_a_plugin() {
    let empty = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-plugin");
    std::fs::create_dir_all(&empty).unwrap();
    for (language, world, needs) in [
        (Language::C, "robot", ".c file"),
        (Language::Python, "robot", "app.py"),
        (Language::Js, "robot", "robot.js"),
        (Language::Js, "trigger", "trigger.js"),
        (Language::Rust, "robot", "Cargo.toml"),
    ] {
        assert!(!language.is_plugin_dir(&empty));
        let error = build(language, &empty, &empty, world, &empty.join("out.wasm")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not a {language} plugin folder: it has no {needs}",
                empty.display()
            )
        );
    }
}
