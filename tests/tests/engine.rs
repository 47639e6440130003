//! The engine's conformance suite: every scenario runs on SQLite and on
//! PostgreSQL, with real compiled plugins and a clock the tests move.

use std::sync::Arc;

use chrono::Duration;
use robohost::api::NewEntityRequest;
use robohost::domain::{Blame, Digest, Ignored, NotRun, Outcome, RobotNote, RunReport, RunStatus};
use robohost::domain::{
    Capability, Entity, EntityRef, FieldValue, Fields, HitTarget, RobotBinding, Timestamp, TriggerBinding, Value,
};
use robohost::engine::{Engine, EngineConfig, ManualClock};
use robohost::storage::RunEnd;
use robohost_tests::db::Db;
use robohost_tests::fixtures::{at, create, deal_request, general, json, portal, wednesday};
use robohost_tests::plugin_path;

fn robot(stage: &str, plugin: &str, code: &str, extra: &str) -> RobotBinding {
    let base = format!(
        r#"{{"id": 0, "pipeline": "general", "stage": "{stage}", "plugin": "{plugin}", "robot": "{code}"{extra}}}"#
    );
    json(&base)
}

async fn deal(engine: &Engine, stage: &str, amount: &str) -> Entity {
    create(engine, deal_request(stage, amount)).await
}

async fn field(engine: &Engine, r: EntityRef, code: &str) -> FieldValue {
    let entity = engine.store().entity(r).await.unwrap().unwrap();
    entity.field(code).cloned().unwrap_or_default()
}

fn text(s: &str) -> FieldValue {
    FieldValue::Single(Value::Text(s.into()))
}

async fn stage_entry_runs_its_robots_and_their_effects_show(db: Db) {
    let (engine, _) = portal(db).await;
    let props = r#", "properties": {"bounds": [{"decimal": "100000"}], "users": [{"user": 7}, {"user": 8}]}"#;
    engine
        .add_robot(&robot("NEW", "assign_by_amount", "assign_by_amount", props))
        .await
        .unwrap();
    let deal = deal(&engine, "NEW", "250000").await;
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    engine.move_entity(deal.reference(), None, "NEW").await.unwrap();
    assert_eq!(
        engine.run_until_idle().await.unwrap(),
        0,
        "moving to the stage it is in runs nothing again"
    );
    let stored = engine.store().entity(deal.reference()).await.unwrap().unwrap();
    assert_eq!(stored.responsible, Some(8));
    let comments = engine.store().comments(deal.reference()).await.unwrap();
    assert!(comments[0].1.contains("band 2 of 2"), "{comments:?}");
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    let report = runs[0].report.as_ref().unwrap();
    assert_eq!(report.outcome, Some(Outcome::Success));
    assert!(report.fuel_used > 0);
    assert_eq!(report.attempt, 1);
    assert_eq!(
        report.plugin,
        Some(Digest::of(&std::fs::read(plugin_path("assign_by_amount")).unwrap()))
    );
    let events: Vec<String> = engine
        .store()
        .events(deal.reference())
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e, _)| e)
        .collect();
    assert_eq!(events, ["created", "stage-entered", "responsible-changed"]);
}

async fn working_time_delays_skip_the_weekend_and_a_holiday(db: Db) {
    let (engine, clock) = portal(db).await;
    let timing = r#", "properties": {"text": "later"}, "timing": {"delay_seconds": 10800, "working_time": true}"#;
    engine.add_robot(&robot("NEW", "bench", "echo", timing)).await.unwrap();
    // Friday 17:00: 1 working hour left, then the weekend and Monday's holiday.
    clock.set(at("2026-11-27T17:00:00+03:00"));
    let deal = deal(&engine, "NEW", "100").await;
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    assert_eq!(runs[0].due_at, at("2026-12-01T11:00:00+03:00"));
    clock.set(at("2026-12-01T10:59:59+03:00"));
    assert_eq!(engine.run_until_idle().await.unwrap(), 0);
    assert_eq!(field(&engine, deal.reference(), "UF_ECHO").await, FieldValue::Empty);
    clock.set(at("2026-12-01T11:00:00+03:00"));
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    assert_eq!(field(&engine, deal.reference(), "UF_ECHO").await, text("later"));
}

async fn leaving_the_stage_cancels_a_pending_delayed_robot(db: Db) {
    let (engine, clock) = portal(db).await;
    let timing = r#", "properties": {"text": "too late"}, "timing": {"delay_seconds": 86400}"#;
    engine.add_robot(&robot("NEW", "bench", "echo", timing)).await.unwrap();
    let deal = deal(&engine, "NEW", "100").await;
    clock.advance(Duration::hours(1));
    engine.move_entity(deal.reference(), None, "WORK").await.unwrap();
    clock.advance(Duration::days(2));
    assert_eq!(engine.run_until_idle().await.unwrap(), 0);
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Cancelled);
    let report = runs[0].report.as_ref().expect("a cancelled run says why");
    assert_eq!(report.reason, Some(NotRun::LeftStage));
    assert_eq!(
        (report.robot.plugin.as_str(), report.robot.code.as_str()),
        ("bench", "echo")
    );
    assert_eq!(field(&engine, deal.reference(), "UF_ECHO").await, FieldValue::Empty);
}

async fn after_previous_runs_in_order_and_sees_earlier_values(db: Db) {
    let (engine, clock) = portal(db).await;
    let first = engine
        .add_robot(&robot(
            "NEW",
            "bench",
            "echo",
            r#", "properties": {"text": "first"}, "timing": {"delay_seconds": 60}"#,
        ))
        .await
        .unwrap();
    let second =
        format!(r#", "properties": {{"text": "after {{=Robot.{first}.echo}}"}}, "timing": {{"after_previous": true}}"#);
    engine.add_robot(&robot("NEW", "bench", "echo", &second)).await.unwrap();
    let deal = deal(&engine, "NEW", "100").await;
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    assert_eq!(
        [runs[0].status, runs[1].status],
        [RunStatus::Queued, RunStatus::Waiting]
    );
    assert_eq!(
        engine.run_until_idle().await.unwrap(),
        0,
        "nothing is due before the first robot's delay"
    );
    clock.advance(Duration::seconds(60));
    assert_eq!(engine.run_until_idle().await.unwrap(), 2);
    assert_eq!(field(&engine, deal.reference(), "UF_ECHO").await, text("after first"));
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
}

async fn a_false_condition_is_skipped_with_its_reason(db: Db) {
    let (engine, _) = portal(db).await;
    let condition = r#", "properties": {"text": "big"},
        "condition": {"compare": {"field": "OPPORTUNITY", "op": "gt", "value": {"decimal": "1000000"}}}"#;
    engine
        .add_robot(&robot("NEW", "bench", "echo", condition))
        .await
        .unwrap();
    let deal = deal(&engine, "NEW", "500").await;
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Skipped);
    let reason = runs[0].report.as_ref().unwrap().reason.clone();
    let Some(NotRun::ConditionFalse { because }) = reason else {
        panic!("skipped for its condition: {reason:?}")
    };
    assert!(because.contains("OPPORTUNITY") && because.contains("500"), "{because}");
    assert_eq!(field(&engine, deal.reference(), "UF_ECHO").await, FieldValue::Empty);
}

async fn a_trapping_robot_ends_dead_at_once_with_its_error(db: Db) {
    let (engine, clock) = portal(db).await;
    engine
        .add_robot(&robot("NEW", "hostile", "effects_then_panic", ""))
        .await
        .unwrap();
    let deal = deal(&engine, "NEW", "100").await;
    // A trap is deterministic: another attempt would trap again.
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    clock.advance(Duration::days(1));
    assert_eq!(engine.run_until_idle().await.unwrap(), 0, "not retried");
    let run = &engine.store().runs(Some(deal.reference()), 10).await.unwrap()[0];
    assert_eq!((run.status, run.attempts), (RunStatus::Dead, 1));
    let run = &engine.store().runs(Some(deal.reference()), 10).await.unwrap()[0];
    let report = run.report.as_ref().unwrap();
    assert!(matches!(report.outcome, Some(Outcome::GuestTrap { .. })), "{report:?}");
    assert_eq!(report.blame, Some(Blame::Guest));
    assert_eq!(
        field(&engine, deal.reference(), "TITLE").await,
        text("Pumps"),
        "a failed run's effects are not applied"
    );
}

async fn a_trigger_moves_forward_and_backward_only_when_allowed(db: Db) {
    let (engine, _) = portal(db).await;
    let trigger = |stage: &str, code: &str, back: bool| -> TriggerBinding {
        json(&format!(
            r#"{{"id": 0, "pipeline": "general", "stage": "{stage}", "code": "{code}", "allow_backwards": {back}}}"#
        ))
    };
    engine.add_trigger(&trigger("WORK", "call", false)).await.unwrap();
    engine.add_trigger(&trigger("NEW", "reopen", false)).await.unwrap();
    engine.add_trigger(&trigger("NEW", "restart", true)).await.unwrap();
    engine.add_trigger(&trigger("WON", "paid", false)).await.unwrap();
    let deal = deal(&engine, "NEW", "100").await;
    let target = HitTarget::Entity(deal.reference());
    let fire = async |code: &str| {
        let fired = engine.fire_trigger(code, &target, &Fields::new()).await.unwrap();
        assert_eq!(fired.len(), 1, "{code}: {fired:?}");
        assert_eq!(fired[0].entity, deal.reference());
        (fired[0].moved_to.clone(), fired[0].ignored.clone())
    };
    let behind = |stage: &str| Some(Ignored::Backwards { stage: stage.into() });
    assert_eq!(fire("call").await, (Some("WORK".into()), None));
    assert_eq!(fire("call").await, (None, behind("WORK")), "already there");
    assert_eq!(fire("reopen").await, (None, behind("WORK")), "not backwards");
    assert_eq!(fire("restart").await, (Some("NEW".into()), None));
    assert_eq!(fire("nothing").await, (None, Some(Ignored::NoTrigger)));

    // Won: no trigger takes it out of a final stage, backwards or not,
    // unless it may leave one.
    assert_eq!(fire("paid").await, (Some("WON".into()), None));
    let at_won = Some(Ignored::FinalStage { stage: "WON".into() });
    assert_eq!(fire("restart").await, (None, at_won));
    let reopen: TriggerBinding = json(
        r#"{"id": 0, "pipeline": "general", "stage": "NEW", "code": "client-called", "allow_backwards": true, "leave_final": true}"#,
    );
    engine.add_trigger(&reopen).await.unwrap();
    assert_eq!(fire("client-called").await, (Some("NEW".into()), None));

    let events = engine.store().events(deal.reference()).await.unwrap();
    let count = |name: &str| events.iter().filter(|(_, e, _)| e == name).count();
    assert_eq!(count("trigger-fired"), 4, "{events:?}");
    assert_eq!(
        count("trigger-ignored"),
        4,
        "each firing that moved nothing says why: {events:?}"
    );
    let (_, _, last_ignored) = events.iter().rfind(|(_, e, _)| e == "trigger-ignored").unwrap();
    assert_eq!(
        last_ignored["ignored"],
        serde_json::json!({"why": "final-stage", "stage": "WON"})
    );
}

async fn a_worker_whose_lease_was_taken_over_cannot_finish(db: Db) {
    let (engine, _) = portal(db).await;
    engine
        .add_robot(&robot("NEW", "bench", "echo", r#", "properties": {"text": "x"}"#))
        .await
        .unwrap();
    let deal = deal(&engine, "NEW", "100").await;
    let store = engine.store();
    let now = engine.now();
    let a = store
        .claim("worker-a", now, Timestamp(now.0 + 1_000), 10)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert!(
        store
            .claim("worker-b", now, Timestamp(now.0 + 1_000), 10)
            .await
            .unwrap()
            .is_empty(),
        "leased runs are not claimed twice"
    );
    let later = Timestamp(now.0 + 2_000);
    let b = store
        .claim("worker-b", later, Timestamp(later.0 + 1_000), 10)
        .await
        .unwrap();
    assert_eq!(b[0].run_id, a[0].run_id);
    assert!(b[0].fence > a[0].fence);
    // Both workers try to finish in one statement: only the current fence holds.
    let end = |claim: &robohost::storage::Claim| {
        let report = RunReport::failed(RobotNote::removed(), claim.attempt, Outcome::Success);
        RunEnd::new(claim.run_id, claim.fence, RunStatus::Succeeded, None, &report)
    };
    let mut tx = store.begin().await.unwrap();
    let ended = tx.end_runs(&[end(&a[0])], later).await.unwrap();
    assert!(ended.is_empty(), "the stale fence ends nothing");
    let ended = tx.end_runs(&[end(&b[0])], later).await.unwrap();
    assert_eq!(ended.into_iter().collect::<Vec<_>>(), [b[0].run_id]);
    tx.commit().await.unwrap();
    assert_eq!(
        store.runs(Some(deal.reference()), 10).await.unwrap()[0].status,
        RunStatus::Succeeded
    );
}

async fn bad_configuration_is_refused_with_the_field(db: Db) {
    let (engine, _) = portal(db).await;
    let cases = [
        (
            robot("NOPE", "bench", "echo", ""),
            "pipeline `general` has no stage `NOPE`",
        ),
        (robot("NEW", "nope", "echo", ""), "no plugin `nope` is installed"),
        (robot("NEW", "bench", "nope", ""), "plugin `bench` has no robot `nope`"),
        (
            robot("NEW", "bench", "echo", r#", "properties": {"txt": "x"}"#),
            "`properties.txt`",
        ),
        (robot("NEW", "bench", "echo", ""), "`properties.text`: is required"),
        (
            robot(
                "NEW",
                "bench",
                "echo",
                r#", "properties": {"text": "{=Docment.TITLE}"}"#,
            ),
            "unknown namespace `Docment`",
        ),
    ];
    for (binding, message) in cases {
        let e = engine.add_robot(&binding).await.unwrap_err().to_string();
        assert!(e.contains(message), "{e} should contain {message}");
    }
    let bad_kind: NewEntityRequest = json(r#"{"kind": "lead", "pipeline": "general"}"#);
    let (draft, links) = bad_kind.into_entity().unwrap();
    let e = engine.create_entity(draft, links).await.unwrap_err().to_string();
    assert!(e.contains("holds deals, not leads"), "{e}");
}

async fn a_scheduled_trigger_fires_on_its_cron_time_in_the_portal_zone(db: Db) {
    let (engine, clock) = portal(db).await;
    let trigger: TriggerBinding = json(
        r#"{"id": 0, "pipeline": "general", "stage": "WORK", "code": "monday_review", "schedule": "0 0 9 * * Mon",
            "condition": {"compare": {"field": "TITLE", "op": "eq", "value": "Pumps"}}}"#,
    );
    engine.add_trigger(&trigger).await.unwrap();
    let pumps = deal(&engine, "NEW", "100").await;
    let other: NewEntityRequest = json(r#"{"kind": "deal", "pipeline": "general", "fields": {"TITLE": "Valves"}}"#);
    let (draft, links) = other.into_entity().unwrap();
    let other = engine.create_entity(draft, links).await.unwrap();
    assert_eq!(
        engine.run_schedules().await.unwrap(),
        0,
        "the first look only sets the next time"
    );
    clock.set(at("2026-11-30T08:59:59+03:00"));
    assert_eq!(engine.run_schedules().await.unwrap(), 0);
    clock.set(at("2026-11-30T09:00:00+03:00"));
    assert_eq!(engine.run_schedules().await.unwrap(), 1);
    assert_eq!(engine.run_schedules().await.unwrap(), 0, "fired once");
    let stage = |e: Entity| e.stage;
    assert_eq!(
        stage(engine.store().entity(pumps.reference()).await.unwrap().unwrap()).as_deref(),
        Some("WORK")
    );
    assert_eq!(
        stage(engine.store().entity(other.reference()).await.unwrap().unwrap()).as_deref(),
        Some("NEW")
    );
    let bad: TriggerBinding =
        json(r#"{"id": 0, "pipeline": "general", "stage": "WORK", "code": "x", "schedule": "every day"}"#);
    let e = engine.add_trigger(&bad).await.unwrap_err().to_string();
    assert!(e.contains("`schedule`") && e.contains("not a cron expression"), "{e}");
}

async fn a_webhook_robot_runs_like_a_sandboxed_one(db: Db) {
    let (engine, clock) = portal(db).await;
    let url = robohost_tests::echo_webhook().await;
    engine
        .install_webhook("echo_hook", &url, vec![Capability::SetFields])
        .await
        .unwrap();
    engine
        .add_robot(&robot(
            "NEW",
            "echo_hook",
            "echo",
            r#", "properties": {"text": "from the web"}"#,
        ))
        .await
        .unwrap();
    let deal = deal(&engine, "NEW", "100").await;
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    assert_eq!(field(&engine, deal.reference(), "UF_ECHO").await, text("from the web"));

    // Not granted what it asks for: refused, nothing applied.
    engine.install_webhook("nosy_hook", &url, vec![]).await.unwrap();
    engine
        .add_robot(&robot(
            "WORK",
            "nosy_hook",
            "echo",
            r#", "properties": {"text": "sneaky"}"#,
        ))
        .await
        .unwrap();
    engine.move_entity(deal.reference(), None, "WORK").await.unwrap();
    engine.run_until_idle().await.unwrap();
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    let outcome = runs[1].report.as_ref().unwrap().outcome.as_ref().unwrap();
    assert_eq!(outcome.code(), "capability-denied");
    assert_eq!(field(&engine, deal.reference(), "UF_ECHO").await, text("from the web"));

    // Unreachable: an external failure, retried, then dead.
    engine
        .install_webhook("gone_hook", "http://127.0.0.1:9/robot", vec![Capability::SetFields])
        .await
        .unwrap();
    engine
        .add_robot(&robot("WON", "gone_hook", "echo", r#", "properties": {"text": "x"}"#))
        .await
        .unwrap();
    engine.move_entity(deal.reference(), None, "WON").await.unwrap();
    for _ in 0..EngineConfig::default().max_attempts {
        engine.run_until_idle().await.unwrap();
        clock.advance(Duration::minutes(5));
    }
    let run = engine
        .store()
        .runs(Some(deal.reference()), 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(run.status, RunStatus::Dead);
    let report = run.report.as_ref().unwrap();
    assert_eq!(report.blame, Some(Blame::External));
    assert_eq!(report.attempt, EngineConfig::default().max_attempts);
}

async fn a_change_made_by_one_process_reaches_the_others(db: Db) {
    let url = robohost_tests::db::fresh_url(db).await;
    let config = EngineConfig {
        poll_ms: 0,
        ..EngineConfig::default()
    };
    let clock = Arc::new(ManualClock::new(wednesday()));
    let start = || async {
        let store = robohost::storage::Store::open(&url).await.unwrap();
        Engine::new(
            store,
            robohost_tests::db::shared_sandbox(),
            clock.clone(),
            config.clone(),
        )
        .await
        .unwrap()
    };
    let (admin, worker) = (start().await, start().await);
    admin.put_pipeline(&general()).await.unwrap();
    robohost_tests::declare(&admin, &[("deal", "UF_ECHO", "text")]).await;
    let wasm = std::fs::read(plugin_path("bench")).unwrap();
    admin
        .install_plugin("bench", wasm, Capability::ALL.to_vec())
        .await
        .unwrap();
    admin
        .add_robot(&robot("NEW", "bench", "echo", r#", "properties": {"text": "seen"}"#))
        .await
        .unwrap();
    // The other process learns of the pipeline, plugin and robot by itself.
    worker.refresh().await.unwrap();
    let deal = deal(&worker, "NEW", "100").await;
    assert_eq!(worker.run_until_idle().await.unwrap(), 1);
    let runs = worker.store().runs(Some(deal.reference()), 10).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{:?}", runs[0].report);
}

async fn concurrent_creations_share_commits_and_each_gets_its_own_entry(db: Db) {
    let (engine, _) = portal(db).await;
    engine
        .add_robot(&robot("NEW", "bench", "echo", r#", "properties": {"text": "x"}"#))
        .await
        .unwrap();
    let creations: Vec<_> = (0..64)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { deal(&engine, "NEW", "100").await })
        })
        .collect();
    let mut ids = Vec::new();
    for created in creations {
        ids.push(created.await.unwrap().reference());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 64, "every creation got its own entity");
    assert_eq!(engine.run_until_idle().await.unwrap(), 64);
    for deal in &ids {
        let events: Vec<String> = engine
            .store()
            .events(*deal)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e, _)| e)
            .collect();
        assert_eq!(events, ["created", "stage-entered", "updated"], "{deal}");
        let runs = engine.store().runs(Some(*deal), 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{deal}");
        assert_eq!((runs[0].entry_id, runs[0].status), (1, RunStatus::Succeeded));
    }
    // A second entry is number 2, and leaving the first cancels nothing twice.
    engine.move_entity(ids[0], None, "WORK").await.unwrap();
    engine.move_entity(ids[0], None, "NEW").await.unwrap();
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    let runs = engine.store().runs(Some(ids[0]), 10).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.entry_id).collect::<Vec<_>>(), [1, 3]);
}

async fn a_run_cancelled_between_attempts_keeps_its_last_failure(db: Db) {
    let (engine, _) = portal(db).await;
    engine
        .install_webhook("gone_hook", "http://127.0.0.1:9/robot", vec![Capability::SetFields])
        .await
        .unwrap();
    let binding = r#", "title": "Post to the shop", "properties": {"text": "x"}"#;
    engine
        .add_robot(&robot("NEW", "gone_hook", "echo", binding))
        .await
        .unwrap();
    let deal = deal(&engine, "NEW", "100").await;
    engine.run_until_idle().await.unwrap();
    let run = engine.store().runs(Some(deal.reference()), 10).await.unwrap().remove(0);
    assert_eq!(
        (run.status, run.attempts),
        (RunStatus::Queued, 1),
        "waits for its retry"
    );

    engine.move_entity(deal.reference(), None, "WORK").await.unwrap();
    let run = engine.store().runs(Some(deal.reference()), 10).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Cancelled);
    let report = run.report.expect("a cancelled run says why");
    assert_eq!(report.reason, Some(NotRun::LeftStage));
    assert_eq!(report.robot.title, "Post to the shop");
    assert_eq!(
        (report.attempt, report.blame),
        (1, Some(Blame::External)),
        "the failed attempt is still there to read: {report:?}"
    );
}

/// A robot on a schedule runs at its times (in the portal's zone) for
/// every entity then in its stage, once per firing however many processes
/// share the database, and not when an entity enters the stage.
async fn a_robot_on_a_schedule_runs_for_each_entity_in_its_stage_once_per_firing(db: Db) {
    let url = robohost_tests::db::fresh_url(db).await;
    let clock = Arc::new(ManualClock::new(wednesday()));
    let start = || async {
        let store = robohost::storage::Store::open(&url).await.unwrap();
        let sandbox = robohost_tests::db::shared_sandbox();
        Engine::new(store, sandbox, clock.clone(), EngineConfig::default())
            .await
            .unwrap()
    };
    let (one, two) = (start().await, start().await);
    one.put_pipeline(&general()).await.unwrap();
    let calendar = serde_json::from_value(robohost_tests::fixtures::calendar()).unwrap();
    one.set_calendar(&calendar).await.unwrap();
    let wasm = std::fs::read(plugin_path("assign_by_amount")).unwrap();
    one.install_plugin("assign_by_amount", wasm, Capability::ALL.to_vec())
        .await
        .unwrap();
    let nightly = robot(
        "NEW",
        "assign_by_amount",
        "assign_by_amount",
        r#", "timing": {"schedule": "0 0 3 * * *"},
            "properties": {"bounds": [{"decimal": "100000"}], "users": [{"user": 7}, {"user": 8}]}"#,
    );
    let id = one.add_robot(&nightly).await.unwrap();
    let a = deal(&one, "NEW", "100").await;
    let b = deal(&one, "NEW", "200000").await;
    let c = deal(&one, "WORK", "100").await;
    assert_eq!(one.run_until_idle().await.unwrap(), 0, "nothing runs at entry");
    two.reload().await.unwrap();
    let comments = async |r: EntityRef| one.store().comments(r).await.unwrap().len();

    // The first look sets the next time: 03:00 in Moscow.
    for engine in [&one, &two] {
        engine.run_schedules().await.unwrap();
    }
    clock.set(at("2026-11-26T02:59:59+03:00"));
    for engine in [&one, &two] {
        engine.run_schedules().await.unwrap();
    }
    assert_eq!(one.run_until_idle().await.unwrap(), 0);
    for night in 1..=2 {
        clock.set(at(&format!("2026-11-2{}T03:00:00+03:00", 5 + night)));
        let (first, second) = tokio::join!(one.run_schedules(), two.run_schedules());
        first.unwrap();
        second.unwrap();
        one.run_schedules().await.unwrap();
        assert_eq!(
            one.run_until_idle().await.unwrap(),
            2,
            "night {night}: a and b, once each"
        );
        assert_eq!(
            (comments(a.reference()).await, comments(b.reference()).await),
            (night, night)
        );
        assert_eq!(comments(c.reference()).await, 0, "c is not in the stage");
    }
    let runs = one.store().runs(Some(a.reference()), 10).await.unwrap();
    assert!(runs.iter().all(|r| r.robot_id == id
        && r.cause
            == robohost::domain::Cause::Schedule {
                name: "0 0 3 * * *".into()
            }));

    // A schedule that is no cron expression, or one mixed with a delay, is
    // refused by its field.
    let bad = robot(
        "NEW",
        "assign_by_amount",
        "assign_by_amount",
        r#", "timing": {"schedule": "nightly"}"#,
    );
    let e = one.add_robot(&bad).await.unwrap_err().to_string();
    assert!(
        e.contains("`timing.schedule`") && e.contains("not a cron expression"),
        "{e}"
    );
    let mixed = robot(
        "NEW",
        "assign_by_amount",
        "assign_by_amount",
        r#", "timing": {"schedule": "0 0 3 * * *", "delay_seconds": 60}"#,
    );
    let e = one.add_robot(&mixed).await.unwrap_err().to_string();
    assert!(e.contains("`timing.schedule`") && e.contains("drop the delay"), "{e}");
}

/// A robot addressed to someone counts working time by their own hours and
/// time zone, else by the portal's.
async fn working_time_is_the_recipients_own_when_they_keep_their_hours(db: Db) {
    let (engine, clock) = portal(db).await;
    let user = |id: u64, name: &str, hours: serde_json::Value| -> robohost::domain::User {
        serde_json::from_value(serde_json::json!({"id": id, "name": name, "hours": hours})).unwrap()
    };
    // Olga works 9 to 18 in Vladivostok, seven hours ahead of Moscow; Ivan
    // from 14:00 in the portal's zone; Pavel keeps the portal's hours.
    engine
        .put_user(&user(7, "Olga", serde_json::json!({"time_zone": "Asia/Vladivostok"})))
        .await
        .unwrap();
    engine
        .put_user(&user(8, "Ivan", serde_json::json!({"work_start": "14:00:00"})))
        .await
        .unwrap();
    engine
        .put_user(&user(9, "Pavel", serde_json::Value::Null))
        .await
        .unwrap();
    // Hours that leave no working time with the portal's are refused.
    let late = user(10, "Late", serde_json::json!({"work_start": "19:00:00"}));
    let e = engine.put_user(&late).await.unwrap_err().to_string();
    assert!(
        e.contains("`hours`") && e.contains("must start before they end, not 19:00:00 to 18:00:00"),
        "{e}"
    );
    let e = serde_json::from_value::<robohost::domain::User>(
        serde_json::json!({"id": 10, "name": "Late", "hours": {"time_zone": "Mars/Olympus"}}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("`Mars/Olympus` is not an IANA time zone"), "{e}");

    let timing = r#", "recipient": "responsible", "properties": {"text": "two working hours later"},
        "timing": {"delay_seconds": 7200, "working_time": true}"#;
    engine.add_robot(&robot("NEW", "bench", "echo", timing)).await.unwrap();
    let deal_for = async |responsible: u64| {
        let mut request = robohost_tests::fixtures::deal("NEW", "100");
        request["responsible"] = serde_json::json!(responsible);
        create(&engine, serde_json::from_value(request).unwrap()).await
    };
    // Wednesday 10:00 in Moscow is 17:00 in Vladivostok: Olga's last hour.
    let due = async |deal: &Entity| engine.store().runs(Some(deal.reference()), 10).await.unwrap()[0].due_at;
    let olgas = deal_for(7).await;
    assert_eq!(due(&olgas).await, at("2026-11-26T10:00:00+10:00"));
    let ivans = deal_for(8).await;
    assert_eq!(due(&ivans).await, at("2026-11-25T16:00:00+03:00"));
    let pavels = deal_for(9).await;
    assert_eq!(due(&pavels).await, at("2026-11-25T12:00:00+03:00"));

    // "Only in working time": at 08:00 in Moscow it is Olga's 15:00, so
    // hers runs, and the portal's (Pavel's) is skipped.
    let skip = r#", "recipient": "responsible", "properties": {"text": "now or never"},
        "timing": {"skip_outside_working_time": true}"#;
    engine.add_robot(&robot("WORK", "bench", "echo", skip)).await.unwrap();
    clock.set(at("2026-11-26T08:00:00+03:00"));
    for deal in [&olgas, &pavels] {
        engine.move_entity(deal.reference(), None, "WORK").await.unwrap();
    }
    engine.run_until_idle().await.unwrap();
    assert_eq!(field(&engine, olgas.reference(), "UF_ECHO").await, text("now or never"));
    assert_eq!(field(&engine, pavels.reference(), "UF_ECHO").await, FieldValue::Empty);
    let runs = engine.store().runs(Some(pavels.reference()), 10).await.unwrap();
    let skipped = runs.iter().find(|r| r.status == RunStatus::Skipped).unwrap();
    let report = skipped.report.as_ref().unwrap();
    assert_eq!(report.reason, Some(NotRun::OutsideWorkingTime));
}

robohost_tests::on_both!(
    working_time_is_the_recipients_own_when_they_keep_their_hours,
    concurrent_creations_share_commits_and_each_gets_its_own_entry,
    a_run_cancelled_between_attempts_keeps_its_last_failure,
    a_change_made_by_one_process_reaches_the_others,
    stage_entry_runs_its_robots_and_their_effects_show,
    working_time_delays_skip_the_weekend_and_a_holiday,
    leaving_the_stage_cancels_a_pending_delayed_robot,
    after_previous_runs_in_order_and_sees_earlier_values,
    a_false_condition_is_skipped_with_its_reason,
    a_trapping_robot_ends_dead_at_once_with_its_error,
    a_trigger_moves_forward_and_backward_only_when_allowed,
    a_worker_whose_lease_was_taken_over_cannot_finish,
    bad_configuration_is_refused_with_the_field,
    a_scheduled_trigger_fires_on_its_cron_time_in_the_portal_zone,
    a_webhook_robot_runs_like_a_sandboxed_one,
    a_robot_on_a_schedule_runs_for_each_entity_in_its_stage_once_per_firing,
);
