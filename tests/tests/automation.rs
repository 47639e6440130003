//! Changing a portal's automation over HTTP, on SQLite and on PostgreSQL:
//! replacing, removing and reordering the robots and triggers of a stage,
//! and removing stages and pipelines. Only time and the worker are the
//! test's: it moves the manual clock and calls `run_until_idle`.

use chrono::Duration;
use robohost::domain::{Capability, EntityRef};
use robohost_tests::db::Db;
use robohost_tests::fixtures::pipeline;
use robohost_tests::http::{Server, server};
use serde_json::{Value, json};

/// The pipeline `general` and the `bench` plugin, set up by an admin.
async fn portal(db: Db) -> Server {
    let s = server(db).await;
    s.general_pipeline().await;
    s.install("bench", &Capability::ALL.map(Capability::as_str).join(","))
        .await;
    robohost_tests::declare(&s.engine, &[("deal", "UF_ECHO", "text")]).await;
    s
}

const ROBOTS: &str = "/api/pipelines/general/stages/NEW/robots";
const TRIGGERS: &str = "/api/pipelines/general/stages/WORK/triggers";

/// Places a `bench.echo` robot on NEW that writes `text`, with `timing`.
async fn echo(s: &Server, text: &str, timing: Value) -> u64 {
    let robot = json!({"plugin": "bench", "robot": "echo", "title": text, "properties": {"text": text},
        "timing": timing});
    s.json("POST", ROBOTS, &s.admin, robot).await.expect(201)["id"]
        .as_u64()
        .unwrap()
}

/// The robots of NEW as listed.
async fn robots(s: &Server) -> Vec<Value> {
    s.get(ROBOTS, &s.admin).await.expect(200).as_array().unwrap().clone()
}

fn ids(listed: &[Value]) -> Vec<u64> {
    listed.iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

/// The status of each run on `id`, by robot id.
async fn statuses(s: &Server, id: EntityRef) -> Vec<(u64, String)> {
    let runs = s.runs(id).await;
    runs.iter()
        .map(|r| {
            (
                r["robot_id"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_robot_is_replaced_only_when_valid_and_removed(db: Db) {
    let s = portal(db).await;
    let id = echo(&s, "first", json!({})).await;
    let path = format!("{ROBOTS}/{id}");

    let edited = json!({"plugin": "bench", "robot": "echo", "title": "Second", "properties": {"text": "second"},
        "timing": {"delay_seconds": 60}});
    let reply = s.json("PUT", &path, &s.admin, edited).await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    let listed = robots(&s).await;
    assert_eq!(ids(&listed), [id], "the robot keeps its id");
    assert_eq!(listed[0]["title"], "Second");
    assert_eq!(listed[0]["properties"]["text"], "second", "{listed:?}");
    assert_eq!(listed[0]["timing"]["delay_seconds"], 60);

    // Bad input is refused with its field, and nothing changes.
    let unknown = json!({"plugin": "bench", "robot": "echo", "properties": {"nope": "x"}});
    s.json("PUT", &path, &s.admin, unknown)
        .await
        .error(422, "invalid", Some("properties.nope"), "no property `nope`");
    let far = json!({"plugin": "bench", "robot": "echo", "timing": {"delay_seconds": 999_999_999_999u64}});
    s.json("PUT", &path, &s.admin, far)
        .await
        .error(422, "invalid", Some("timing.delay_seconds"), "ten years");
    assert_eq!(robots(&s).await, listed, "nothing was saved");

    // Another stage's robot, or none, is not found; a manager may not edit.
    let body = json!({"plugin": "bench", "robot": "echo"});
    s.json(
        "PUT",
        "/api/pipelines/general/stages/WORK/robots/1",
        &s.admin,
        body.clone(),
    )
    .await
    .error(404, "not_found", None, "robot 1 on stage `WORK`");
    s.json("PUT", &format!("{ROBOTS}/999"), &s.admin, body.clone())
        .await
        .error(404, "not_found", None, "robot 999");
    let manager = s.token("manager").await;
    assert_eq!(s.json("PUT", &path, &manager, body).await.status, 403);
    assert_eq!(s.send("DELETE", &path, Some(&manager), None, "").await.status, 403);

    let reply = s.send("DELETE", &path, Some(&s.admin), None, "").await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    assert!(robots(&s).await.is_empty());
    s.send("DELETE", &path, Some(&s.admin), None, "")
        .await
        .error(404, "not_found", None, &format!("robot {id}"));
}

async fn removing_a_robot_cancels_its_queued_run_and_starts_the_next(db: Db) {
    let s = portal(db).await;
    let later = echo(&s, "later", json!({"delay_seconds": 3600})).await;
    let next = echo(&s, "next", json!({"after_previous": true})).await;
    let deal = s.deal("NEW", "100").await;
    assert_eq!(
        statuses(&s, deal).await,
        [(later, "queued".into()), (next, "waiting".into())]
    );

    let reply = s
        .send("DELETE", &format!("{ROBOTS}/{later}"), Some(&s.admin), None, "")
        .await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    // The removed robot's run ends at once, naming it; the robot that
    // waited for it no longer has anything to wait for.
    assert_eq!(
        statuses(&s, deal).await,
        [(later, "cancelled".into()), (next, "queued".into())]
    );
    let runs = s.runs(deal).await;
    let report = &runs[0]["report"];
    assert_eq!(report["reason"], json!({"reason": "robot-removed"}), "{report}");
    assert_eq!(report["robot"]["title"], "later", "{report}");

    s.clock.advance(Duration::hours(2));
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 1, "only the next robot runs");
    assert_eq!(
        statuses(&s, deal).await,
        [(later, "cancelled".into()), (next, "succeeded".into())]
    );
    assert_eq!(s.entity(deal).await["custom_fields"]["UF_ECHO"], "next");
}

async fn a_run_whose_robot_is_gone_when_due_ends_cancelled(db: Db) {
    // A run the removal did not see (queued by another process in the
    // meantime, say) is the worker's to end: it finds no robot.
    let s = portal(db).await;
    let id = echo(&s, "gone", json!({"delay_seconds": 60})).await;
    let deal = s.deal("NEW", "100").await;
    s.engine
        .store()
        .execute(&format!("DELETE FROM robots WHERE id = {id}"))
        .await
        .unwrap();
    s.engine.reload().await.unwrap();
    s.clock.advance(Duration::minutes(2));
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 1);
    let runs = s.runs(deal).await;
    assert_eq!(runs[0]["status"], "cancelled", "{runs:?}");
    assert_eq!(runs[0]["report"]["reason"], json!({"reason": "robot-removed"}));
}

async fn robots_are_reordered_and_after_previous_follows_the_order(db: Db) {
    let s = portal(db).await;
    let one = echo(&s, "one", json!({})).await;
    let two = echo(&s, "two", json!({"after_previous": true})).await;
    let three = echo(&s, "three", json!({})).await;
    let order = format!("{ROBOTS}/order");

    let reply = s.json("PUT", &order, &s.admin, json!({"ids": [three, two, one]})).await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(ids(&robots(&s).await), [three, two, one]);
    // `two` now waits for `three`.
    let deal = s.deal("NEW", "100").await;
    let mut seen = statuses(&s, deal).await;
    seen.sort();
    assert_eq!(
        seen,
        [
            (one, "queued".into()),
            (two, "waiting".into()),
            (three, "queued".into())
        ]
    );

    // First in the stage, it waits for nothing.
    let reply = s.json("PUT", &order, &s.admin, json!({"ids": [two, three, one]})).await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    let deal = s.deal("NEW", "100").await;
    assert!(statuses(&s, deal).await.iter().all(|(_, status)| status == "queued"));

    // The list names exactly the stage's robots.
    s.json("PUT", &order, &s.admin, json!({"ids": [one, two]})).await.error(
        422,
        "invalid",
        Some("ids"),
        &format!("robot {three} of stage `NEW` missing"),
    );
    s.json("PUT", &order, &s.admin, json!({"ids": [one, two, three, 999]}))
        .await
        .error(422, "invalid", Some("ids"), "no robot 999");
    s.json("PUT", &order, &s.admin, json!({"ids": [one, two, three, one]}))
        .await
        .error(422, "invalid", Some("ids"), "twice");
    assert_eq!(ids(&robots(&s).await), [two, three, one], "nothing changed");
}

async fn a_trigger_is_replaced_only_when_valid_and_removed(db: Db) {
    let s = portal(db).await;
    let added = s
        .json("POST", TRIGGERS, &s.admin, json!({"code": "incoming_call"}))
        .await
        .expect(201);
    let path = format!("{TRIGGERS}/{}", added["id"]);

    let reply = s
        .json("PUT", &path, &s.admin, json!({"code": "paid", "allow_backwards": true}))
        .await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    let listed = s.get(TRIGGERS, &s.admin).await.expect(200);
    assert_eq!(listed[0]["id"], added["id"]);
    assert_eq!(
        (&listed[0]["code"], &listed[0]["allow_backwards"]),
        (&json!("paid"), &json!(true))
    );

    s.json("PUT", &path, &s.admin, json!({"code": "paid", "schedule": "whenever"}))
        .await
        .error(422, "invalid", Some("schedule"), "not a cron expression");
    s.json("PUT", &path, &s.admin, json!({"code": ""}))
        .await
        .error(422, "invalid", Some("code"), "needs a code");
    assert_eq!(s.get(TRIGGERS, &s.admin).await.expect(200), listed, "nothing was saved");
    s.json("PUT", &format!("{TRIGGERS}/999"), &s.admin, json!({"code": "paid"}))
        .await
        .error(404, "not_found", None, "trigger 999");

    // The trigger moves deals until it is removed.
    let deal = s.deal("NEW", "100").await;
    let event = json!({"trigger": "paid", "entity": deal.to_string()});
    s.json("POST", "/api/events", &s.admin, event.clone()).await.expect(200);
    assert_eq!(s.entity(deal).await["stage"], "WORK");
    let reply = s.send("DELETE", &path, Some(&s.admin), None, "").await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(s.get(TRIGGERS, &s.admin).await.expect(200), json!([]));
    s.send("DELETE", &path, Some(&s.admin), None, "")
        .await
        .error(404, "not_found", None, "trigger");
}

async fn a_stage_or_pipeline_with_entities_is_kept_until_they_move(db: Db) {
    let s = portal(db).await;
    s.json(
        "POST",
        "/api/pipelines/general/stages/WON/robots",
        &s.admin,
        json!({"plugin": "bench", "robot": "echo", "properties": {"text": "won"}}),
    )
    .await
    .expect(201);
    s.json(
        "POST",
        "/api/pipelines/general/stages/WON/triggers",
        &s.admin,
        json!({"code": "paid"}),
    )
    .await
    .expect(201);
    let deal = s.deal("WON", "100").await;

    s.send("DELETE", "/api/pipelines/general/stages/WON", Some(&s.admin), None, "")
        .await
        .error(409, "conflict", None, "1 deal is in stage WON; move it first");
    let mut without_won = serde_json::to_value(robohost_tests::fixtures::general()).unwrap();
    without_won["stages"]
        .as_array_mut()
        .unwrap()
        .retain(|stage| stage["code"] != "WON");
    s.json("PUT", "/api/pipelines/general", &s.admin, without_won.clone())
        .await
        .error(409, "conflict", None, "1 deal is in stage WON");
    s.get("/api/pipelines/general/stages/WON/robots", &s.admin)
        .await
        .expect(200);

    s.move_to(deal, "WORK").await;
    let reply = s
        .send("DELETE", "/api/pipelines/general/stages/WON", Some(&s.admin), None, "")
        .await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    let pipelines = s.get("/api/pipelines", &s.admin).await.expect(200);
    let stages: Vec<&Value> = pipelines[0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| &st["code"])
        .collect();
    assert_eq!(stages, ["NEW", "WORK", "LOST"]);
    s.get("/api/pipelines/general/stages/WON/robots", &s.admin).await.error(
        404,
        "not_found",
        Some("stage"),
        "stage `WON`",
    );
    // Put back, the stage has none of its old robots and triggers.
    s.general_pipeline().await;
    assert_eq!(
        s.get("/api/pipelines/general/stages/WON/robots", &s.admin)
            .await
            .expect(200),
        json!([])
    );
    assert_eq!(
        s.get("/api/pipelines/general/stages/WON/triggers", &s.admin)
            .await
            .expect(200),
        json!([])
    );

    echo(&s, "on new", json!({})).await;
    s.send("DELETE", "/api/pipelines/general", Some(&s.admin), None, "")
        .await
        .error(409, "conflict", None, "1 deal is in pipeline general; move it first");
    let other = serde_json::to_value(pipeline("other", "deal", &["OPEN"])).unwrap();
    s.json("PUT", "/api/pipelines/other", &s.admin, other).await.expect(200);
    let path = format!("/api/entities/deal/{}/move", deal.id);
    s.json("POST", &path, &s.admin, json!({"pipeline": "other", "stage": "OPEN"}))
        .await
        .expect(200);
    let reply = s
        .send("DELETE", "/api/pipelines/general", Some(&s.admin), None, "")
        .await;
    assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
    let pipelines = s.get("/api/pipelines", &s.admin).await.expect(200);
    assert_eq!(pipelines.as_array().unwrap().len(), 1);
    assert_eq!(pipelines[0]["code"], "other");
    s.send("DELETE", "/api/pipelines/general", Some(&s.admin), None, "")
        .await
        .error(404, "not_found", None, "pipeline `general`");
    // Put back, the pipeline has none of its old robots.
    s.general_pipeline().await;
    assert!(robots(&s).await.is_empty());
    s.send("DELETE", "/api/pipelines/other/stages/OPEN", Some(&s.admin), None, "")
        .await
        .error(422, "invalid", Some("stages"), "at least one stage");
}

robohost_tests::on_both!(
    a_robot_is_replaced_only_when_valid_and_removed,
    removing_a_robot_cancels_its_queued_run_and_starts_the_next,
    a_run_whose_robot_is_gone_when_due_ends_cancelled,
    robots_are_reordered_and_after_previous_follows_the_order,
    a_trigger_is_replaced_only_when_valid_and_removed,
    a_stage_or_pipeline_with_entities_is_kept_until_they_move,
);
