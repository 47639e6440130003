//! `robohost plugin`: the plugin author's loop, in any guest language.
//! `new` makes a plugin folder (a greeting robot, its package manifest, the
//! WIT and a test case), `build` compiles it into a component, `test` runs
//! its cases in the real sandbox, and `pack` makes the package an admin
//! installs. Building is robohost-toolchain's job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use robohost_toolchain::{Language, NewPlugin};
use serde::Deserialize;

use crate::domain::{Calendar, Capability, Entity, Fields, Timestamp};
use crate::runtime::{Grants, SandboxConfig};

/// The Rust SDK this binary was built with, for new Rust plugins.
const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

#[derive(Subcommand)]
pub(super) enum PluginCommand {
    /// Makes a new plugin folder NAME: a greeting robot in the language
    /// chosen, its package manifest `robohost.toml` and a test case.
    New {
        name: String,
        /// rust, python, js or c.
        #[arg(long)]
        lang: Language,
        /// The folder to make it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Who publishes it (the manifest's `package.publisher`).
        #[arg(long, default_value = "me")]
        publisher: String,
    },
    /// Builds the plugin in DIR into `DIR/build/<component>`.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Builds the plugin in DIR, then runs each case of `DIR/tests/*.json`
    /// in the sandbox and checks its report against the case's `expect`.
    Test {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Builds the plugin in DIR and packs it with its manifest into a
    /// package, signed with the key when given.
    Pack {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// A key file made by `robohost package keygen`.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Where to write the package; `DIR/build/NAME-VERSION.rhpkg` when not given.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub(super) fn run(sandbox: SandboxConfig, command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New {
            name,
            lang,
            dir,
            publisher,
        } => {
            let folder = dir.join(&name);
            let sdk = std::path::absolute(SDK)?;
            NewPlugin {
                name: &name,
                publisher: &publisher,
                language: lang,
                sdk: &sdk,
            }
            .write(&folder)?;
            eprintln!(
                "robohost: made the {lang} plugin {}; try `robohost plugin test {}`",
                folder.display(),
                folder.display()
            );
        }
        PluginCommand::Build { dir } => {
            let (_, wasm) = build(&dir)?;
            eprintln!("robohost: built {}", wasm.display());
        }
        PluginCommand::Test { dir } => return test(sandbox, &dir),
        PluginCommand::Pack { dir, key, output } => {
            let (folder, wasm) = build(&dir)?;
            let manifest_path = dir.join(crate::package::MANIFEST);
            let manifest = std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?;
            let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
            let files = BTreeMap::from([(folder.component.clone(), bytes)]);
            let key = key
                .map(|path| super::read_key(&path).with_context(|| format!("reading the key {}", path.display())))
                .transpose()?;
            let archive = crate::package::pack(&manifest, &files, key.as_ref())?;
            let about = &folder.package;
            let output = output.unwrap_or_else(|| {
                dir.join("build")
                    .join(format!("{}-{}.rhpkg", about.name, about.version))
            });
            std::fs::write(&output, &archive).with_context(|| format!("writing {}", output.display()))?;
            eprintln!(
                "robohost: packed {} {} into {} ({} bytes, {})",
                about.name,
                about.version,
                output.display(),
                archive.len(),
                if key.is_some() { "signed" } else { "unsigned" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `plugin` commands read of a folder's manifest.
#[derive(Deserialize)]
struct Folder {
    package: About,
    #[serde(default)]
    robots: Vec<crate::package::Provides>,
    /// The one component the folder builds.
    #[serde(skip)]
    component: String,
}

#[derive(Deserialize)]
struct About {
    name: String,
    version: String,
}

fn folder(dir: &Path) -> anyhow::Result<Folder> {
    let path = dir.join(crate::package::MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (`robohost plugin new` makes one)", path.display()))?;
    let mut folder: Folder = toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    match folder.robots.as_slice() {
        [one] => folder.component = one.component.clone(),
        _ => bail!(
            "{}: a plugin folder builds one component, so it lists exactly one [[robots]] entry",
            path.display()
        ),
    }
    Ok(folder)
}

/// Builds the plugin in `dir`; returns its manifest and the component's path.
fn build(dir: &Path) -> anyhow::Result<(Folder, PathBuf)> {
    let folder = folder(dir)?;
    let language = robohost_toolchain::detect(dir)?;
    let out = dir.join("build").join(&folder.component);
    let wit = dir.join("wit");
    if language != Language::Rust && !wit.join("types.wit").is_file() {
        bail!(
            "{} has no WIT: a {language} plugin builds against the host's WIT in its `wit/` folder (as `robohost plugin new` makes it)",
            dir.display()
        );
    }
    robohost_toolchain::build(language, dir, &wit, "robot", &out)?;
    Ok((folder, out))
}

/// One test case: what `robohost robot run` takes, and what to expect.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The robot to run; the manifest's first code when not given.
    robot: Option<String>,
    entity: Entity,
    #[serde(default)]
    props: Fields,
    #[serde(default)]
    related: Vec<Entity>,
    /// RFC 3339; the real time when not given.
    now: Option<String>,
    /// Capabilities granted; all when not given.
    grant: Option<Vec<Capability>>,
    /// Keys of the run report (`outcome`, `effects`, `returns`...) and the
    /// values they must hold.
    expect: serde_json::Map<String, serde_json::Value>,
}

fn test(config: SandboxConfig, dir: &Path) -> anyhow::Result<ExitCode> {
    let (folder, wasm) = build(dir)?;
    let sandbox = super::start(config)?;
    let tests = dir.join("tests");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&tests)
        .with_context(|| format!("reading {}", tests.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    cases.retain(|path| path.extension().is_some_and(|e| e == "json"));
    cases.sort();
    if cases.is_empty() {
        bail!("{} holds no test case (*.json)", tests.display());
    }
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut plugin = sandbox.load(&folder.package.name, &bytes, &super::empty_context()?)?;
    // The author's own plugin: its compiled code is kept for the next test.
    plugin.accept();
    let default_robot = folder.robots[0].codes.first().cloned().unwrap_or_default();
    let mut failed = 0;
    for path in &cases {
        let case: Case = super::read_json(path, "the test case")?;
        let now = match &case.now {
            Some(text) => text
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: `now`: {e}", path.display()))?,
            None => Timestamp::now(),
        };
        let local = super::LocalRun {
            robot: case.robot.unwrap_or_else(|| default_robot.clone()),
            entity: case.entity,
            properties: case.props,
            related: case.related,
            calendar: Calendar::default(),
            kv: Default::default(),
            now,
            grants: case.grant.map_or(Grants::ALL, |list| list.into_iter().collect()),
            fuel: None,
        };
        let report = local.run(&sandbox, &plugin)?;
        let got = serde_json::to_value(&report)?;
        let wrong: Vec<String> = case
            .expect
            .iter()
            .filter(|(key, want)| got.get(key.as_str()) != Some(want))
            .map(|(key, want)| {
                format!(
                    "  {key}: expected {want}\n  {key}: got      {}",
                    got.get(key.as_str()).unwrap_or(&serde_json::Value::Null)
                )
            })
            .collect();
        if wrong.is_empty() {
            println!("ok     {}", path.display());
        } else {
            failed += 1;
            println!("FAILED {}\n{}", path.display(), wrong.join("\n"));
        }
    }
    println!("{} of {} cases passed", cases.len() - failed, cases.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
