//! `robohost plugin`: the plugin author's loop, in any guest language.
//! `new` makes a plugin folder (a greeting robot or a "form submitted"
//! trigger, its package manifest, the WIT and test cases), `build` compiles
//! it into a component, `test` runs its cases in the real sandbox, and
//! `pack` makes the package an admin installs. Building is
//! robohost-toolchain's job; a folder whose manifest names a component that
//! another toolchain built (`[build] component`) is tested and packed as it
//! is, so any language that makes a component gets the same loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use robohost_toolchain::{Language, NewPlugin, World};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::domain::{Calendar, Capability, Entity, Fields, InboundCall, Timestamp};
use crate::package::Provides;
use crate::runtime::{Grants, Plugin, Sandbox, SandboxConfig, TriggerPlugin};

#[derive(Subcommand)]
pub(super) enum PluginCommand {
    /// Makes a new plugin folder NAME: a greeting robot (or, with `--world
    /// trigger`, a "form submitted" trigger) in the language chosen, its
    /// package manifest `robohost.toml` and test cases. A Rust plugin
    /// depends on the SDK this binary carries, unpacked into
    /// `$ROBOHOST_CACHE` (by default `~/.cache/robohost`).
    New {
        name: String,
        /// rust, python, js or c.
        #[arg(long)]
        lang: Language,
        /// robot (a robot plugin) or trigger (a trigger plugin).
        #[arg(long, default_value = "robot")]
        world: World,
        /// The folder to make it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Who publishes it (the manifest's `package.publisher`).
        #[arg(long, default_value = "me")]
        publisher: String,
    },
    /// Builds the plugin in DIR into `DIR/build/<component>`; a component
    /// named by the manifest's `[build] component` is only checked.
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
            world,
            dir,
            publisher,
        } => {
            let folder = dir.join(&name);
            // A Rust plugin depends on the SDK this binary carries,
            // unpacked into the cache.
            let sdk = match lang {
                Language::Rust => robohost_toolchain::sdk::unpack()?,
                _ => PathBuf::new(),
            };
            NewPlugin {
                name: &name,
                publisher: &publisher,
                language: lang,
                world,
                sdk: &sdk,
            }
            .write(&folder)?;
            eprintln!(
                "robohost: made the {lang} {world} plugin {}; try `robohost plugin test {}`",
                folder.display(),
                folder.display()
            );
        }
        PluginCommand::Build { dir } => {
            let (folder, wasm) = build(&dir)?;
            match folder.prebuilt {
                Some(_) => eprintln!(
                    "robohost: {} is built by another toolchain (`[build] component`); it is a component",
                    wasm.display()
                ),
                None => eprintln!("robohost: built {}", wasm.display()),
            }
        }
        PluginCommand::Test { dir } => return test(sandbox, &dir),
        PluginCommand::Pack { dir, key, output } => {
            let (folder, wasm) = build(&dir)?;
            let manifest_path = dir.join(crate::package::MANIFEST);
            let text = std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?;
            // `[build]` says where the author's component comes from: the
            // package's manifest has no such table.
            let mut manifest: toml::Table =
                toml::from_str(&text).with_context(|| format!("{} is not valid", manifest_path.display()))?;
            manifest.remove(BUILD);
            let manifest = toml::to_string(&manifest)?;
            let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
            let files = BTreeMap::from([(folder.provides.component.clone(), bytes)]);
            let key = key
                .map(|path| super::read_key(&path).with_context(|| format!("reading the key {}", path.display())))
                .transpose()?;
            let archive = crate::package::pack(&manifest, &files, key.as_ref())?;
            let about = &folder.package;
            let output = output.unwrap_or_else(|| {
                dir.join("build")
                    .join(format!("{}-{}.rhpkg", about.name, about.version))
            });
            if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("making {}", parent.display()))?;
            }
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

/// The manifest's table for the author's build, which packing drops.
const BUILD: &str = "build";

/// What `plugin` commands read of a folder's manifest.
#[derive(Deserialize)]
struct ManifestFile {
    package: About,
    #[serde(default)]
    robots: Vec<Provides>,
    #[serde(default)]
    triggers: Vec<Provides>,
    build: Option<BuildTable>,
}

#[derive(Deserialize)]
struct About {
    name: String,
    version: String,
}

/// `[build]`: where the folder's component comes from when robohost does
/// not build it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildTable {
    /// A component another toolchain built (Zig, Go, TinyGo...), relative
    /// to the folder, such as `zig-out/bin/robot.wasm`: tested and packed as
    /// it is.
    component: PathBuf,
}

/// A plugin folder, as its manifest describes it.
struct Folder {
    package: About,
    /// What its component is: from the manifest's one `[[robots]]` or
    /// `[[triggers]]` entry.
    world: World,
    /// That entry: the component's name in the package and its codes.
    provides: Provides,
    /// `[build] component`, relative to the folder.
    prebuilt: Option<PathBuf>,
}

fn folder(dir: &Path) -> anyhow::Result<Folder> {
    let path = dir.join(crate::package::MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (`robohost plugin new` makes one)", path.display()))?;
    let file: ManifestFile = toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    let (world, provides) = match (file.robots.as_slice(), file.triggers.as_slice()) {
        ([one], []) => (World::Robot, one.clone()),
        ([], [one]) => (World::Trigger, one.clone()),
        _ => bail!(
            "{}: a plugin folder makes one component, so it lists exactly one [[robots]] or [[triggers]] entry",
            path.display()
        ),
    };
    Ok(Folder {
        package: file.package,
        world,
        provides,
        prebuilt: file.build.map(|build| build.component),
    })
}

/// Builds the plugin in `dir` (or checks the component another toolchain
/// built); returns its manifest and the component's path.
fn build(dir: &Path) -> anyhow::Result<(Folder, PathBuf)> {
    let folder = folder(dir)?;
    if let Some(prebuilt) = &folder.prebuilt {
        let wasm = dir.join(prebuilt);
        check_component(&wasm, folder.world)?;
        return Ok((folder, wasm));
    }
    let language = robohost_toolchain::detect(dir).map_err(|e| {
        anyhow::anyhow!(
            "{e}; for a component another toolchain builds, name it in {} under `[build]`: `component = \"PATH.wasm\"`",
            crate::package::MANIFEST
        )
    })?;
    let out = dir.join("build").join(&folder.provides.component);
    let wit = dir.join("wit");
    if language != Language::Rust && !wit.join("types.wit").is_file() {
        bail!(
            "{} has no WIT: a {language} plugin builds against the host's WIT in its `wit/` folder (as `robohost plugin new` makes it)",
            dir.display()
        );
    }
    robohost_toolchain::build(language, dir, &wit, folder.world.name(), &out)?;
    Ok((folder, out))
}

/// Checks that `path` holds a binary component, saying what to do when it
/// holds a core module.
fn check_component(path: &Path, world: World) -> anyhow::Result<()> {
    // The magic, then the version and layer of a component or of a core
    // module.
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: &[u8] = &[0x0d, 0x00, 0x01, 0x00];
    const MODULE: &[u8] = &[0x01, 0x00, 0x00, 0x00];
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading the component {} (`[build] component` of {}): build it first",
            path.display(),
            crate::package::MANIFEST
        )
    })?;
    match (bytes.get(..4), bytes.get(4..8)) {
        (Some(MAGIC), Some(COMPONENT)) => Ok(()),
        (Some(MAGIC), Some(MODULE)) => bail!(
            "{} is a core WebAssembly module, not a component: make it a component of the {world} world \
             (`wasm-tools component new`, with the WASI preview1 reactor adapter when it imports \
             wasi_snapshot_preview1; see the SDK's README)",
            path.display()
        ),
        _ => bail!("{} is not a WebAssembly component", path.display()),
    }
}

/// One robot test case: what `robohost robot run` takes, and what to expect.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RobotCase {
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
    /// What the run report must hold (see [`mismatches`]).
    expect: Map<String, Json>,
}

/// One trigger test case: the inbound call `robohost trigger run` takes,
/// and what to expect.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerCase {
    /// `POST` when not given.
    #[serde(default = "post")]
    method: String,
    /// The path after the endpoint's address; `/` when not given.
    #[serde(default = "root")]
    path: String,
    /// The query string, without `?`.
    #[serde(default)]
    query: String,
    /// Header names (sent in lower case) and values.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A string is sent as the body's text; any other JSON value as JSON,
    /// with `content-type: application/json` unless `headers` name a
    /// content type. No body when not given.
    body: Option<Json>,
    /// What the handling's report must hold (see [`mismatches`]).
    expect: Map<String, Json>,
}

fn post() -> String {
    "POST".into()
}

fn root() -> String {
    "/".into()
}

impl TriggerCase {
    fn call(&self) -> anyhow::Result<InboundCall> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let body = match &self.body {
            None => Vec::new(),
            Some(Json::String(text)) => text.clone().into_bytes(),
            Some(json) => {
                if !headers.iter().any(|(name, _)| name == "content-type") {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                serde_json::to_vec(json)?
            }
        };
        Ok(InboundCall {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers,
            body,
        })
    }
}

/// The key of `expect` naming the code of the plugin's own failure
/// (`robot-error`), such as `bad_payload`, so a case need not repeat the
/// failure's message.
const FAILURE: &str = "failure";

/// What `expect` finds wrong in a report `got`, one line per key: each key
/// of the report (`outcome`, `effects`, `returns`, `hits`...) must hold
/// exactly the value given, and [`FAILURE`] the failure's code.
fn mismatches(expect: &Map<String, Json>, got: &Json) -> Vec<String> {
    expect
        .iter()
        .filter_map(|(key, want)| {
            let (have, shown) = if key == FAILURE {
                let outcome = &got["outcome"];
                let code = match outcome["outcome"].as_str() {
                    Some("robot-error") => outcome["code"].clone(),
                    _ => Json::Null,
                };
                (code, outcome.clone())
            } else {
                let value = got.get(key.as_str()).cloned().unwrap_or(Json::Null);
                (value.clone(), value)
            };
            (&have != want).then(|| format!("  {key}: expected {want}\n  {key}: got      {shown}"))
        })
        .collect()
}

/// The component of a plugin folder, loaded as its world says.
enum Loaded {
    Robot(Plugin),
    Trigger(TriggerPlugin),
}

fn test(config: SandboxConfig, dir: &Path) -> anyhow::Result<ExitCode> {
    let (folder, wasm) = build(dir)?;
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
    let sandbox = super::start(config)?;
    let loaded = load(&sandbox, &folder, &wasm)?;
    let mut failed = 0;
    for path in &cases {
        let (expect, got) = match &loaded {
            Loaded::Robot(plugin) => {
                let case: RobotCase = super::read_json(path, "the test case")?;
                let default_robot = folder.provides.codes.first().map_or("", String::as_str);
                let report = run_robot_case(&sandbox, plugin, path, default_robot, &case)?;
                (case.expect, report)
            }
            Loaded::Trigger(plugin) => {
                let case: TriggerCase = super::read_json(path, "the test case")?;
                let call = case.call()?;
                let report = sandbox.handle(plugin, &call, Grants::ALL, super::empty_context()?);
                (case.expect, serde_json::to_value(&report)?)
            }
        };
        let wrong = mismatches(&expect, &got);
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

/// Loads the folder's component as its world says, and checks that it
/// describes every code its manifest entry lists, as installing will.
fn load(sandbox: &Sandbox, folder: &Folder, wasm: &Path) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let name = &folder.package.name;
    let context = super::empty_context()?;
    // The author's own plugin: its compiled code is kept for the next test.
    let (loaded, described): (Loaded, Vec<String>) = match folder.world {
        World::Robot => {
            let mut plugin = sandbox.load(name, &bytes, &context)?;
            plugin.accept();
            let codes = plugin.robots().iter().map(|r| r.code.clone()).collect();
            (Loaded::Robot(plugin), codes)
        }
        World::Trigger => {
            let mut plugin = sandbox.load_trigger(name, &bytes, &context)?;
            plugin.accept();
            let codes = plugin.triggers().iter().map(|t| t.code.clone()).collect();
            (Loaded::Trigger(plugin), codes)
        }
    };
    if let Some(missing) = folder.provides.codes.iter().find(|code| !described.contains(code)) {
        bail!(
            "{} lists the {} `{missing}`, which {} does not describe (it describes: {})",
            crate::package::MANIFEST,
            folder.world,
            wasm.display(),
            described.join(", ")
        );
    }
    Ok(loaded)
}

/// Runs a robot case (read from `path`) in the local harness; returns the
/// run report as JSON.
fn run_robot_case(
    sandbox: &Sandbox,
    plugin: &Plugin,
    path: &Path,
    default_robot: &str,
    case: &RobotCase,
) -> anyhow::Result<Json> {
    let now = match &case.now {
        Some(text) => text
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: `now`: {e}", path.display()))?,
        None => Timestamp::now(),
    };
    let local = super::LocalRun {
        robot: case.robot.clone().unwrap_or_else(|| default_robot.to_owned()),
        entity: case.entity.clone(),
        properties: case.props.clone(),
        related: case.related.clone(),
        calendar: Calendar::default(),
        kv: Default::default(),
        now,
        grants: case
            .grant
            .as_ref()
            .map_or(Grants::ALL, |list| list.iter().copied().collect()),
        fuel: None,
    };
    let report = local.run(sandbox, plugin)?;
    Ok(serde_json::to_value(&report)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expect: Json, got: Json) -> Vec<String> {
        mismatches(expect.as_object().expect("an object"), &got)
    }

    #[test]
    fn a_case_expects_report_keys_exactly_and_a_failure_by_its_code() {
        let failed = serde_json::json!({
            "outcome": {"outcome": "robot-error", "code": "bad_payload", "message": "no email", "retryable": false},
            "hits": [],
        });
        assert!(
            check(
                serde_json::json!({"failure": "bad_payload", "hits": []}),
                failed.clone()
            )
            .is_empty()
        );
        let wrong = check(serde_json::json!({"failure": "method"}), failed.clone());
        assert_eq!(wrong.len(), 1);
        assert!(
            wrong[0].starts_with("  failure: expected \"method\"\n  failure: got      {")
                && wrong[0].contains("\"code\":\"bad_payload\",\"message\":\"no email\""),
            "{wrong:?}"
        );
        let passed = serde_json::json!({"outcome": {"outcome": "success"}, "hits": [{"trigger": "t"}]});
        assert_eq!(
            check(serde_json::json!({"failure": "bad_payload"}), passed.clone()),
            ["  failure: expected \"bad_payload\"\n  failure: got      {\"outcome\":\"success\"}"]
        );
        assert_eq!(
            check(serde_json::json!({"hits": [], "kv": []}), passed),
            [
                "  hits: expected []\n  hits: got      [{\"trigger\":\"t\"}]",
                "  kv: expected []\n  kv: got      null"
            ]
        );
    }

    #[test]
    fn a_trigger_case_sends_json_bodies_as_json_and_strings_as_text() {
        let case = |json: &str| -> InboundCall { serde_json::from_str::<TriggerCase>(json).unwrap().call().unwrap() };
        let call = case(r#"{"body": {"email": "ann@example.com"}, "expect": {}}"#);
        assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", "/"));
        assert_eq!(call.body, br#"{"email":"ann@example.com"}"#);
        assert_eq!(call.headers, [("content-type".into(), "application/json".into())]);

        let call = case(
            r#"{"method": "PUT", "query": "a=1", "headers": {"Content-Type": "text/plain"}, "body": "{not json", "expect": {}}"#,
        );
        assert_eq!((call.method.as_str(), call.query.as_str()), ("PUT", "a=1"));
        assert_eq!(call.body, b"{not json");
        assert_eq!(call.headers, [("content-type".into(), "text/plain".into())]);

        assert!(case(r#"{"expect": {}}"#).body.is_empty());
        let typo = serde_json::from_str::<TriggerCase>(r#"{"bdy": "x", "expect": {}}"#);
        assert!(typo.is_err_and(|e| e.to_string().contains("unknown field `bdy`")));
    }
}
