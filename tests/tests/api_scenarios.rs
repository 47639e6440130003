//! The engine's scenarios (`engine.rs`) through the HTTP API: everything a
//! user does (pipeline, calendar, plugins, robots, triggers, entities,
//! moves, events) and everything checked (entities, runs, timelines) goes
//! over HTTP to a real server with real plugins, on SQLite and on
//! PostgreSQL. Only time and the worker are the test's: it moves the manual
//! clock and calls `run_until_idle`.

use chrono::Duration;
use robohost::domain::{Capability, EntityRef, Timestamp};
use robohost_tests::db::Db;
use robohost_tests::fixtures::{SCENARIO_PLUGINS, at, calendar};
use robohost_tests::http::{Server, server};
use serde_json::{Value, json};

/// The time a JSON body holds, such as a run's `due_at`.
fn time(value: &Value) -> Timestamp {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"))
}

/// The engine scenarios' portal (`fixtures::portal`), set up by an admin
/// over HTTP.
async fn portal(db: Db) -> Server {
    let s = server(db).await;
    s.general_pipeline().await;
    s.json("PUT", "/api/calendar", &s.admin, calendar()).await.expect(200);
    let all = Capability::ALL.map(Capability::as_str).join(",");
    for name in SCENARIO_PLUGINS {
        s.install(name, &all).await;
    }
    robohost_tests::declare(&s.engine, &[("deal", "UF_ECHO", "text")]).await;
    s
}

/// Places a robot on a stage of `general`; returns its id.
async fn robot(s: &Server, stage: &str, robot: Value) -> u64 {
    let path = format!("/api/pipelines/general/stages/{stage}/robots");
    let placed = s.json("POST", &path, &s.admin, robot).await.expect(201);
    placed["id"].as_u64().unwrap()
}

/// Places a trigger on a stage of `general`.
async fn trigger(s: &Server, stage: &str, code: &str, allow_backwards: bool) {
    let path = format!("/api/pipelines/general/stages/{stage}/triggers");
    let trigger = json!({"code": code, "allow_backwards": allow_backwards});
    s.json("POST", &path, &s.admin, trigger).await.expect(201);
}

/// One run, read by its id.
async fn run(s: &Server, run: &Value) -> Value {
    let id = run["id"].as_u64().unwrap();
    s.get(&format!("/api/runs/{id}"), &s.admin).await.expect(200)
}

async fn timeline(s: &Server, id: EntityRef) -> Value {
    s.get(&format!("/api/entities/deal/{}/timeline", id.id), &s.admin)
        .await
        .expect(200)
}

/// The names of the deal's events, oldest first.
async fn events(s: &Server, id: EntityRef) -> Vec<String> {
    let timeline = timeline(s, id).await;
    let events = timeline["events"].as_array().unwrap();
    events.iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect()
}

/// The `UF_ECHO` field the bench `echo` robot sets (`null` while unset).
async fn echo(s: &Server, id: EntityRef) -> Value {
    s.entity(id).await["custom_fields"]["UF_ECHO"].clone()
}

async fn stage_entry_runs_its_robots_and_their_effects_show(db: Db) {
    let s = portal(db).await;
    let robot_id = robot(
        &s,
        "NEW",
        json!({"plugin": "assign_by_amount", "robot": "assign_by_amount",
            "properties": {"bounds": [{"decimal": "100000"}], "users": [{"user": 7}, {"user": 8}]}}),
    )
    .await;
    let id = s.deal("NEW", "250000").await;
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 1);
    assert_eq!(s.entity(id).await["responsible"], 8);
    let timeline = timeline(&s, id).await;
    let comment = timeline["comments"][0]["text"].as_str().unwrap();
    assert!(comment.contains("band 2 of 2"), "{timeline}");
    let runs = s.runs(id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["robot_id"], robot_id);
    let run = run(&s, &runs[0]).await;
    assert_eq!(run["report"]["outcome"]["outcome"], "success");
    assert!(run["report"]["fuel_used"].as_u64().unwrap() > 0, "{run}");
    assert_eq!(
        events(&s, id).await,
        ["created", "stage-entered", "responsible-changed"]
    );
}

async fn working_time_delays_skip_the_weekend_and_a_holiday(db: Db) {
    let s = portal(db).await;
    robot(
        &s,
        "NEW",
        json!({"plugin": "bench", "robot": "echo", "properties": {"text": "later"},
            "timing": {"delay_seconds": 10800, "working_time": true}}),
    )
    .await;
    // Friday 17:00: 1 working hour left, then the weekend and Monday's holiday.
    s.clock.set(at("2026-11-27T17:00:00+03:00"));
    let id = s.deal("NEW", "100").await;
    let queued = &s.runs(id).await[0];
    assert_eq!(queued["status"], "queued");
    assert_eq!(time(&queued["due_at"]), at("2026-12-01T11:00:00+03:00"));
    s.clock.set(at("2026-12-01T10:59:59+03:00"));
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 0);
    assert_eq!(echo(&s, id).await, Value::Null);
    s.clock.set(at("2026-12-01T11:00:00+03:00"));
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 1);
    assert_eq!(echo(&s, id).await, "later");
    assert_eq!(run(&s, queued).await["status"], "succeeded");
}

async fn leaving_the_stage_cancels_a_pending_delayed_robot(db: Db) {
    let s = portal(db).await;
    robot(
        &s,
        "NEW",
        json!({"plugin": "bench", "robot": "echo", "title": "Remind the manager", "properties": {"text": "too late"},
            "timing": {"delay_seconds": 86400}}),
    )
    .await;
    let id = s.deal("NEW", "100").await;
    s.clock.advance(Duration::hours(1));
    assert_eq!(s.move_to(id, "WORK").await["stage"], "WORK");
    s.clock.advance(Duration::days(2));
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 0);
    let runs = s.runs(id).await;
    assert_eq!(runs[0]["status"], "cancelled", "{runs:?}");
    assert_eq!(
        time(&runs[0]["finished_at"]),
        at("2026-11-25T11:00:00+03:00"),
        "cancelled by the move, not when it fell due"
    );
    // The record says which robot and why, as the admin named it.
    let report = &runs[0]["report"];
    assert_eq!(report["reason"], json!({"reason": "left-stage"}), "{report}");
    assert_eq!(
        report["robot"],
        json!({"title": "Remind the manager", "plugin": "bench", "code": "echo"}),
        "{report}"
    );
    assert_eq!(report["attempt"], 0, "{report}");
    assert!(report.get("outcome").is_none(), "it never ran: {report}");
    assert_eq!(echo(&s, id).await, Value::Null);
}

async fn after_previous_runs_in_order_and_sees_earlier_values(db: Db) {
    let s = portal(db).await;
    let first = robot(
        &s,
        "NEW",
        json!({"plugin": "bench", "robot": "echo", "properties": {"text": "first"},
            "timing": {"delay_seconds": 60}}),
    )
    .await;
    let second = robot(
        &s,
        "NEW",
        json!({"plugin": "bench", "robot": "echo", "properties": {"text": format!("after {{=Robot.{first}.echo}}")},
            "timing": {"after_previous": true}}),
    )
    .await;
    let id = s.deal("NEW", "100").await;
    let listed = s.runs(id).await;
    let status = |runs: &[Value]| runs.iter().map(|r| r["status"].clone()).collect::<Vec<_>>();
    assert_eq!(status(&listed), ["queued", "waiting"]);
    assert_eq!([&listed[0]["robot_id"], &listed[1]["robot_id"]], [first, second]);
    assert_eq!(
        s.engine.run_until_idle().await.unwrap(),
        0,
        "nothing is due before the first robot's delay"
    );
    s.clock.advance(Duration::seconds(60));
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 2);
    assert_eq!(echo(&s, id).await, "after first");
    assert_eq!(status(&s.runs(id).await), ["succeeded", "succeeded"]);
}

async fn a_false_condition_is_skipped_with_its_reason(db: Db) {
    let s = portal(db).await;
    robot(
        &s,
        "NEW",
        json!({"plugin": "bench", "robot": "echo", "properties": {"text": "big"},
            "condition": {"compare": {"field": "OPPORTUNITY", "op": "gt", "value": {"decimal": "1000000"}}}}),
    )
    .await;
    let id = s.deal("NEW", "500").await;
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 1);
    let run = run(&s, &s.runs(id).await[0]).await;
    assert_eq!(run["status"], "skipped");
    assert_eq!(
        run["report"]["reason"],
        json!({"reason": "condition-false", "because": "OPPORTUNITY is 500 RUB, wanted > 1000000"}),
        "{run}"
    );
    assert_eq!(echo(&s, id).await, Value::Null);
}

async fn a_trapping_robot_ends_dead_at_once_with_its_error(db: Db) {
    let s = portal(db).await;
    robot(&s, "NEW", json!({"plugin": "hostile", "robot": "effects_then_panic"})).await;
    let id = s.deal("NEW", "100").await;
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 1);
    s.clock.advance(Duration::days(1));
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 0, "a trap is not retried");
    let run = run(&s, &s.runs(id).await[0]).await;
    assert_eq!(run["status"], "dead");
    assert_eq!(run["attempts"], 1);
    let report = &run["report"];
    assert_eq!(report["outcome"]["outcome"], "guest-trap", "{run}");
    assert_eq!(
        report["outcome"]["message"], "wasm trap: wasm `unreachable` instruction executed",
        "{run}"
    );
    assert!(
        report["outcome"]["frames"]
            .as_array()
            .unwrap()
            .contains(&json!("hostile::give_up")),
        "{run}"
    );
    let logs = report["logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|l| l["message"] == "robot gave up on purpose"),
        "the guest's panic message is in the last attempt's log: {run}"
    );
    assert_eq!(report["blame"], "guest");
    assert_eq!(report["effects"], json!([]), "{run}");
    assert_eq!(
        s.entity(id).await["fields"]["TITLE"],
        "Pumps",
        "a failed run's effects are not applied"
    );
}

async fn a_trigger_moves_forward_and_backward_only_when_allowed(db: Db) {
    let s = portal(db).await;
    trigger(&s, "WORK", "call", false).await;
    trigger(&s, "NEW", "reopen", false).await;
    trigger(&s, "NEW", "restart", true).await;
    let id = s.deal("NEW", "100").await;
    let integrator = s.token("integrator").await;
    let fire = async |code: &str| {
        let event = json!({"trigger": code, "entity": id.to_string()});
        let fired = s.json("POST", "/api/events", &integrator, event).await.expect(200);
        let stage = s.entity(id).await["stage"].clone();
        (fired["moved"].clone(), stage)
    };
    let (moved, stage) = fire("call").await;
    assert_eq!((&moved[0]["id"], &moved[0]["stage"]), (&json!(id.id), &json!("WORK")));
    assert_eq!(stage, "WORK");
    assert_eq!(fire("call").await, (json!([]), json!("WORK")), "already there");
    assert_eq!(fire("reopen").await, (json!([]), json!("WORK")), "not backwards");
    let (moved, stage) = fire("restart").await;
    assert_eq!(moved[0]["stage"], "NEW");
    assert_eq!(stage, "NEW");
    let events = events(&s, id).await;
    assert_eq!(events.iter().filter(|e| *e == "trigger-fired").count(), 2, "{events:?}");
}

robohost_tests::on_both!(
    stage_entry_runs_its_robots_and_their_effects_show,
    working_time_delays_skip_the_weekend_and_a_holiday,
    leaving_the_stage_cancels_a_pending_delayed_robot,
    after_previous_runs_in_order_and_sees_earlier_values,
    a_false_condition_is_skipped_with_its_reason,
    a_trapping_robot_ends_dead_at_once_with_its_error,
    a_trigger_moves_forward_and_backward_only_when_allowed,
);
