//! Templates: checked whole before anything is written, installed without
//! touching what the portal has, and exported back identically. The message
//! of each kind of problem is a snapshot in `tests/ui/templates` (`ui.rs`).

use robohost::api::NewEntityRequest;
use robohost::domain::RunStatus;
use robohost::domain::{EntityKind, FieldValue, Pipeline, Value};
use robohost::engine::EngineError;
use robohost_tests::db::Db;
use robohost_tests::fixtures::{json, standard_portal};

/// A small template using every part of the format.
const SAMPLE: &str = r#"
format = 1
code = "sample"
version = "1.0.0"
names = { en = "Sample", ru = "Пример" }
packages = ["standard"]

[[constants]]
code = "Clerk"
type = "user"
names = { en = "Clerk", ru = "Делопроизводитель" }

[[fields]]
kind = "deal"
code = "UF_IN_STOCK"
type = "boolean"
names = { en = "In stock?" }

[[fields]]
kind = "deal"
code = "UF_PAYMENT"
type = "option"
names = { en = "Payment" }
options = [{ code = "prepayment", names = { en = "Prepayment" } }, { code = "postpayment", names = { en = "Postpayment" } }]

[[pipelines]]
code = "general"
kind = "deal"
names = { en = "General", ru = "Общее" }
stages = [
    { code = "NEW", semantic = "in-progress", names = { en = "New" } },
    { code = "CONTRACT", semantic = "in-progress", names = { en = "Contract" } },
    { code = "WON", semantic = "success", names = { en = "Won" } },
]

[[pipelines]]
code = "shipment"
kind = "deal"
names = { en = "Shipment" }
stages = [{ code = "ORDER", semantic = "in-progress", names = { en = "Order" } }]

[[robots]]
pipeline = "general"
stage = "CONTRACT"
plugin = "standard"
robot = "task"
recipient = { constant = "Clerk" }
properties = { title = "Contract for {=Document.TITLE}", wait = true }

[[robots]]
pipeline = "general"
stage = "CONTRACT"
plugin = "standard"
robot = "change_stage"
timing = { after_previous = true, delay_seconds = 3600, working_time = true }
condition = { compare = { field = "UF_IN_STOCK", op = "eq", value = true } }
properties = { stage = "WON" }

[[robots]]
pipeline = "shipment"
stage = "ORDER"
plugin = "standard"
robot = "notify"
recipient = "responsible"
properties = { text = "Order the goods" }

[[triggers]]
pipeline = "general"
stage = "CONTRACT"
code = "incoming_call"
"#;

async fn invalid_templates_are_refused_with_each_location_and_nothing_is_written(db: Db) {
    let engine = standard_portal(db).await;
    let bad = SAMPLE
        .replace(
            r#"stage = "ORDER"
plugin"#,
            r#"stage = "PACKING"
plugin"#,
        )
        .replace(r#"robot = "change_stage""#, r#"robot = "teleport""#)
        .replace("Contract for {=Document.TITLE}", "Contract for {=Document.}")
        .replace(
            r#"recipient = { constant = "Clerk" }"#,
            r#"recipient = { constant = "Lawyer" }"#,
        )
        .replace(r#"field = "UF_IN_STOCK""#, r#"field = "UF_COLOUR""#);
    let Err(EngineError::Template(problems)) = engine.install_template(&bad).await else {
        panic!("the template was accepted");
    };
    let found: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
    let expect = [
        (42, "robot `task` at general/CONTRACT: property `title`"),
        (
            42,
            "robot `task` at general/CONTRACT: the recipient uses constant `Lawyer`, which neither the template nor the portal declares",
        ),
        (
            50,
            "robot `teleport` at general/CONTRACT: `robot`: plugin `standard` has no robot `teleport`",
        ),
        (
            50,
            "robot `teleport` at general/CONTRACT: the condition uses field `UF_COLOUR`, which is not a declared deal field",
        ),
        (
            59,
            "robot `notify` at shipment/PACKING: pipeline `shipment` has no stage `PACKING`",
        ),
    ];
    for (line, start) in expect {
        assert!(
            found.iter().any(|(l, m)| *l == line && m.starts_with(start)),
            "no problem at line {line} starting {start:?} in {found:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{found:#?}");
    assert!(
        engine.store().pipelines().await.unwrap().is_empty(),
        "nothing was written"
    );
    assert!(engine.store().all_robots().await.unwrap().is_empty());
    assert!(engine.store().custom_fields().await.unwrap().is_empty());
}

async fn a_trigger_the_api_would_refuse_is_refused_with_its_line(db: Db) {
    // Its code is too long to be a key: the API refuses it.
    let long = "c".repeat(201);
    let s = robohost_tests::http::server(db).await;
    s.engine.install_standard().await.unwrap();
    s.engine.install_template(SAMPLE).await.unwrap();
    let path = "/api/pipelines/general/stages/CONTRACT/triggers";
    let refused = s
        .json("POST", path, &s.admin, serde_json::json!({ "code": long }))
        .await;
    let because = "a code is at most 200 characters";
    refused.error(422, "invalid", Some("code"), because);

    // The same trigger in a template is refused as a problem on its line.
    let engine = standard_portal(db).await;
    let bad = SAMPLE.replace(r#"code = "incoming_call""#, &format!(r#"code = "{long}""#));
    let Err(EngineError::Template(problems)) = engine.install_template(&bad).await else {
        panic!("the template was accepted");
    };
    let found: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
    let expected = format!("trigger `{long}` at general/CONTRACT: `code`: {because}");
    assert_eq!(found, [(67, expected.as_str())]);
    assert!(
        engine.store().pipelines().await.unwrap().is_empty(),
        "nothing was written"
    );
}

async fn export_then_install_then_export_is_identical(db: Db) {
    let engine = standard_portal(db).await;
    let report = engine.install_template(SAMPLE).await.unwrap();
    assert_eq!(report.pipelines_created, ["general", "shipment"]);
    assert_eq!((report.robots_added, report.triggers_added), (3, 1));
    assert_eq!(report.to_bind, ["Clerk"], "the constant is still to be bound");
    let first = engine.export_template("sample", "1.0.0").await.unwrap();
    assert!(
        first.contains("UF_PAYMENT") && first.contains("incoming_call"),
        "{first}"
    );

    let again = standard_portal(db).await;
    again.install_template(&first).await.unwrap();
    let second = again.export_template("sample", "1.0.0").await.unwrap();
    assert_eq!(first, second);
}

async fn installing_into_a_portal_with_data_leaves_it_untouched(db: Db) {
    let engine = standard_portal(db).await;
    let own: Pipeline = json(
        r#"{"code": "general", "kind": "deal", "names": {"en": "Ours"}, "stages": [
            {"code": "NEW", "names": {}, "semantic": "in-progress"},
            {"code": "CONTRACT", "names": {}, "semantic": "in-progress"},
            {"code": "WON", "names": {}, "semantic": "success"}]}"#,
    );
    engine.put_pipeline(&own).await.unwrap();
    engine
        .set_constant("Clerk", &FieldValue::Single(Value::User(5)))
        .await
        .unwrap();
    let request: NewEntityRequest = json(r#"{"kind": "deal", "pipeline": "general", "fields": {"TITLE": "Ours"}}"#);
    let (draft, links) = request.into_entity().unwrap();
    let deal = engine.create_entity(draft, links).await.unwrap();
    let before = engine.store().entity(deal.reference()).await.unwrap();

    let report = engine.install_template(SAMPLE).await.unwrap();
    assert_eq!(report.pipelines_kept, ["general"]);
    assert_eq!(report.pipelines_created, ["shipment"]);
    assert_eq!((report.robots_added, report.triggers_added), (1, 0));
    assert!(report.to_bind.is_empty(), "Clerk was bound already: {report:?}");
    assert_eq!(engine.store().pipeline("general").await.unwrap(), Some(own));
    assert_eq!(engine.store().entity(deal.reference()).await.unwrap(), before);
    assert!(
        engine
            .store()
            .robots_at("general", "CONTRACT")
            .await
            .unwrap()
            .is_empty()
    );
    let constants = engine.store().constants().await.unwrap();
    assert_eq!(constants.get("Clerk"), Some(&FieldValue::Single(Value::User(5))));
}

async fn templates_install_and_export_over_http(db: Db) {
    let s = robohost_tests::http::server(db).await;
    s.engine.install_standard().await.unwrap();
    let toml = Some("application/toml");
    let report = s
        .send("POST", "/api/templates", Some(&s.admin), toml, SAMPLE)
        .await
        .expect(200);
    assert_eq!(report["pipelines_created"], serde_json::json!(["general", "shipment"]));
    assert_eq!(report["to_bind"], serde_json::json!(["Clerk"]));
    let exported = s.get("/api/templates/export?code=sample", &s.admin).await;
    assert_eq!(exported.status, 200);
    let text = String::from_utf8(exported.body.to_vec()).unwrap();
    assert_eq!(text, s.engine.export_template("sample", "1.0.0").await.unwrap());

    let bad = SAMPLE.replace(
        r#"stage = "ORDER"
plugin"#,
        r#"stage = "PACKING"
plugin"#,
    );
    let refused = s.send("POST", "/api/templates", Some(&s.admin), toml, bad).await;
    assert_eq!(refused.status, 422);
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "bad_template");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("line 59, column 1: robot `notify` at shipment/PACKING"),
        "{error}"
    );
    assert_eq!(error["problems"][0]["line"], 59);
    assert_eq!(error["problems"][0]["column"], 1);
    assert_eq!(
        error["problems"][0]["message"],
        "robot `notify` at shipment/PACKING: pipeline `shipment` has no stage `PACKING`"
    );
    let manager = s.token("manager").await;
    let denied = s.send("POST", "/api/templates", Some(&manager), toml, SAMPLE).await;
    assert_eq!(denied.status, 403);
}

async fn prom2b_installs_beside_existing_leads_and_deals(db: Db) {
    let engine = standard_portal(db).await;
    let lead: NewEntityRequest = json(r#"{"kind": "lead", "fields": {"TITLE": "An old lead", "PHONE": "+7 900"}}"#);
    let (draft, links) = lead.into_entity().unwrap();
    let lead = engine.create_entity(draft, links).await.unwrap();
    let deal: NewEntityRequest = json(r#"{"kind": "deal", "fields": {"TITLE": "An old deal"}}"#);
    let (draft, links) = deal.into_entity().unwrap();
    let deal = engine.create_entity(draft, links).await.unwrap();
    let before = (
        engine.store().entity(lead.reference()).await.unwrap(),
        engine.store().entity(deal.reference()).await.unwrap(),
    );

    let report = engine.install_template(robohost::engine::PROM2B).await.unwrap();
    assert_eq!(report.pipelines_created, ["leads", "general", "shipment"]);
    assert_eq!((report.robots_added, report.triggers_added), (45, 4));
    assert_eq!(
        report.to_bind,
        ["Consultant", "Clerk", "Accountant", "Lawyer", "Purchaser"]
    );
    assert_eq!(report.fields_declared.len(), 11);
    let after = (
        engine.store().entity(lead.reference()).await.unwrap(),
        engine.store().entity(deal.reference()).await.unwrap(),
    );
    assert_eq!(before, after, "existing leads and deals are untouched");
    assert_eq!(engine.run_until_idle().await.unwrap(), 0, "nothing ran on them");

    // Round trip: its export installs into an empty portal and exports the same.
    let first = engine.export_template("prom2b", "1.0.0").await.unwrap();
    let empty = standard_portal(db).await;
    empty.install_template(&first).await.unwrap();
    assert_eq!(empty.export_template("prom2b", "1.0.0").await.unwrap(), first);

    // Installing it again adds nothing and changes nothing.
    let again = engine.install_template(robohost::engine::PROM2B).await.unwrap();
    assert_eq!(again.pipelines_kept, ["leads", "general", "shipment"]);
    assert_eq!((again.robots_added, again.triggers_added), (0, 0));
    assert!(again.fields_declared.is_empty() && again.constants_declared.is_empty());
}

async fn the_demo_portal_runs_its_robots_at_once(db: Db) {
    let engine = standard_portal(db).await;
    assert_eq!(engine.install_demo().await.unwrap(), 4);
    assert!(engine.run_until_idle().await.unwrap() > 0);
    let leads = engine.store().entities(EntityKind::Lead, 0, 10).await.unwrap();
    assert!(
        leads.iter().all(|l| l.stage.as_deref() == Some("PROCESSING")),
        "{leads:?}"
    );
    let runs = engine.store().runs(None, 1000).await.unwrap();
    assert!(
        runs.iter().all(|r| !matches!(r.status, RunStatus::Dead)),
        "{:#?}",
        runs.iter().filter(|r| r.status == RunStatus::Dead).collect::<Vec<_>>()
    );
    // The web lead gets its first call; the lead from a call does not.
    let calls = engine.store().entities(EntityKind::Activity, 0, 10).await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    // Starting the demo again adds nothing.
    assert_eq!(engine.install_demo().await.unwrap(), 0);
}

robohost_tests::on_both!(
    a_trigger_the_api_would_refuse_is_refused_with_its_line,
    the_demo_portal_runs_its_robots_at_once,
    prom2b_installs_beside_existing_leads_and_deals,
    templates_install_and_export_over_http,
    invalid_templates_are_refused_with_each_location_and_nothing_is_written,
    export_then_install_then_export_is_identical,
    installing_into_a_portal_with_data_leaves_it_untouched,
);
