//! New plugin folders (`robohost plugin new`): for the `robot` world the
//! same greeting robot in each language, for the `trigger` world the same
//! "form submitted" trigger; with a package manifest, the WIT it is built
//! against (for the languages that generate bindings from it) and test
//! cases, so a new plugin builds, passes its tests and packs before its
//! author changes a line. The files live in `scaffolds/WORLD/`.

use std::path::Path;

use crate::{Error, Language, World, io_error};

/// The WIT the host runs, written into a new plugin's `wit/` (and beside
/// the unpacked Rust SDK, [`crate::sdk`]).
pub(crate) const WIT: [(&str, &str); 4] = [
    ("host.wit", include_str!("../../wit/since_v0.1.0/host.wit")),
    ("robot.wit", include_str!("../../wit/since_v0.1.0/robot.wit")),
    ("trigger.wit", include_str!("../../wit/since_v0.1.0/trigger.wit")),
    ("types.wit", include_str!("../../wit/since_v0.1.0/types.wit")),
];

/// The WIT version of [`WIT`].
pub const WIT_VERSION: &str = "0.1.0";

/// Each language's files for `world`, by path in the new folder.
fn sources(language: Language, world: World) -> &'static [(&'static str, &'static str)] {
    match (world, language) {
        (World::Robot, Language::Rust) => &[
            ("Cargo.toml", include_str!("../scaffolds/robot/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../scaffolds/robot/rust/src/lib.rs")),
        ],
        (World::Robot, Language::Python) => &[("app.py", include_str!("../scaffolds/robot/python/app.py"))],
        (World::Robot, Language::Js) => &[("robot.js", include_str!("../scaffolds/robot/js/robot.js"))],
        (World::Robot, Language::C) => &[("robot.c", include_str!("../scaffolds/robot/c/robot.c"))],
        (World::Trigger, Language::Rust) => &[
            ("Cargo.toml", include_str!("../scaffolds/trigger/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../scaffolds/trigger/rust/src/lib.rs")),
        ],
        (World::Trigger, Language::Python) => &[("app.py", include_str!("../scaffolds/trigger/python/app.py"))],
        (World::Trigger, Language::Js) => &[("trigger.js", include_str!("../scaffolds/trigger/js/trigger.js"))],
        (World::Trigger, Language::C) => &[("trigger.c", include_str!("../scaffolds/trigger/c/trigger.c"))],
    }
}

/// Each world's test cases, by path in the new folder.
fn tests(world: World) -> &'static [(&'static str, &'static str)] {
    match world {
        World::Robot => &[(
            "tests/greets.json",
            include_str!("../scaffolds/robot/tests/greets.json"),
        )],
        World::Trigger => &[
            (
                "tests/submitted.json",
                include_str!("../scaffolds/trigger/tests/submitted.json"),
            ),
            (
                "tests/no-email.json",
                include_str!("../scaffolds/trigger/tests/no-email.json"),
            ),
        ],
    }
}

const ROBOT_MANIFEST: &str = r#"# The package manifest. `robohost plugin pack` adds the sha256 of every file
# and packs it with the component `robohost plugin build` makes of this folder.
[package]
name = "{{name}}"
version = "0.1.0"
publisher = "{{publisher}}"
description = "Writes a greeting with the entity's title to a field"
wit = "{{wit}}"

# What the admin approves at install: the robot's capabilities, and the
# entity kinds and fields they reach.
[capabilities]
host = ["set-fields"]
write = ["lead", "deal", "contact", "company"]
fields = ["UF_GREETING"]

[[robots]]
component = "{{name}}.wasm"
codes = ["{{code}}"]
"#;

const TRIGGER_MANIFEST: &str = r#"# The package manifest. `robohost plugin pack` adds the sha256 of every file
# and packs it with the component `robohost plugin build` makes of this folder.
[package]
name = "{{name}}"
version = "0.1.0"
publisher = "{{publisher}}"
description = "Fires a trigger for the contact who submitted a form on the site"
wit = "{{wit}}"

# The trigger only logs, which needs no capability. One that keeps state
# with `kv` requests it for the admin to approve:
# [capabilities]
# host = ["kv-store"]

[[triggers]]
component = "{{name}}.wasm"
codes = ["{{code}}"]
"#;

const GITIGNORE: &str = "/build\n/target\n__pycache__/\n";

/// What a new plugin is called, who publishes it, and what it is.
pub struct NewPlugin<'a> {
    /// The package name: lowercase letters, digits, `-` and `_`.
    pub name: &'a str,
    pub publisher: &'a str,
    pub language: Language,
    /// A robot, or a trigger plugin.
    pub world: World,
    /// The Rust SDK's folder, for a Rust plugin's `Cargo.toml` (the other
    /// languages' plugins ignore it): usually [`crate::sdk::unpack`]'s.
    pub sdk: &'a Path,
}

impl NewPlugin<'_> {
    /// The robot's (or trigger's) code: the name with `-` as `_`.
    pub fn code(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Writes the plugin into `dir`, which must not exist yet.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if self.name.is_empty()
            || !self.name.chars().all(name_ok)
            || !self.name.starts_with(|c: char| c.is_ascii_lowercase())
        {
            return Err(Error::BadName(self.name.to_owned()));
        }
        if dir.exists() {
            return Err(Error::Exists(dir.to_owned()));
        }
        let fill = |text: &str| {
            text.replace("{{name}}", self.name)
                .replace("{{code}}", &self.code())
                .replace("{{publisher}}", self.publisher)
                .replace("{{wit}}", WIT_VERSION)
                .replace("{{sdk}}", &self.sdk.display().to_string())
        };
        let manifest = match self.world {
            World::Robot => ROBOT_MANIFEST,
            World::Trigger => TRIGGER_MANIFEST,
        };
        let mut files: Vec<(String, String)> = vec![
            ("robohost.toml".into(), fill(manifest)),
            (".gitignore".into(), GITIGNORE.to_owned()),
        ];
        files.extend(
            (sources(self.language, self.world).iter())
                .chain(tests(self.world))
                .map(|(path, text)| ((*path).to_owned(), fill(text))),
        );
        if self.language != Language::Rust {
            files.extend(
                WIT.iter()
                    .map(|(file, text)| (format!("wit/{file}"), (*text).to_owned())),
            );
        }
        for (path, text) in files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_error(parent))?;
            }
            std::fs::write(&path, text).map_err(io_error(&path))?;
        }
        Ok(())
    }
}

/// The language of the plugin in `dir`, from the files it holds.
pub fn detect(dir: &Path) -> Result<Language, Error> {
    Language::ALL
        .into_iter()
        .find(|language| language.is_plugin_dir(dir))
        .ok_or_else(|| Error::NoLanguage(dir.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_plugin_holds_its_manifest_sources_wit_and_tests() {
        let root = std::env::temp_dir().join(format!("robohost-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for world in World::ALL {
            for language in Language::ALL {
                let dir = root.join(world.name()).join(language.name());
                let new = NewPlugin {
                    name: "hello-plugin",
                    publisher: "acme",
                    language,
                    world,
                    sdk: Path::new("/sdk"),
                };
                new.write(&dir).unwrap();
                assert_eq!(detect(&dir).unwrap(), language);
                let manifest = std::fs::read_to_string(dir.join("robohost.toml")).unwrap();
                assert!(manifest.contains("name = \"hello-plugin\""), "{manifest}");
                assert!(
                    manifest.contains(&format!(
                        "[[{world}s]]\ncomponent = \"hello-plugin.wasm\"\ncodes = [\"hello_plugin\"]"
                    )),
                    "{manifest}"
                );
                assert_eq!(dir.join("wit/types.wit").is_file(), language != Language::Rust);
                for (path, _) in tests(world) {
                    let case = std::fs::read_to_string(dir.join(path)).unwrap();
                    assert!(!case.contains("{{"), "{path} is filled in: {case}");
                }
                for (path, _) in sources(language, world) {
                    let source = std::fs::read_to_string(dir.join(path)).unwrap();
                    assert!(!source.contains("{{"), "{path} is filled in");
                }
                let again = new.write(&dir).unwrap_err().to_string();
                assert!(again.contains("already exists"), "{again}");
            }
        }
        let bad = NewPlugin {
            name: "Hello",
            publisher: "acme",
            language: Language::C,
            world: World::Robot,
            sdk: Path::new("/sdk"),
        };
        assert!(
            bad.write(&root.join("bad"))
                .unwrap_err()
                .to_string()
                .contains("`Hello` is not a plugin name")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
