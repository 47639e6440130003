//! The command line as a user runs it: `robohost robot run` (the plugin
//! author's local harness), `trigger run`, `template install | export`,
//! `package ...`, and `plugin new | build | test | pack` in every language
//! and world, and with a component built elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use robohost_tests::plugin_path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    path.display().to_string()
}

fn robohost(args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("robohost-cli-cache-{}", std::process::id()));
    let config = std::env::temp_dir().join(format!("robohost-cli-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[sandbox]\nfuel = 20000000\nmemory-bytes = 33554432\ncache-dir = {:?}\n",
            cache.display().to_string()
        ),
    )
    .expect("writing the config");
    Command::new(env!("CARGO_BIN_EXE_robohost"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .expect("running robohost")
}

/// A deal of 250,000 roubles, the `assign_by_amount` robot's properties
/// (three users in bands at 100,000 and 1,000,000) in `dir`, and the
/// plugin's path.
fn assign_inputs(dir: &Path) -> (String, String, String) {
    let entity = write(
        dir,
        "deal.json",
        r#"{"kind": "deal", "id": 42, "responsible": 1, "fields": {"OPPORTUNITY": {"money": "250000 RUB"}}}"#,
    );
    let props = write(
        dir,
        "props.json",
        r#"{"bounds": [{"decimal": "100000"}, {"decimal": "1000000"}], "users": [{"user": 7}, {"user": 8}, {"user": 9}]}"#,
    );
    (entity, props, plugin_path("assign_by_amount").display().to_string())
}

#[test]
fn run_prints_the_effects_of_a_useful_robot() {
    let dir = tempdir("useful");
    let (entity, props, plugin) = assign_inputs(&dir);
    let out = robohost(&[
        "robot",
        "run",
        "--plugin",
        &plugin,
        "--robot",
        "assign_by_amount",
        "--entity",
        &entity,
        "--props",
        &props,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("outcome  success"), "{stdout}");
    assert!(stdout.contains("1. make user 8 responsible for deal:42"), "{stdout}");
    assert!(stdout.contains("2. comment on deal:42"), "{stdout}");
    assert!(stdout.contains("band = 2"), "{stdout}");
    assert!(stdout.contains("fuel     "), "{stdout}");
}

#[test]
fn run_names_the_limit_plugin_and_robot_of_each_hostile_robot() {
    let dir = tempdir("hostile");
    let entity = write(&dir, "deal.json", r#"{"kind": "deal", "id": 42}"#);
    let plugin = plugin_path("hostile").display().to_string();
    for (robot, says) in [
        ("infinite_loop", "out of fuel"),
        ("memory_bomb", "memory limit"),
        ("deep_recursion", "stack overflow"),
        ("panic", "guest trap"),
        ("huge_output", "output limit"),
        ("stdout_flood", "output limit"),
        (
            "ungranted_effect",
            "capability denied: `effects.notify` needs the `notify` capability",
        ),
        ("open_file", "capability denied"),
        ("open_socket", "capability denied"),
        ("read_env", "environment is empty"),
    ] {
        let out = robohost(&[
            "robot", "run", "--plugin", &plugin, "--robot", robot, "--entity", &entity,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{robot}: {stderr}");
        assert!(
            stderr.contains(&"plugin hostile (sha256:".to_string()),
            "{robot}: {stderr}"
        );
        assert!(stderr.contains(&format!("robot `{robot}`")), "{robot}: {stderr}");
        assert!(stderr.contains(says), "{robot}: expected `{says}` in {stderr}");
    }
}

#[test]
fn every_local_command_ends_a_waiting_plugin_at_its_deadline() {
    let dir = tempdir("waits");
    let entity = write(&dir, "deal.json", r#"{"kind": "deal", "id": 42}"#);
    let body = write(&dir, "sleep.txt", "sleep");
    let hostile = plugin_path("hostile").display().to_string();
    let describe = plugin_path("hostile_describe").display().to_string();
    let trigger = plugin_path("hostile_trigger").display().to_string();
    // A run that fails exits 1; a plugin that cannot be loaded is bad input.
    let commands: [(&[&str], i32); 4] = [
        (
            &[
                "robot",
                "run",
                "--plugin",
                &hostile,
                "--robot",
                "sleep_forever",
                "--entity",
                &entity,
            ],
            1,
        ),
        (
            &[
                "robot",
                "run",
                "--plugin",
                &hostile,
                "--robot",
                "poll_forever",
                "--entity",
                &entity,
            ],
            1,
        ),
        (&["robot", "describe", "--plugin", &describe], 2),
        (&["trigger", "run", "--plugin", &trigger, "--body", &body], 1),
    ];
    for (args, code) in commands {
        let started = std::time::Instant::now();
        let out = robohost(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The 2 s wall-clock limit, and the compile of a cold cache.
        assert!(
            started.elapsed().as_secs() < 30,
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains("deadline exceeded"), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_input_files_are_named() {
    let dir = tempdir("bad");
    let entity = write(&dir, "deal.json", r#"{"kind": "deel", "id": 42}"#);
    let plugin = plugin_path("hostile").display().to_string();
    let out = robohost(&[
        "robot", "run", "--plugin", &plugin, "--robot", "panic", "--entity", &entity,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("deal.json is not valid") && stderr.contains("deel"),
        "{stderr}"
    );
}

#[test]
fn run_grants_nothing_with_grant_none() {
    let dir = tempdir("grant-none");
    let (entity, props, plugin) = assign_inputs(&dir);
    let run = |grant: &str| {
        robohost(&[
            "robot",
            "run",
            "--plugin",
            &plugin,
            "--robot",
            "assign_by_amount",
            "--entity",
            &entity,
            "--props",
            &props,
            "--grant",
            grant,
        ])
    };
    // A run, not a usage error: the robot's first host call is denied.
    let out = run("none");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("capability denied"), "{stderr}");

    let out = run("none,add-comment");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`none` grants nothing"), "{stderr}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("robohost-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temp folder");
    dir
}

#[test]
fn trigger_run_prints_the_hits_of_a_webhook() {
    let dir = tempdir("trigger");
    let body = write(
        &dir,
        "call.json",
        r#"{"event": "call_end", "direction": "inbound", "from": "+7 (912) 345-67-89", "duration": 125, "call_id": "abc-1"}"#,
    );
    let plugin = plugin_path("call_notice").display().to_string();
    let out = robohost(&[
        "trigger",
        "run",
        "--plugin",
        &plugin,
        "--body",
        &body,
        "--header",
        "content-type: application/json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("incoming_call for the contact whose PHONE is +79123456789"),
        "{stdout}"
    );

    let get = robohost(&[
        "trigger", "run", "--plugin", &plugin, "--body", &body, "--method", "GET",
    ]);
    let stderr = String::from_utf8_lossy(&get.stderr);
    assert_eq!(get.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("plugin call_notice") && stderr.contains("GET"),
        "{stderr}"
    );
}

#[test]
fn template_install_reports_what_to_bind_and_refuses_with_locations() {
    let dir = tempdir("template");
    let db = format!("sqlite://{}", dir.join("portal.sqlite").display());
    let prom2b = concat!(env!("CARGO_MANIFEST_DIR"), "/../templates/prom2b.toml");
    let out = robohost(&["template", "install", prom2b, "--database-url", &db]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(
        report["pipelines_created"],
        serde_json::json!(["leads", "general", "shipment"])
    );
    assert!(
        stderr
            .contains("bind these constants before their robots run: Consultant, Clerk, Accountant, Lawyer, Purchaser"),
        "{stderr}"
    );

    let bad = write(
        &dir,
        "bad.toml",
        "format = 1\ncode = \"x\"\nversion = \"1\"\n\n[[robots]]\npipeline = \"nowhere\"\nstage = \"S\"\nplugin = \"standard\"\nrobot = \"notify\"\n",
    );
    let out = robohost(&["template", "install", &bad, "--database-url", &db]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{bad}:5:1: robot `notify` at nowhere/S: no pipeline `nowhere` in the template or the portal"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");

    let out = robohost(&["template", "export", "--code", "prom2b", "--database-url", &db]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("format = 1\ncode = \"prom2b\""), "{stdout}");
    assert_eq!(stdout.matches("[[robots]]").count(), 45);
}

#[test]
fn a_folder_packs_into_a_signed_package_that_installs_once_approved() {
    let dir = tempdir("pack");
    let folder = dir.join("rf");
    std::fs::create_dir_all(folder.join("components")).unwrap();
    std::fs::copy(plugin_path("rf_segmentation"), folder.join("components/rf.wasm")).unwrap();
    write(
        &folder,
        "robohost.toml",
        "[package]\nname = \"rf\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\
         description = \"RF segmentation\"\n\n[capabilities]\nhost = [\"set-fields\"]\nwrite = [\"contact\"]\nfields = [\"UF_RF_SEGMENT\"]\n\n\
         [[robots]]\ncomponent = \"components/rf.wasm\"\ncodes = [\"rf_segment\"]\n",
    );
    let key = dir.join("acme.key").display().to_string();
    let out = robohost(&["package", "keygen", &key]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");

    let package = dir.join("rf.rhpkg").display().to_string();
    let folder = folder.display().to_string();
    let out = robohost(&["package", "pack", &folder, "--key", &key, "--output", &package]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let db = format!("sqlite://{}", dir.join("portal.sqlite").display());
    let out = robohost(&["package", "trust", "acme", &public, "--database-url", &db]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = robohost(&["package", "install", &package, "--database-url", &db]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not approved: set-fields, write:contact, field:UF_RF_SEGMENT"),
        "{stderr}"
    );

    let out = robohost(&[
        "package",
        "install",
        &package,
        "--approve",
        "set-fields,write:contact,field:UF_RF_SEGMENT",
        "--database-url",
        &db,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["plugins"], serde_json::json!(["rf"]));
    assert_eq!(report["signed_by"], "acme");
}

/// Runs `robohost robot describe PLUGIN` with `sandbox` in the `[sandbox]`
/// table and an empty artifact cache, so the component is compiled.
fn describe_with(name: &str, sandbox: &str, plugin: &Path) -> Output {
    let dir = tempdir(name);
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let table = format!("[sandbox]\ncache-dir = {:?}\n{sandbox}\n", cache.display().to_string());
    let config = write(&dir, "robohost.toml", &table);
    Command::new(env!("CARGO_BIN_EXE_robohost"))
        .args(["--config", &config, "robot", "describe", "--plugin"])
        .arg(plugin)
        .output()
        .expect("running robohost")
}

#[test]
fn components_compile_in_a_worker_within_time_and_memory_caps() {
    let python = robohost_tests::python_plugin_path("rf_segmentation");
    let out = describe_with("compile-ok", "", &python);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("rf_segment"), "{stdout}");

    // The Python interpreter needs about 400 MiB to compile.
    let out = describe_with("compile-memory", "compile-memory-bytes = 268435456", &python);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("rf_segmentation does not compile: compiling needed more than 256 MiB (limit `sandbox.compile-memory-bytes`)"),
        "{stderr}"
    );
    // ...while a small component compiles within the same cap.
    let small = describe_with(
        "compile-small",
        "compile-memory-bytes = 268435456",
        &plugin_path("rf_segmentation"),
    );
    assert!(small.status.success(), "{}", String::from_utf8_lossy(&small.stderr));

    let out = describe_with("compile-time", "compile-time-ms = 200", &python);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("compiling took longer than 200 ms (limit `sandbox.compile-time-ms`)"),
        "{stderr}"
    );
}

/// A configuration that gives compiling a component five minutes: a
/// JavaScript component carries its engine (about 10 MB), and compiling two
/// at once on a loaded 2-core machine may take longer than the default
/// minute. Its path.
fn patient_config() -> PathBuf {
    let config = std::env::temp_dir().join(format!("robohost-cli-patient-{}.toml", std::process::id()));
    std::fs::write(&config, "[sandbox]\ncompile-time-ms = 300000\n").expect("writing the config");
    config
}

/// Runs `robohost` with `args` in `dir`.
fn robohost_in(dir: &Path, args: &[&str]) -> Output {
    robohost_in_env(dir, args, &[])
}

/// Runs `robohost` with `args` in `dir` and the environment variables `env`.
fn robohost_in_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_robohost"))
        .current_dir(dir)
        .envs(env.iter().copied())
        .arg("--config")
        .arg(patient_config())
        .args(args)
        .output()
        .expect("running robohost");
    assert!(
        out.status.success(),
        "robohost {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A portal database in `root` that trusts the publisher `acme`, whose new
/// key is `root/acme.key`; returns the key's path and the database URL.
fn trusting_portal(root: &Path) -> (PathBuf, String) {
    let key = root.join("acme.key");
    std::fs::create_dir_all(root).unwrap();
    let public = String::from_utf8(robohost_in(root, &["package", "keygen", key.to_str().unwrap()]).stdout).unwrap();
    let db = format!("sqlite://{}", root.join("portal.sqlite").display());
    let _ = std::fs::remove_file(root.join("portal.sqlite"));
    robohost_in(
        root,
        &["package", "trust", "acme", public.trim(), "--database-url", &db],
    );
    (key, db)
}

/// Runs `robohost plugin new NAME ARGS...` in `parent` over an earlier
/// run's folder, keeping a Rust plugin's build folder, with the cache (where
/// a Rust plugin's SDK is unpacked) an empty `parent/cache`; returns the
/// folder.
fn new_plugin(parent: &Path, name: &str, args: &[&str]) -> PathBuf {
    let folder = parent.join(name);
    let kept = parent.join("target");
    if folder.join("target").exists() {
        std::fs::rename(folder.join("target"), &kept).unwrap();
    }
    let _ = std::fs::remove_dir_all(&folder);
    let cache = parent.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(parent).unwrap();
    let mut all = vec!["plugin", "new", name];
    all.extend(args);
    robohost_in_env(parent, &all, &[("ROBOHOST_CACHE", &cache)]);
    if kept.exists() {
        std::fs::rename(&kept, folder.join("target")).unwrap();
    }
    folder
}

/// Checks that the new Rust plugin in `folder` depends on the SDK unpacked
/// into `folder`'s parent's `cache` (by `new_plugin`), not on the checkout's.
fn assert_sdk_unpacked(folder: &Path) {
    let manifest = std::fs::read_to_string(folder.join("Cargo.toml")).unwrap();
    let sdk = manifest
        .lines()
        .find_map(|line| line.strip_prefix("robohost-sdk = { path = \"")?.strip_suffix("\" }"))
        .unwrap_or_else(|| panic!("no SDK path in {manifest}"));
    let sdk = Path::new(sdk);
    let cache = folder.parent().unwrap().join("cache");
    assert!(
        sdk.starts_with(&cache),
        "{} is not in {}",
        sdk.display(),
        cache.display()
    );
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    assert_ne!(sdk.canonicalize().unwrap(), checkout.canonicalize().unwrap());
    assert!(sdk.join("src/lib.rs").is_file() && sdk.join("../wit/since_v0.1.0/robot.wit").is_file());
}

/// Runs `robohost plugin test` in `folder`, which may fail; returns its
/// stdout.
fn plugin_test(folder: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_robohost"))
        .current_dir(folder)
        .arg("--config")
        .arg(patient_config())
        .args(["plugin", "test"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), stdout)
}

#[test]
fn a_new_plugin_in_each_language_builds_passes_its_test_packs_and_installs() {
    // Kept between runs, so a Rust plugin's build folder is reused.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new");
    let (key, db) = trusting_portal(&root);

    for lang in ["rust", "python", "js", "c"] {
        let folder = new_plugin(
            &root.join(lang),
            "hello-robot",
            &["--lang", lang, "--publisher", "acme"],
        );
        if lang == "rust" {
            assert_sdk_unpacked(&folder);
        }

        let out = robohost_in(&folder, &["plugin", "test"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("ok     ./tests/greets.json") && stdout.contains("1 of 1 cases passed"),
            "{lang}: {stdout}"
        );

        // A case that does not hold fails, saying where.
        let case = std::fs::read_to_string(folder.join("tests/greets.json")).unwrap();
        write(
            &folder.join("tests"),
            "wrong.json",
            &case.replace("\"text\": \"Hi, ACME!\"", "\"text\": \"Bye\""),
        );
        let (passed, stdout) = plugin_test(&folder);
        assert!(!passed, "{lang}: {stdout}");
        assert!(
            stdout.contains("FAILED ./tests/wrong.json\n  returns: expected {\"text\":\"Bye\"}"),
            "{lang}: {stdout}"
        );
        std::fs::remove_file(folder.join("tests/wrong.json")).unwrap();

        robohost_in(&folder, &["plugin", "pack", "--key", key.to_str().unwrap()]);
        let package = folder.join("build/hello-robot-0.1.0.rhpkg");
        let approve = "set-fields,write:lead,write:deal,write:contact,write:company,field:UF_GREETING";
        let out = robohost_in(
            &root,
            &[
                "package",
                "install",
                package.to_str().unwrap(),
                "--approve",
                approve,
                "--database-url",
                &db,
            ],
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        assert_eq!(report["signed_by"], "acme", "{lang}");
        assert_eq!(report["version"], "0.1.0", "{lang}");
    }
}

#[test]
fn a_new_trigger_plugin_in_each_language_builds_passes_its_tests_packs_and_installs() {
    // Kept between runs, so a Rust plugin's build folder is reused.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new-trigger");
    let (key, db) = trusting_portal(&root);

    for lang in ["rust", "python", "js", "c"] {
        let folder = new_plugin(
            &root.join(lang),
            "form-hook",
            &["--lang", lang, "--world", "trigger", "--publisher", "acme"],
        );
        if lang == "rust" {
            assert_sdk_unpacked(&folder);
        }
        let manifest = std::fs::read_to_string(folder.join("robohost.toml")).unwrap();
        assert!(
            manifest.contains("[[triggers]]\ncomponent = \"form-hook.wasm\"\ncodes = [\"form_hook\"]"),
            "{lang}: {manifest}"
        );

        // Its own cases pass, and so does one refusing another method.
        write(
            &folder.join("tests"),
            "get.json",
            r#"{"method": "GET", "body": {"email": "ann@example.com"}, "expect": {"failure": "method"}}"#,
        );
        let (passed, stdout) = plugin_test(&folder);
        assert!(passed, "{lang}: {stdout}");
        for case in ["get", "no-email", "submitted"] {
            assert!(
                stdout.contains(&format!("ok     ./tests/{case}.json")),
                "{lang}: {stdout}"
            );
        }
        assert!(stdout.contains("3 of 3 cases passed"), "{lang}: {stdout}");

        // Cases that do not hold fail, saying where: a hit's data, and the
        // failure's code.
        let case = std::fs::read_to_string(folder.join("tests/submitted.json")).unwrap();
        write(
            &folder.join("tests"),
            "wrong-hit.json",
            &case.replace("\"MESSAGE\": \"Перезвоните мне\"", "\"MESSAGE\": \"Bye\""),
        );
        write(
            &folder.join("tests"),
            "wrong-failure.json",
            r#"{"body": "not json", "expect": {"failure": "method"}}"#,
        );
        let (passed, stdout) = plugin_test(&folder);
        assert!(!passed, "{lang}: {stdout}");
        assert!(
            stdout.contains("FAILED ./tests/wrong-hit.json\n  hits: expected [{")
                && stdout.contains("\"MESSAGE\":\"Bye\""),
            "{lang}: {stdout}"
        );
        assert!(
            stdout.contains("FAILED ./tests/wrong-failure.json\n  failure: expected \"method\"\n  failure: got      {")
                && stdout.contains("\"code\":\"bad_payload\""),
            "{lang}: {stdout}"
        );
        assert!(stdout.contains("3 of 5 cases passed"), "{lang}: {stdout}");
        for case in ["get", "wrong-hit", "wrong-failure"] {
            std::fs::remove_file(folder.join(format!("tests/{case}.json"))).unwrap();
        }

        robohost_in(&folder, &["plugin", "pack", "--key", key.to_str().unwrap()]);
        let package = folder.join("build/form-hook-0.1.0.rhpkg");
        // It requests nothing, so there is nothing to approve.
        let out = robohost_in(
            &root,
            &["package", "install", package.to_str().unwrap(), "--database-url", &db],
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        assert_eq!(report["signed_by"], "acme", "{lang}");
        assert_eq!(report["plugins"], serde_json::json!(["form-hook"]), "{lang}");
    }
}

/// The example trigger plugins are package folders: each passes its own
/// test cases in the sandbox, packs and installs. (Their components are
/// the ones the tests' build made; a folder names its own with `[build]`.)
#[test]
fn the_example_trigger_packages_pass_their_cases_pack_and_install() {
    let root = tempdir("examples");
    let key = root.join("robohost.key");
    let public = String::from_utf8(robohost_in(&root, &["package", "keygen", key.to_str().unwrap()]).stdout).unwrap();
    let db = format!("sqlite://{}", root.join("portal.sqlite").display());
    robohost_in(
        &root,
        &["package", "trust", "robohost", public.trim(), "--database-url", &db],
    );
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&plugins)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("robohost.toml").is_file())
        .collect();
    examples.sort();
    let names: Vec<_> = examples.iter().map(|dir| dir.file_name().unwrap().to_owned()).collect();
    assert_eq!(
        names,
        ["call-notice", "mail-notice", "messenger-notice", "payment-notice"]
    );

    for example in examples {
        let name = example.file_name().unwrap().to_string_lossy().replace('-', "_");
        let folder = root.join(&name);
        std::fs::create_dir_all(folder.join("tests")).unwrap();
        let manifest = std::fs::read_to_string(example.join("robohost.toml")).unwrap();
        write(
            &folder,
            "robohost.toml",
            &format!("{manifest}\n[build]\ncomponent = \"built.wasm\"\n"),
        );
        std::fs::copy(plugin_path(&name), folder.join("built.wasm")).unwrap();
        let cases: Vec<PathBuf> = std::fs::read_dir(example.join("tests"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(cases.len() >= 3, "{name}: a hit, an event firing nothing and a refusal");
        for case in &cases {
            std::fs::copy(case, folder.join("tests").join(case.file_name().unwrap())).unwrap();
        }
        let (passed, stdout) = plugin_test(&folder);
        let all = format!("{0} of {0} cases passed", cases.len());
        assert!(passed && stdout.contains(&all), "{name}: {stdout}");

        robohost_in(&folder, &["plugin", "pack", "--key", key.to_str().unwrap()]);
        let package = folder.join(format!("build/{name}-0.1.0.rhpkg"));
        let out = robohost_in(
            &root,
            &["package", "install", package.to_str().unwrap(), "--database-url", &db],
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        assert_eq!(report["signed_by"], "robohost", "{name}");
        assert_eq!(report["plugins"], serde_json::json!([name]));
    }
}

#[test]
fn a_folder_naming_a_component_built_elsewhere_tests_and_packs_it() {
    let dir = tempdir("prebuilt");
    let folder = dir.join("paid");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(folder.join("zig-out/bin")).unwrap();
    std::fs::create_dir_all(folder.join("tests")).unwrap();
    std::fs::copy(plugin_path("payment_notice"), folder.join("zig-out/bin/trigger.wasm")).unwrap();
    write(
        &folder,
        "robohost.toml",
        "[package]\nname = \"paid\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\n\
         [build]\ncomponent = \"zig-out/bin/trigger.wasm\"\n\n\
         [[triggers]]\ncomponent = \"payment-notice.wasm\"\ncodes = [\"payment_received\"]\n",
    );
    write(
        &folder.join("tests"),
        "paid.json",
        r#"{
  "headers": {"Content-Type": "application/json"},
  "body": "{\"event\": \"payment.succeeded\", \"payment\": {\"id\": \"pay_1\", \"amount\": \"1500.00\", \"currency\": \"RUB\", \"order_id\": \"deal:42\", \"paid_at\": \"2026-11-25T10:00:00Z\"}}",
  "expect": {
    "outcome": {"outcome": "success"},
    "hits": [{
      "trigger": "payment_received",
      "target": {"entity": {"kind": "deal", "id": 42}},
      "data": {"AMOUNT": {"money": "1500.00 RUB"}, "PAYMENT_ID": "pay_1", "PAID_AT": {"datetime": "2026-11-25T10:00:00.000Z"}}
    }]
  }
}"#,
    );
    write(
        &folder.join("tests"),
        "refund.json",
        r#"{"body": {"event": "refund.succeeded"}, "expect": {"outcome": {"outcome": "success"}, "hits": []}}"#,
    );
    write(
        &folder.join("tests"),
        "get.json",
        r#"{"method": "GET", "expect": {"failure": "method"}}"#,
    );

    let out = robohost_in(&folder, &["plugin", "build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("built by another toolchain"), "{stderr}");
    let out = robohost_in(&folder, &["plugin", "test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 of 3 cases passed"), "{stdout}");

    // Packed under the manifest entry's name, without `[build]`: the host
    // takes no table it does not know.
    let package = dir.join("paid.rhpkg");
    robohost_in(&folder, &["plugin", "pack", "--output", package.to_str().unwrap()]);
    let db = format!("sqlite://{}", dir.join("portal.sqlite").display());
    let _ = std::fs::remove_file(dir.join("portal.sqlite"));
    robohost_in(&dir, &["package", "unsigned", "allow", "--database-url", &db]);
    let out = robohost_in(
        &dir,
        &["package", "install", package.to_str().unwrap(), "--database-url", &db],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["plugins"], serde_json::json!(["paid"]));

    // A core module is no component: the author is told what to do.
    std::fs::write(folder.join("zig-out/bin/trigger.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_robohost"))
        .current_dir(&folder)
        .args(["plugin", "test"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "trigger.wasm is a core WebAssembly module, not a component: make it a component of the trigger world"
        ),
        "{stderr}"
    );
}

#[test]
fn a_component_sharing_functions_with_one_compiled_before_reuses_them() {
    let dir = tempdir("functions");
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let config = write(
        &dir,
        "robohost.toml",
        &format!("[sandbox]\ncache-dir = {:?}\n", cache.display().to_string()),
    );
    let describe = |plugin: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_robohost"))
            .args(["--config", &config, "robot", "describe", "--plugin"])
            .arg(plugin)
            .output()
            .expect("running robohost");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // Each cached function file and its inode: a use touches the file's
    // time, while writing it again would make a new file.
    let functions = || -> std::collections::BTreeMap<std::ffi::OsString, u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir(cache.join("functions"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name(), e.metadata().unwrap().ino()))
            .collect()
    };
    describe(&plugin_path("rf_segmentation"));
    let compiled = functions();
    assert!(compiled.len() > 10, "{} functions cached", compiled.len());

    // The same code with another custom section: another component, whose
    // functions all come from the cache.
    let mut variant = std::fs::read(plugin_path("rf_segmentation")).unwrap();
    variant.extend_from_slice(&[0, 8, 7]);
    variant.extend_from_slice(b"variant");
    let path = dir.join("variant.wasm");
    std::fs::write(&path, variant).unwrap();
    describe(&path);
    // A function taken from the cache is not written again.
    let after = functions();
    let kept = compiled
        .iter()
        .filter(|(name, at)| after.get(*name) == Some(at))
        .count();
    assert!(
        kept * 10 >= compiled.len() * 9,
        "only {kept} of {} functions reused",
        compiled.len()
    );
    let artifacts = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "functions")
        .flat_map(|e| std::fs::read_dir(e.path()).unwrap())
        .count();
    assert_eq!(artifacts, 2, "two components compiled");
}

#[test]
fn unsigned_packages_install_only_where_the_admin_allows_them() {
    let dir = tempdir("unsigned");
    let folder = dir.join("rf");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(plugin_path("rf_segmentation"), folder.join("rf.wasm")).unwrap();
    write(
        &folder,
        "robohost.toml",
        "[package]\nname = \"rf\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\n\
         [capabilities]\nhost = [\"set-fields\"]\nwrite = [\"contact\"]\nfields = [\"UF_RF_SEGMENT\"]\n\n\
         [[robots]]\ncomponent = \"rf.wasm\"\ncodes = [\"rf_segment\"]\n",
    );
    let package = dir.join("rf.rhpkg").display().to_string();
    let out = robohost(&["package", "pack", &folder.display().to_string(), "--output", &package]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = format!("sqlite://{}", dir.join("portal.sqlite").display());
    let _ = std::fs::remove_file(dir.join("portal.sqlite"));
    let install = || {
        let approve = "set-fields,write:contact,field:UF_RF_SEGMENT";
        robohost(&[
            "package",
            "install",
            &package,
            "--approve",
            approve,
            "--database-url",
            &db,
        ])
    };
    let out = install();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("the package is not signed"), "{stderr}");

    let out = robohost(&["package", "unsigned", "allow", "--database-url", &db]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = install();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["signed_by"], serde_json::Value::Null);
}

#[test]
fn a_component_rejected_after_compiling_in_a_worker_leaves_no_cache() {
    // A trigger component described as a robot compiles, then fails to link.
    let out = describe_with("rejected", "", &plugin_path("call_notice"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("does not fit the robot world"), "{stderr}");
    let cache = tempdir("rejected").join("cache");
    assert_eq!(
        robohost_tests::files_and_bytes(&cache),
        (0, 0),
        "the worker's compiled functions are gone too"
    );
}
