//! Snapshot files of user-facing messages, as Spin and trybuild keep them in
//! `tests/ui`: in a folder of `tests/ui/`, each input `NAME.EXT` stands next
//! to `NAME.err`, the message the real parser or checker gives for it. A
//! test runs every input through [`check_folder`]; a message that differs
//! from its file fails the test with a diff naming the file. Run with
//! `ROBOHOST_BLESS=1` to write the messages into the `.err` files instead
//! (and remove those without an input), then review them with `git diff`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable that makes [`check_folder`] write the
/// expected messages instead of comparing them.
pub const BLESS: &str = "ROBOHOST_BLESS";

/// The folder `tests/ui/NAME`.
pub fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui").join(name)
}

/// Runs `message` on each input `*.EXT` of `folder` (by name, with its
/// bytes), in name order, and compares what it says with the input's
/// `.err` file. Every difference is listed before the test fails.
pub async fn check_folder(folder: &Path, ext: &str, mut message: impl AsyncFnMut(&str, &[u8]) -> String) {
    let bless = std::env::var_os(BLESS).is_some_and(|v| v != "0");
    let entries = std::fs::read_dir(folder).unwrap_or_else(|e| panic!("reading {}: {e}", folder.display()));
    let mut paths: Vec<PathBuf> = entries.map(|entry| entry.expect("a folder entry").path()).collect();
    paths.sort();
    let inputs: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert!(!inputs.is_empty(), "no `*.{ext}` input in {}", folder.display());

    let mut failures = String::new();
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy();
        let bytes = std::fs::read(input).unwrap_or_else(|e| panic!("reading {}: {e}", input.display()));
        let actual = format!("{}\n", message(&name, &bytes).await.trim_end());
        let err = input.with_extension("err");
        if bless {
            std::fs::write(&err, &actual).unwrap_or_else(|e| panic!("writing {}: {e}", err.display()));
            continue;
        }
        match std::fs::read_to_string(&err) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                let _ = writeln!(failures, "\n{} differs (- expected, + actual):", err.display());
                failures.push_str(&diff(&expected, &actual));
            }
            Err(e) => {
                let _ = writeln!(failures, "\n{} cannot be read ({e}); the message is:", err.display());
                failures.push_str(&actual);
            }
        }
    }
    for orphan in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "err")) {
        if !inputs.iter().any(|input| input.with_extension("err") == *orphan) {
            if bless {
                std::fs::remove_file(orphan).unwrap_or_else(|e| panic!("removing {}: {e}", orphan.display()));
            } else {
                let _ = writeln!(failures, "\n{} has no input `*.{ext}` beside it", orphan.display());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{failures}\nrun with {BLESS}=1 to accept the messages, then review them with `git diff`"
    );
}

/// The lines of `expected` and `actual`, those only in `expected` marked
/// `-`, those only in `actual` marked `+`, common ones indented.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    // The longest common subsequence of lines, from the end.
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}
