//! Hostile plugins against a running host: a plugin that breaks at load,
//! robots that wait, flood or hand over malformed data. Each fails only
//! itself; the host keeps serving and the next good robot runs.

use std::time::{Duration, Instant};

use robohost::domain::Digest;
use robohost::storage::StoredPlugin;
use robohost_tests::db::Db;
use robohost_tests::http::{Server, server};
use robohost_tests::*;
use serde_json::json;

/// The `general` pipeline with a robot `robot` of plugin `plugin` on NEW,
/// and the good `assign_by_amount` robot after it.
async fn portal_with(s: &Server, plugin: &str, robot: &str) {
    s.general_pipeline().await;
    s.install("assign_by_amount", "change-responsible,add-comment").await;
    for (plugin, robot, props) in [
        (plugin, robot, json!({})),
        (
            "assign_by_amount",
            "assign_by_amount",
            json!({"bounds": [{"decimal": "1000"}], "users": [{"user": 7}, {"user": 8}]}),
        ),
    ] {
        s.json(
            "POST",
            "/api/pipelines/general/stages/NEW/robots",
            &s.admin,
            json!({"plugin": plugin, "robot": robot, "properties": props}),
        )
        .await
        .expect(201);
    }
}

async fn a_plugin_that_breaks_at_load_leaves_the_host_serving(db: Db) {
    let s = server(db).await;
    s.install("hostile", "").await;
    portal_with(&s, "hostile", "panic").await;
    // The plugin loaded when it was installed; by now its `describe` waits
    // forever (as one that checks the date might). Another process stored
    // it, so this one finds it when it looks for changes.
    let wasm = std::fs::read(plugin_path("hostile_describe")).unwrap();
    let stored = StoredPlugin {
        name: "hostile".into(),
        digest: Digest::of(&wasm),
        wasm,
        grants: Vec::new(),
        webhook: None,
        fuel: Default::default(),
        version: None,
        world: Default::default(),
    };
    let mut tx = s.engine.store().begin().await.unwrap();
    tx.put_plugin(&stored, s.engine.now()).await.unwrap();
    tx.commit().await.unwrap();

    // A host starting on this database starts, without that plugin.
    let started = Instant::now();
    let restarted = robohost::engine::Engine::new(
        s.engine.store().clone(),
        robohost_tests::db::shared_sandbox(),
        s.clock.clone(),
        robohost::engine::EngineConfig::default(),
    )
    .await
    .expect("a host with a broken plugin starts");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let broken = restarted.broken("hostile").expect("marked broken");
    assert!(broken.reason.contains("deadline exceeded"), "{}", broken.reason);

    // The running host sees it too, and keeps serving.
    s.engine.refresh().await.unwrap();
    let plugins = s.get("/api/plugins", &s.admin).await.expect(200);
    let hostile = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hostile")
        .unwrap();
    let reason = hostile["broken"].as_str().expect("the reason is listed");
    assert!(
        reason.contains("hostile failed while describing itself: deadline exceeded"),
        "{reason}"
    );

    // Its robot fails with the reason; the good robot after it runs.
    let deal = s.deal("NEW", "5000").await;
    s.engine.run_until_idle().await.unwrap();
    let runs = s.runs(deal).await;
    let good = runs
        .iter()
        .find(|r| r["status"] == "succeeded")
        .expect("the good robot ran");
    assert_eq!(good["attempts"], 1, "{runs:?}");
    let failed = runs
        .iter()
        .find(|r| r["status"] == "dead")
        .expect("the broken robot failed");
    assert_eq!(failed["report"]["outcome"]["outcome"], "host-error", "{failed}");
    let message = failed["report"]["outcome"]["message"].as_str().unwrap();
    assert!(message.contains("is installed but does not load"), "{message}");

    // An admin removes it, disabling the robot that used it.
    s.send("DELETE", "/api/plugins/hostile", Some(&s.admin), None, "")
        .await
        .error(422, "invalid", Some("force"), "is used by robots");
    let removed = s
        .send("DELETE", "/api/plugins/hostile?force=true", Some(&s.admin), None, "")
        .await
        .expect(200);
    assert_eq!(removed["disabled_robots"].as_array().unwrap().len(), 1);
    assert!(s.engine.broken("hostile").is_none());
    let plugins = s.get("/api/plugins", &s.admin).await.expect(200);
    assert!(plugins.as_array().unwrap().iter().all(|p| p["name"] != "hostile"));
    s.send("DELETE", "/api/plugins/hostile", Some(&s.admin), None, "")
        .await
        .error(404, "not_found", None, "plugin `hostile`");
}

async fn an_upload_whose_describe_waits_is_refused_and_the_host_serves_on(db: Db) {
    let s = server(db).await;
    let wasm = std::fs::read(plugin_path("hostile_describe")).unwrap();
    let started = Instant::now();
    let reply = s
        .send(
            "PUT",
            "/api/plugins/slow",
            Some(&s.admin),
            Some("application/wasm"),
            wasm,
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    reply.error(
        422,
        "bad_plugin",
        None,
        "slow failed while describing itself: deadline exceeded",
    );
    let plugins = s.get("/api/plugins", &s.admin).await.expect(200);
    assert!(plugins.as_array().unwrap().iter().all(|p| p["name"] != "slow"));
    // A good robot runs right after.
    s.install("hostile", "").await;
    portal_with(&s, "hostile", "sleep_forever").await;
    let deal = s.deal("NEW", "5000").await;
    s.engine.run_until_idle().await.unwrap();
    let runs = s.runs(deal).await;
    assert!(runs.iter().any(|r| r["status"] == "succeeded"), "{runs:?}");
}

async fn a_run_the_guest_ruined_ends_at_once_and_blames_it(db: Db) {
    let s = server(db).await;
    s.install("hostile", "").await;
    portal_with(&s, "hostile", "invalid_utf8").await;
    let deal = s.deal("NEW", "5000").await;
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 2);
    let runs = s.runs(deal).await;
    let dead = runs
        .iter()
        .find(|r| r["status"] == "dead")
        .expect("not retried: dead at once");
    assert_eq!(dead["attempts"], 1, "{dead}");
    let run = s.get(&format!("/api/runs/{}", dead["id"]), &s.admin).await.expect(200);
    assert_eq!(run["report"]["outcome"]["outcome"], "guest-trap", "{run}");
    assert_eq!(run["report"]["blame"], "guest", "{run}");
    assert!(runs.iter().any(|r| r["status"] == "succeeded"), "{runs:?}");
}

async fn a_waiting_robot_holds_no_worker_past_its_deadline(db: Db) {
    let s = server(db).await;
    s.install("hostile", "").await;
    portal_with(&s, "hostile", "sleep_forever").await;
    let deal = s.deal("NEW", "5000").await;
    let started = Instant::now();
    s.engine.run_until_idle().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let runs = s.runs(deal).await;
    let dead = runs.iter().find(|r| r["status"] == "dead").expect("dead at once");
    assert_eq!(dead["attempts"], 1);
    let run = s.get(&format!("/api/runs/{}", dead["id"]), &s.admin).await.expect(200);
    assert_eq!(run["report"]["outcome"]["outcome"], "deadline-exceeded", "{run}");
    assert!(runs.iter().any(|r| r["status"] == "succeeded"), "{runs:?}");
}

async fn floods_leave_small_records_and_the_host_serving(db: Db) {
    let s = server(db).await;
    s.install("hostile", "add-comment").await;
    s.general_pipeline().await;
    let floods = [
        "empty_log_flood",
        "denied_flood",
        "big_effects",
        "lookup_flood",
        "handle_flood",
    ];
    for robot in floods {
        s.json(
            "POST",
            "/api/pipelines/general/stages/NEW/robots",
            &s.admin,
            json!({"plugin": "hostile", "robot": robot, "properties": {}}),
        )
        .await
        .expect(201);
    }
    let before = peak_kib();
    let deal = s.deal("NEW", "5000").await;
    s.engine.run_until_idle().await.unwrap();
    let runs = s.runs(deal).await;
    assert_eq!(runs.len(), floods.len(), "{runs:?}");
    for listed in &runs {
        let reply = s.get(&format!("/api/runs/{}", listed["id"]), &s.admin).await;
        let run = reply.expect(200);
        // A record the size of its budget (1 MiB), not of the flood.
        assert!(
            reply.body.len() < 2 << 20,
            "a record of {} bytes: {}",
            reply.body.len(),
            run["report"]["robot"]
        );
        assert_eq!(
            (run["status"].as_str(), run["attempts"].as_u64()),
            (Some("dead"), Some(1)),
            "{}",
            run["report"]["outcome"]
        );
        let outcome = run["report"]["outcome"]["outcome"].as_str().unwrap();
        assert!(matches!(outcome, "output-limit" | "host-call-limit"), "{outcome}");
    }
    let grown = peak_kib().saturating_sub(before);
    assert!(grown < 256 * 1024, "peak resident memory grew by {grown} KiB");
    // Served right after.
    s.get("/api/plugins", &s.admin).await.expect(200);
}

robohost_tests::on_both!(
    floods_leave_small_records_and_the_host_serving,
    a_plugin_that_breaks_at_load_leaves_the_host_serving,
    an_upload_whose_describe_waits_is_refused_and_the_host_serves_on,
    a_run_the_guest_ruined_ends_at_once_and_blames_it,
    a_waiting_robot_holds_no_worker_past_its_deadline,
);
