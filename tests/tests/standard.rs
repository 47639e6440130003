//! The standard robots (`plugins/standard`), each through the real sandbox
//! and the engine: placed on a stage, run on entry, their effects checked in
//! the database; and their errors when a property or a constant is missing.

use std::sync::Arc;

use robohost::api::NewEntityRequest;
use robohost::domain::RunStatus;
use robohost::domain::{
    Department, Entity, EntityKind, EntityRef, FieldValue, Pipeline, RobotBinding, Timestamp, User, Value,
};
use robohost::engine::{Engine, EngineConfig, ManualClock};
use robohost_tests::db::{Db, engine};
use robohost_tests::fixtures::{general, json, pipeline, wednesday};

/// A portal with the standard robots, users 1 (manager, in sales) and 2
/// (head of sales), the deal pipelines `general` and `shipment` (ORDER →
/// SHIP), and a lead pipeline.
async fn portal() -> (Arc<Engine>, Arc<ManualClock>) {
    let (engine, clock) = engine(Db::Sqlite, wednesday(), EngineConfig::default()).await;
    engine.install_standard().await.unwrap();
    let sales = Department {
        id: 1,
        name: "Sales".into(),
        head: Some(2),
        parent: None,
    };
    engine.put_department(&sales).await.unwrap();
    for (id, name) in [(1, "Manager"), (2, "Head of sales"), (3, "Clerk")] {
        let user = User {
            id,
            name: name.into(),
            department: Some(1),
            active: true,
            away: None,
            hours: None,
        };
        engine.put_user(&user).await.unwrap();
    }
    let leads: Pipeline = json(
        r#"{"code": "leads", "kind": "lead", "names": {"en": "Leads"}, "stages": [
            {"code": "NEW", "names": {}, "semantic": "in-progress"},
            {"code": "TARGET", "names": {}, "semantic": "success"}]}"#,
    );
    for pipeline in [general(), pipeline("shipment", "deal", &["ORDER", "SHIP"]), leads] {
        engine.put_pipeline(&pipeline).await.unwrap();
    }
    let fields = [
        ("deal", "UF_IN_STOCK", "boolean"),
        ("lead", "UF_REQUEST", "text"),
        ("contact", "UF_REQUEST", "text"),
        ("company", "UF_REQUEST", "text"),
        ("deal", "UF_REQUEST", "text"),
    ];
    robohost_tests::declare(&engine, &fields).await;
    (engine, clock)
}

/// Places standard robot `code` first on `pipeline`'s stage `stage`.
async fn place(engine: &Engine, pipeline: &str, stage: &str, code: &str, extra: &str) {
    let robot: RobotBinding = json(&format!(
        r#"{{"id": 0, "pipeline": "{pipeline}", "stage": "{stage}", "plugin": "standard", "robot": "{code}"{extra}}}"#
    ));
    engine.add_robot(&robot).await.unwrap();
}

async fn create(engine: &Engine, kind: &str, pipeline: &str, fields: &str) -> Entity {
    let request: NewEntityRequest = json(&format!(
        r#"{{"kind": "{kind}", "pipeline": "{pipeline}", "responsible": 1, "fields": {fields}}}"#
    ));
    let (draft, links) = request.into_entity().unwrap();
    engine.create_entity(draft, links).await.unwrap()
}

/// Runs everything due and returns the runs on `entity`.
async fn runs(engine: &Engine, entity: EntityRef) -> Vec<robohost::domain::Run> {
    engine.run_until_idle().await.unwrap();
    engine.store().runs(Some(entity), 100).await.unwrap()
}

async fn succeeded(engine: &Engine, entity: EntityRef) -> robohost::domain::Run {
    let run = runs(engine, entity).await.remove(0);
    assert!(
        matches!(run.status, RunStatus::Succeeded | RunStatus::Awaiting),
        "{:?}: {}",
        run.status,
        serde_json::to_string_pretty(&run.report).unwrap()
    );
    run
}

/// On a fresh portal, standard robot `code` placed with `extra` on the
/// stage a new deal enters ends dead with `message`.
async fn fails_on_a_new_deal(code: &str, extra: &str, message: &str) {
    let (engine, _) = portal().await;
    place(&engine, "general", "NEW", code, extra).await;
    let deal = create(&engine, "deal", "general", "{}").await;
    dead_with(&engine, deal.reference(), message).await;
}

async fn dead_with(engine: &Engine, entity: EntityRef, message: &str) {
    let run = runs(engine, entity).await.remove(0);
    assert_eq!(run.status, RunStatus::Dead, "{:?}", run.report);
    let report = serde_json::to_string(&run.report).unwrap();
    assert!(report.contains(message), "{message:?} not in {report}");
}

fn returned(run: &robohost::domain::Run, code: &str) -> EntityRef {
    let value = &run.report.as_ref().unwrap().returns[code];
    match value.single() {
        Some(Value::Entity(r)) => *r,
        other => panic!("{code} returned {other:?}"),
    }
}

async fn entity(engine: &Engine, r: EntityRef) -> Entity {
    engine.store().entity(r).await.unwrap().unwrap()
}

fn text(entity: &Entity, code: &str) -> String {
    match entity.field(code).and_then(FieldValue::single) {
        Some(Value::Text(t) | Value::Option(t)) => t.clone(),
        other => panic!("{code} of {} is {other:?}", entity.reference()),
    }
}

#[tokio::test]
async fn task_is_created_with_observers_and_holds_the_chain_until_completed() {
    let (engine, _) = portal().await;
    engine
        .set_constant("Clerk", &FieldValue::Single(Value::User(3)))
        .await
        .unwrap();
    place(
        &engine,
        "general",
        "NEW",
        "task",
        r#", "recipient": {"constant": "Clerk"}, "properties": {"title": "Contract for {=Document.TITLE}",
            "observers": [{"user": 1}, {"user": 2}], "deadline_hours": 24}"#,
    )
    .await;
    place(
        &engine,
        "general",
        "NEW",
        "change_stage",
        r#", "timing": {"after_previous": true}, "properties": {"stage": "WORK"}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", r#"{"TITLE": "Pumps"}"#).await;
    let run = succeeded(&engine, deal.reference()).await;
    assert_eq!(run.status, RunStatus::Awaiting, "the task holds the chain");
    let task = entity(&engine, returned(&run, "task")).await;
    assert_eq!(task.kind, EntityKind::Task);
    assert_eq!(text(&task, "TITLE"), "Contract for Pumps");
    assert_eq!(task.responsible, Some(3));
    assert_eq!(
        task.field("OBSERVERS"),
        Some(&FieldValue::List(vec![Value::User(1), Value::User(2)]))
    );
    assert_eq!(
        task.field("DEADLINE").and_then(FieldValue::single),
        Some(&Value::DateTime(Timestamp(wednesday().0 + 24 * 3_600_000)))
    );
    let related = engine
        .store()
        .related(deal.reference(), EntityKind::Task)
        .await
        .unwrap();
    assert_eq!(related.len(), 1, "the task belongs to the deal");
    assert_eq!(entity(&engine, deal.reference()).await.stage.as_deref(), Some("NEW"));

    // Completing the task releases the robot after it.
    let status = json(r#"{"STATUS": {"option": "completed"}}"#);
    engine
        .update_entity(task.reference(), status, Default::default(), None)
        .await
        .unwrap();
    let all = runs(&engine, deal.reference()).await;
    assert_eq!(all[0].status, RunStatus::Succeeded);
    assert_eq!(all[1].status, RunStatus::Succeeded, "{:?}", all[1].report);
    assert_eq!(entity(&engine, deal.reference()).await.stage.as_deref(), Some("WORK"));
}

#[tokio::test]
async fn task_names_the_missing_constant_and_the_missing_title() {
    fails_on_a_new_deal(
        "task",
        r#", "recipient": {"constant": "Clerk"}, "properties": {"title": "x"}"#,
        "constant `Clerk` is not set",
    )
    .await;

    let (engine, _) = portal().await;
    let robot: RobotBinding = json(
        r#"{"id": 0, "pipeline": "general", "stage": "NEW", "plugin": "standard", "robot": "task", "recipient": "responsible"}"#,
    );
    let refused = engine.add_robot(&robot).await.unwrap_err().to_string();
    assert!(refused.contains("properties.title"), "{refused}");
}

#[tokio::test]
async fn assignment_creates_a_task_and_notifies() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "assignment",
        r#", "recipient": "responsible", "properties": {"title": "React to the feedback"}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", "{}").await;
    let run = succeeded(&engine, deal.reference()).await;
    assert_eq!(
        run.status,
        RunStatus::Succeeded,
        "an assignment does not hold the chain by default"
    );
    let task = entity(&engine, returned(&run, "task")).await;
    assert_eq!(text(&task, "TASK_TYPE"), "assignment");
    let notes = engine.store().notifications(1).await.unwrap();
    assert_eq!(notes[0].1, "Assignment: React to the feedback");
}

#[tokio::test]
async fn notify_reaches_the_supervisor() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "notify",
        r#", "recipient": "supervisor", "properties": {"text": "New deal {=Document.TITLE}"}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", r#"{"TITLE": "Valves"}"#).await;
    succeeded(&engine, deal.reference()).await;
    let notes = engine.store().notifications(2).await.unwrap();
    assert_eq!(notes[0].1, "New deal Valves");
}

#[tokio::test]
async fn control_reminds_the_supervisor_after_its_delay() {
    let (engine, clock) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "control",
        r#", "recipient": "supervisor", "timing": {"delay_seconds": 172800}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", "{}").await;
    assert!(runs(&engine, deal.reference()).await[0].status == RunStatus::Queued);
    clock.advance(chrono::Duration::days(2));
    succeeded(&engine, deal.reference()).await;
    let notes = engine.store().notifications(2).await.unwrap();
    assert_eq!(notes[0].1, format!("Control: deal {} is still at stage NEW", deal.id));
}

#[tokio::test]
async fn call_and_meeting_are_planned_activities() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "call",
        r#", "recipient": "responsible", "properties": {"subject": "Check payment", "start_hours": 72}"#,
    )
    .await;
    place(
        &engine,
        "general",
        "NEW",
        "meeting",
        r#", "recipient": "responsible", "properties": {"subject": "Demo", "location": "Office", "duration_minutes": 60}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", "{}").await;
    let all = runs(&engine, deal.reference()).await;
    let call = entity(&engine, returned(&all[0], "activity")).await;
    assert_eq!(
        (text(&call, "TYPE"), text(&call, "SUBJECT")),
        ("call".into(), "Check payment".into())
    );
    let start = Timestamp(wednesday().0 + 72 * 3_600_000);
    assert_eq!(
        call.field("START").and_then(FieldValue::single),
        Some(&Value::DateTime(start))
    );
    assert_eq!(
        call.field("END").and_then(FieldValue::single),
        Some(&Value::DateTime(Timestamp(start.0 + 30 * 60_000)))
    );
    let meeting = entity(&engine, returned(&all[1], "activity")).await;
    assert_eq!(
        (text(&meeting, "TYPE"), text(&meeting, "LOCATION")),
        ("meeting".into(), "Office".into())
    );
    assert_eq!(meeting.responsible, Some(1));
}

#[tokio::test]
async fn change_stage_and_move_to_pipeline() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "change_stage",
        r#", "properties": {"stage": "WORK"}"#,
    )
    .await;
    place(
        &engine,
        "general",
        "WORK",
        "move_to_pipeline",
        r#", "properties": {"pipeline": "shipment", "stage": "SHIP"}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", "{}").await;
    runs(&engine, deal.reference()).await;
    let moved = entity(&engine, deal.reference()).await;
    assert_eq!(
        (moved.pipeline.as_deref(), moved.stage.as_deref()),
        (Some("shipment"), Some("SHIP"))
    );

    fails_on_a_new_deal(
        "change_stage",
        r#", "properties": {"stage": "NOPE"}"#,
        "has no stage `NOPE`",
    )
    .await;
}

#[tokio::test]
async fn change_responsible_and_comment() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "change_responsible",
        r#", "recipient": {"user": 3}"#,
    )
    .await;
    place(
        &engine,
        "general",
        "NEW",
        "comment",
        r#", "properties": {"text": "Now with {=Document.TITLE}"}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", r#"{"TITLE": "Gears"}"#).await;
    runs(&engine, deal.reference()).await;
    assert_eq!(entity(&engine, deal.reference()).await.responsible, Some(3));
    let comments = engine.store().comments(deal.reference()).await.unwrap();
    assert_eq!(comments[0].1, "Now with Gears");
}

#[tokio::test]
async fn modify_fields_sets_each_field_and_checks_the_counts() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "modify_fields",
        r#", "properties": {"fields": ["UF_IN_STOCK", "COMMENTS"], "values": [true, "checked"]}"#,
    )
    .await;
    let deal = create(&engine, "deal", "general", "{}").await;
    succeeded(&engine, deal.reference()).await;
    let stored = entity(&engine, deal.reference()).await;
    assert_eq!(
        stored.field("UF_IN_STOCK").and_then(FieldValue::single),
        Some(&Value::Boolean(true))
    );
    assert_eq!(text(&stored, "COMMENTS"), "checked");

    fails_on_a_new_deal(
        "modify_fields",
        r#", "properties": {"fields": ["A", "B"], "values": [1]}"#,
        "expected 2 values, one per field, got 1",
    )
    .await;
}

#[tokio::test]
async fn copy_deal_copies_fields_into_another_pipeline() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "copy_deal",
        r#", "properties": {"pipeline": "shipment", "stage": "ORDER"}"#,
    )
    .await;
    let deal = create(
        &engine,
        "deal",
        "general",
        r#"{"TITLE": "Pumps", "OPPORTUNITY": {"money": "1000 RUB"}}"#,
    )
    .await;
    let run = succeeded(&engine, deal.reference()).await;
    let copy = entity(&engine, returned(&run, "copy")).await;
    assert_eq!(
        (copy.pipeline.as_deref(), copy.stage.as_deref()),
        (Some("shipment"), Some("ORDER"))
    );
    assert_eq!(text(&copy, "TITLE"), "Pumps");
    assert_eq!(copy.field("OPPORTUNITY"), deal.field("OPPORTUNITY"));
    assert_eq!(copy.responsible, Some(1));
}

#[tokio::test]
async fn convert_lead_makes_a_contact_a_company_and_a_linked_deal() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "leads",
        "TARGET",
        "convert_lead",
        r#", "properties": {"deal_pipeline": "general"}"#,
    )
    .await;
    let lead = create(
        &engine,
        "lead",
        "leads",
        r#"{"TITLE": "Pumps for a plant", "NAME": "Ivan", "PHONE": "+7 900 000-00-00",
            "COMPANY_TITLE": "Plant LLC", "UF_REQUEST": "ten pumps"}"#,
    )
    .await;
    engine.move_entity(lead.reference(), None, "TARGET").await.unwrap();
    let run = succeeded(&engine, lead.reference()).await;
    let (contact, company, deal) = (
        entity(&engine, returned(&run, "contact")).await,
        entity(&engine, returned(&run, "company")).await,
        entity(&engine, returned(&run, "deal")).await,
    );
    assert_eq!(
        (text(&contact, "NAME"), text(&contact, "PHONE")),
        ("Ivan".into(), "+7 900 000-00-00".into())
    );
    assert_eq!(text(&company, "TITLE"), "Plant LLC");
    assert_eq!(
        (text(&deal, "TITLE"), text(&deal, "UF_REQUEST")),
        ("Pumps for a plant".into(), "ten pumps".into())
    );
    assert_eq!(
        (deal.pipeline.as_deref(), deal.stage.as_deref()),
        (Some("general"), Some("NEW"))
    );
    let store = engine.store();
    assert_eq!(
        store.related(deal.reference(), EntityKind::Contact).await.unwrap()[0].id,
        contact.id
    );
    assert_eq!(
        store.related(deal.reference(), EntityKind::Company).await.unwrap()[0].id,
        company.id
    );
    assert_eq!(
        store.related(lead.reference(), EntityKind::Deal).await.unwrap()[0].id,
        deal.id
    );

    // Without a company name there is no company.
    let (engine, _) = portal().await;
    place(
        &engine,
        "leads",
        "NEW",
        "convert_lead",
        r#", "properties": {"deal_pipeline": "general"}"#,
    )
    .await;
    let lead = create(&engine, "lead", "leads", r#"{"NAME": "Olga"}"#).await;
    let run = succeeded(&engine, lead.reference()).await;
    assert!(!run.report.as_ref().unwrap().returns.contains_key("company"));
}

#[tokio::test]
async fn messages_go_to_the_outbox_addressed_from_the_entity_or_its_contact() {
    let (engine, _) = portal().await;
    place(
        &engine,
        "general",
        "NEW",
        "email",
        r#", "properties": {"subject": "Your order", "body": "Deal {=Document.TITLE} is ready"}"#,
    )
    .await;
    place(
        &engine,
        "general",
        "NEW",
        "sms",
        r#", "properties": {"text": "Pay here"}"#,
    )
    .await;
    place(
        &engine,
        "general",
        "NEW",
        "messenger",
        r#", "properties": {"text": "Hello", "to": "@client"}"#,
    )
    .await;
    let contact: NewEntityRequest =
        json(r#"{"kind": "contact", "fields": {"EMAIL": "ivan@example.com", "PHONE": "+7 900"}}"#);
    let (draft, links) = contact.into_entity().unwrap();
    let contact = engine.create_entity(draft, links).await.unwrap();
    let request: NewEntityRequest = json(&format!(
        r#"{{"kind": "deal", "pipeline": "general", "fields": {{"TITLE": "Pumps"}}, "links": [{{"kind": "contact", "id": {}}}]}}"#,
        contact.id
    ));
    let (draft, links) = request.into_entity().unwrap();
    let deal = engine.create_entity(draft, links).await.unwrap();
    let all = runs(&engine, deal.reference()).await;
    assert!(all.iter().all(|r| r.status == RunStatus::Succeeded), "{all:?}");
    let outbox = engine.store().outbox(Some(deal.reference()), 10).await.unwrap();
    let sent: Vec<(&str, &str, &str)> = outbox
        .iter()
        .map(|m| (m.channel.as_str(), m.to.as_str(), m.body.as_str()))
        .collect();
    assert_eq!(
        sent,
        [
            ("email", "ivan@example.com", "Deal Pumps is ready"),
            ("sms", "+7 900", "Pay here"),
            ("messenger", "@client", "Hello"),
        ]
    );
    assert_eq!(outbox[0].subject.as_deref(), Some("Your order"));
    assert!(outbox.iter().all(|m| m.status == "queued"));
    assert_eq!(engine.deliver_outbox().await.unwrap(), 3);
    let delivered = engine.store().outbox(Some(deal.reference()), 10).await.unwrap();
    assert!(delivered.iter().all(|m| m.status == "sent" && m.sent_at.is_some()));

    // No address anywhere: the run says which property to set.
    let (engine, _) = portal().await;
    place(&engine, "general", "NEW", "sms", r#", "properties": {"text": "x"}"#).await;
    let deal = create(&engine, "deal", "general", "{}").await;
    dead_with(&engine, deal.reference(), "set the property `to`").await;
}

#[tokio::test]
async fn every_robot_names_its_missing_property_and_its_unset_constant() {
    let (engine, _) = portal().await;
    let required = [
        ("task", "title"),
        ("assignment", "title"),
        ("notify", "text"),
        ("control", "recipient"),
        ("call", "subject"),
        ("meeting", "subject"),
        ("change_stage", "stage"),
        ("move_to_pipeline", "pipeline"),
        ("change_responsible", "recipient"),
        ("comment", "text"),
        ("modify_fields", "fields"),
        ("copy_deal", "pipeline"),
        ("convert_lead", "deal_pipeline"),
        ("email", "subject"),
        ("sms", "text"),
        ("messenger", "text"),
    ];
    assert_eq!(
        required.len(),
        engine.plugin_robots("standard").len(),
        "every robot is covered"
    );
    for (robot, property) in required {
        let binding: RobotBinding = json(&format!(
            r#"{{"pipeline": "general", "stage": "NEW", "plugin": "standard", "robot": "{robot}"}}"#
        ));
        let refused = engine.add_robot(&binding).await.unwrap_err().to_string();
        assert!(
            refused.contains(&format!("`properties.{property}`: is required")),
            "{robot}: {refused}"
        );
    }

    // Each robot working for someone fails its run naming the constant
    // that holds nobody yet.
    let for_someone = [
        ("task", r#"{"title": "t"}"#),
        ("assignment", r#"{"title": "t"}"#),
        ("notify", r#"{"text": "t"}"#),
        ("control", "{}"),
        ("call", r#"{"subject": "t"}"#),
        ("meeting", r#"{"subject": "t"}"#),
        ("change_responsible", "{}"),
    ];
    for (robot, properties) in for_someone {
        let extra = format!(r#", "recipient": {{"constant": "Nobody"}}, "properties": {properties}"#);
        place(&engine, "general", "NEW", robot, &extra).await;
    }
    let deal = create(&engine, "deal", "general", "{}").await;
    let all = runs(&engine, deal.reference()).await;
    assert_eq!(all.len(), for_someone.len());
    for run in all {
        assert_eq!(run.status, RunStatus::Dead, "{:?}", run.report);
        let report = serde_json::to_string(&run.report).unwrap();
        assert!(report.contains("constant `Nobody` is not set"), "{report}");
    }
}
