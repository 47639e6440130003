//! JavaScript guests: `robot.js` (`trigger.js` for the trigger world)
//! componentized with componentize-js 0.23 (StarlingMonkey), installed with
//! npm into `wit-check/js` of the tool cache, the folder `.ci/check-wit`
//! installs and checks. Needs Node.js and npm. The WASI features plugins do
//! not use are left out (`-d stdio random clocks http fetch-event`), so the
//! component imports nothing the host does not link. It is about 12 MB.

use std::path::Path;
use std::process::Command;

use crate::{Error, Language, absolute, io_error, lock_cache, run, tool_cache};

/// The module a JavaScript plugin folder of `world` holds: `robot.js`, or
/// `trigger.js` for the trigger world.
pub(crate) fn entry(world: &str) -> &'static str {
    match world {
        "trigger" => "trigger.js",
        _ => "robot.js",
    }
}

/// The npm folder's package.json, byte for byte what `.ci/check-wit`
/// writes (it reinstalls when they differ): componentize-js 0.23.x with
/// preview2-shim pinned to 0.25.x, as 0.26 breaks the build.
const PACKAGE_JSON: &str = r#"{
  "name": "robohost-wit-check",
  "private": true,
  "description": "Guest toolchain for .ci/check-wit",
  "dependencies": {
    "@bytecodealliance/componentize-js": "~0.23.0",
    "@bytecodealliance/preview2-shim": "~0.25.0"
  },
  "overrides": {
    "@bytecodealliance/preview2-shim": "~0.25.0"
  }
}
"#;

pub(crate) fn build(dir: &Path, wit: &Path, world: &str, out_wasm: &Path) -> Result<(), Error> {
    let module = dir.join(entry(world));
    if !module.is_file() {
        return Err(Error::NotAPlugin {
            dir: dir.to_owned(),
            language: Language::Js,
            needs: entry(world),
        });
    }
    let cache = tool_cache();
    let _lock = lock_cache(&cache)?;
    let npm_dir = cache.join("js");
    let tool = npm_dir.join("node_modules/.bin/componentize-js");
    let package_json = npm_dir.join("package.json");
    let marker = npm_dir.join(".installed");
    let current =
        marker.is_file() && tool.is_file() && std::fs::read_to_string(&package_json).is_ok_and(|s| s == PACKAGE_JSON);
    if !current {
        for tool in ["node", "npm"] {
            if !crate::installed(tool) {
                return Err(Error::Missing {
                    tool,
                    fix: "install Node.js 20 and npm (`apt-get install nodejs npm`)".into(),
                });
            }
        }
        let _ = std::fs::remove_dir_all(&npm_dir);
        std::fs::create_dir_all(&npm_dir).map_err(io_error(&npm_dir))?;
        std::fs::write(&package_json, PACKAGE_JSON).map_err(io_error(&package_json))?;
        run(
            "installing componentize-js 0.23 with npm",
            Command::new("npm")
                .current_dir(&npm_dir)
                .args(["install", "--no-audit", "--no-fund", "--loglevel=warn"]),
        )?;
        std::fs::write(&marker, "").map_err(io_error(&marker))?;
    }
    run(
        &format!("componentize-js on {}", module.display()),
        Command::new(&tool)
            .arg(absolute(&module))
            .arg("--wit")
            .arg(absolute(wit))
            .args([
                "-n",
                world,
                "-d",
                "stdio",
                "random",
                "clocks",
                "http",
                "fetch-event",
                "-o",
            ])
            .arg(absolute(out_wasm)),
    )?;
    Ok(())
}
