//! New plugin folders (`robohost plugin new`): the same greeting robot in
//! each language, a package manifest, the WIT it is built against (for the
//! languages that generate bindings from it) and a test case, so a new
//! plugin builds, passes its test and packs before its author changes a
//! line.

use std::path::Path;

use crate::{Error, Language, io_error};

/// The WIT the host runs, written into a new plugin's `wit/`.
const WIT: [(&str, &str); 4] = [
    ("host.wit", include_str!("../../wit/since_v0.1.0/host.wit")),
    ("robot.wit", include_str!("../../wit/since_v0.1.0/robot.wit")),
    ("trigger.wit", include_str!("../../wit/since_v0.1.0/trigger.wit")),
    ("types.wit", include_str!("../../wit/since_v0.1.0/types.wit")),
];

/// The WIT version of [`WIT`].
pub const WIT_VERSION: &str = "0.1.0";

/// Each language's files, by path in the new folder.
fn sources(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Rust => &[
            ("Cargo.toml", include_str!("../scaffolds/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../scaffolds/rust/src/lib.rs")),
        ],
        Language::Python => &[("app.py", include_str!("../scaffolds/python/app.py"))],
        Language::Js => &[("robot.js", include_str!("../scaffolds/js/robot.js"))],
        Language::C => &[("robot.c", include_str!("../scaffolds/c/robot.c"))],
    }
}

const MANIFEST: &str = r#"# The package manifest. `robohost plugin pack` adds the sha256 of every file
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

const TEST: &str = include_str!("../scaffolds/tests/greets.json");

const GITIGNORE: &str = "/build\n/target\n__pycache__/\n";

/// What a new plugin is called and who publishes it.
pub struct NewPlugin<'a> {
    /// The package name: lowercase letters, digits, `-` and `_`.
    pub name: &'a str,
    pub publisher: &'a str,
    pub language: Language,
    /// The Rust SDK's folder, for a Rust plugin's `Cargo.toml`.
    pub sdk: &'a Path,
}

impl NewPlugin<'_> {
    /// The robot's code: the name with `-` as `_`.
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
        let mut files: Vec<(String, String)> = vec![
            ("robohost.toml".into(), fill(MANIFEST)),
            ("tests/greets.json".into(), TEST.to_owned()),
            (".gitignore".into(), GITIGNORE.to_owned()),
        ];
        files.extend(
            sources(self.language)
                .iter()
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
    fn a_new_plugin_holds_its_manifest_sources_wit_and_test() {
        let root = std::env::temp_dir().join(format!("robohost-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for language in Language::ALL {
            let dir = root.join(language.name());
            let new = NewPlugin {
                name: "hello-robot",
                publisher: "acme",
                language,
                sdk: Path::new("/sdk"),
            };
            new.write(&dir).unwrap();
            assert_eq!(detect(&dir).unwrap(), language);
            let manifest = std::fs::read_to_string(dir.join("robohost.toml")).unwrap();
            assert!(manifest.contains("name = \"hello-robot\"") && manifest.contains("codes = [\"hello_robot\"]"));
            assert_eq!(dir.join("wit/types.wit").is_file(), language != Language::Rust);
            assert!(dir.join("tests/greets.json").is_file());
            let again = new.write(&dir).unwrap_err().to_string();
            assert!(again.contains("already exists"), "{again}");
        }
        let bad = NewPlugin {
            name: "Hello",
            publisher: "acme",
            language: Language::C,
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
