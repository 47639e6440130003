//! Python guests: `app.py` componentized with componentize-py, installed
//! into the venv `wit-check/venv` of the tool cache (the one
//! `.ci/check-wit` uses). Needs Python 3 with venv and pip. The component
//! is about 18 MB and imports WASI, which the host links.

use std::path::Path;
use std::process::Command;

use crate::{Error, Language, absolute, lock_cache, run, tool_cache};

/// componentize-py, exactly: the version `.ci/check-wit` checks.
pub const VERSION: &str = "0.25.1";

/// The module a Python plugin folder holds.
pub(crate) const ENTRY: &str = "app.py";

pub(crate) fn build(dir: &Path, wit: &Path, world: &str, out_wasm: &Path) -> Result<(), Error> {
    if !dir.join(ENTRY).is_file() {
        return Err(Error::NotAPlugin {
            dir: dir.to_owned(),
            language: Language::Python,
            needs: ENTRY,
        });
    }
    let cache = tool_cache();
    // Held while building too, so no other run reinstalls the tool under us.
    let _lock = lock_cache(&cache)?;
    let venv = cache.join("venv");
    let tool = venv.join("bin/componentize-py");
    if !has_version(&tool) {
        if !crate::installed("python3") {
            return Err(Error::Missing {
                tool: "python3",
                fix: "install Python 3 with venv and pip (`apt-get install python3-venv`)".into(),
            });
        }
        let _ = std::fs::remove_dir_all(&venv);
        run(
            "creating the Python venv for componentize-py",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
        run(
            &format!("installing componentize-py {VERSION} with pip"),
            Command::new(venv.join("bin/pip")).args([
                "install",
                "--quiet",
                "--no-input",
                "--disable-pip-version-check",
                &format!("componentize-py=={VERSION}"),
            ]),
        )?;
    }
    run(
        &format!("componentize-py on {}", dir.display()),
        Command::new(&tool)
            .current_dir(dir)
            .arg("-d")
            .arg(absolute(wit))
            .args(["-w", world, "componentize", "app", "-o"])
            .arg(absolute(out_wasm)),
    )?;
    Ok(())
}

fn has_version(tool: &Path) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == format!("componentize-py {VERSION}"))
}
