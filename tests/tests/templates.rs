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
    assert_eq!(report["template"], "sample");
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["previous_version"], serde_json::Value::Null);
    let listed = s.get("/api/templates", &s.admin).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["code"], "sample");
    assert_eq!(listed[0]["version"], "1.0.0");
    assert_eq!(listed[0]["installed_at"], s.engine.now().0);
    assert_eq!(listed[0]["pipelines"], serde_json::json!(["general", "shipment"]));
    assert_eq!(
        listed[0]["fields"],
        serde_json::json!(["deal.UF_IN_STOCK", "deal.UF_PAYMENT"])
    );
    assert_eq!(listed[0]["constants"], serde_json::json!(["Clerk"]));
    assert_eq!(listed[0]["robots"].as_object().unwrap().len(), 3, "{listed}");
    assert_eq!(listed[0]["triggers"].as_object().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["history"], serde_json::json!([]));
    let integrator = s.token("integrator").await;
    assert_eq!(s.get("/api/templates", &integrator).await.status, 403);
    // The same version again: nothing done, and said so.
    let again = s
        .send("POST", "/api/templates", Some(&s.admin), toml, SAMPLE)
        .await
        .expect(200);
    assert_eq!(
        again["unchanged"],
        "template `sample` 1.0.0 is installed already: nothing to do"
    );
    // An older version: refused at the version's line.
    let older = SAMPLE.replace(r#"version = "1.0.0""#, r#"version = "0.9""#);
    let refused = s.send("POST", "/api/templates", Some(&s.admin), toml, older).await;
    assert_eq!(refused.status, 422);
    let error = &refused.json()["error"];
    assert_eq!(error["problems"][0]["line"], 4);
    assert_eq!(
        error["problems"][0]["message"],
        "template `sample` 1.0.0 is installed; 0.9 is older, so nothing was installed (install a version newer than 1.0.0)"
    );
    let exported = s.get("/api/templates/export?code=sample", &s.admin).await;
    assert_eq!(exported.status, 200);
    let text = String::from_utf8(exported.body.to_vec()).unwrap();
    assert_eq!(text, s.engine.export_template("sample", "1.0.0").await.unwrap());

    // A newer version with a problem is checked whole: nothing installed.
    let bad = SAMPLE
        .replace(
            r#"stage = "ORDER"
plugin"#,
            r#"stage = "PACKING"
plugin"#,
        )
        .replace(r#"version = "1.0.0""#, r#"version = "1.0.1""#);
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

    // Installing the same version again does nothing, and says so.
    let robots = engine.store().all_robots().await.unwrap();
    let again = engine.install_template(robohost::engine::PROM2B).await.unwrap();
    assert_eq!(
        again.unchanged.as_deref(),
        Some("template `prom2b` 1.0.0 is installed already: nothing to do")
    );
    assert_eq!((again.robots_added, again.triggers_added), (0, 0));
    assert!(again.added.is_empty() && again.fields_declared.is_empty() && again.constants_declared.is_empty());
    assert_eq!(engine.store().all_robots().await.unwrap(), robots);
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

/// SAMPLE's next version: a stage, a field, a constant and a robot more; the
/// task's title and the shipment notice's text changed; the trigger gone.
fn sample_1_1() -> String {
    SAMPLE
        .replace(r#"version = "1.0.0""#, r#"version = "1.1.0""#)
        .replace(
            r#"    { code = "WON", semantic = "success", names = { en = "Won" } },"#,
            r#"    { code = "DELIVERY", semantic = "in-progress", names = { en = "Delivery" } },
    { code = "WON", semantic = "success", names = { en = "Won" } },"#,
        )
        .replace(
            "[[pipelines]]\ncode = \"general\"",
            "[[constants]]\ncode = \"Courier\"\ntype = \"user\"\n\n[[fields]]\nkind = \"deal\"\ncode = \"UF_DELIVERY_DATE\"\ntype = \"date\"\n\n[[pipelines]]\ncode = \"general\"",
        )
        .replace("Contract for {=Document.TITLE}", "Contract: {=Document.TITLE}")
        .replace("Order the goods\"", "Order the goods now\"")
        .replace(
            "[[triggers]]\npipeline = \"general\"\nstage = \"CONTRACT\"\ncode = \"incoming_call\"\n",
            "[[robots]]\npipeline = \"general\"\nstage = \"DELIVERY\"\nplugin = \"standard\"\nrobot = \"notify\"\nrecipient = { constant = \"Courier\" }\nproperties = { text = \"Deliver {=Document.TITLE}\" }\n",
        )
}

async fn a_newer_version_adds_what_it_adds_and_keeps_what_the_admin_changed(db: Db) {
    let engine = standard_portal(db).await;
    engine.install_template(SAMPLE).await.unwrap();
    // The admin rewords the shipment notice.
    let mut notice = engine.store().robots_at("shipment", "ORDER").await.unwrap().remove(0);
    notice.properties.insert(
        "text".into(),
        FieldValue::Single(Value::Text("Order the goods today".into())),
    );
    engine.replace_robot(&notice).await.unwrap();
    let task_id = engine.store().robots_at("general", "CONTRACT").await.unwrap()[0].id;
    let trigger = engine.store().all_triggers().await.unwrap();

    let v2 = sample_1_1();
    assert!(
        v2.contains("DELIVERY") && v2.contains("Courier") && !v2.contains("incoming_call"),
        "{v2}"
    );
    let report = engine.install_template(&v2).await.unwrap();
    assert_eq!(report.previous_version.as_deref(), Some("1.0.0"));
    assert_eq!(report.version, "1.1.0");
    assert_eq!(
        report.added,
        [
            "field deal.UF_DELIVERY_DATE",
            "constant Courier",
            "stage general/DELIVERY",
            "robot standard.notify at general/DELIVERY"
        ]
    );
    assert_eq!(report.updated, ["robot standard.task at general/CONTRACT"]);
    assert_eq!(report.kept, ["robot standard.notify at shipment/ORDER"]);
    assert_eq!(
        report.removed_from_template,
        ["trigger general/CONTRACT/incoming_call#1"]
    );
    assert_eq!((report.robots_added, report.triggers_added), (1, 0));
    assert!(
        report.pipelines_created.is_empty() && report.pipelines_kept.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.to_bind, ["Clerk", "Courier"]);

    let general = engine.store().pipeline("general").await.unwrap().unwrap();
    let stages: Vec<&str> = general.stages.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(stages, ["NEW", "CONTRACT", "DELIVERY", "WON"]);
    let task = &engine.store().robots_at("general", "CONTRACT").await.unwrap()[0];
    assert_eq!(task.id, task_id, "updated in place");
    assert_eq!(
        task.properties["title"],
        FieldValue::Single(Value::Text("Contract: {=Document.TITLE}".into()))
    );
    let notice = &engine.store().robots_at("shipment", "ORDER").await.unwrap()[0];
    assert_eq!(
        notice.properties["text"],
        FieldValue::Single(Value::Text("Order the goods today".into())),
        "the admin's wording is kept"
    );
    assert_eq!(engine.store().robots_at("general", "DELIVERY").await.unwrap().len(), 1);
    assert_eq!(
        engine.store().all_triggers().await.unwrap(),
        trigger,
        "the trigger stays"
    );
    let fields = engine.store().custom_fields().await.unwrap();
    assert!(fields.iter().any(|f| f.code == "UF_DELIVERY_DATE"), "{fields:?}");

    let listed = engine.installed_templates().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, "1.1.0");
    let history: Vec<&str> = listed[0].history.iter().map(|h| h.version.as_str()).collect();
    assert_eq!(history, ["1.0.0"]);

    // A 1.2.0 that changes the task's title again: the admin changed it
    // since 1.1.0 this time, so it is kept.
    let mut task = engine.store().robots_at("general", "CONTRACT").await.unwrap().remove(0);
    task.properties
        .insert("title".into(), FieldValue::Single(Value::Text("Our contract".into())));
    engine.replace_robot(&task).await.unwrap();
    let v3 = v2
        .replace(r#"version = "1.1.0""#, r#"version = "1.2.0""#)
        .replace("Contract: {=Document.TITLE}", "The contract: {=Document.TITLE}");
    let report = engine.install_template(&v3).await.unwrap();
    assert!(report.added.is_empty() && report.updated.is_empty(), "{report:?}");
    assert_eq!(report.kept, ["robot standard.task at general/CONTRACT"]);
    let task = &engine.store().robots_at("general", "CONTRACT").await.unwrap()[0];
    assert_eq!(
        task.properties["title"],
        FieldValue::Single(Value::Text("Our contract".into()))
    );

    // The older 1.1.0 again is refused, and changes nothing.
    let Err(EngineError::Template(problems)) = engine.install_template(&v2).await else {
        panic!("an older version was accepted");
    };
    assert_eq!(
        problems[0].message,
        "template `sample` 1.2.0 is installed; 1.1.0 is older, so nothing was installed (install a version newer than 1.2.0)"
    );
}

async fn a_stage_the_admin_removed_is_not_brought_back(db: Db) {
    let engine = standard_portal(db).await;
    engine.install_template(SAMPLE).await.unwrap();
    let v2 = sample_1_1();
    // The admin removes stage WON (no deal is in it) before 1.1.0.
    let mut general = engine.store().pipeline("general").await.unwrap().unwrap();
    general.stages.retain(|s| s.code != "WON");
    engine.put_pipeline(&general).await.unwrap();
    let report = engine.install_template(&v2).await.unwrap();
    let general = engine.store().pipeline("general").await.unwrap().unwrap();
    let stages: Vec<&str> = general.stages.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(stages, ["NEW", "CONTRACT", "DELIVERY"]);
    assert!(
        report.added.contains(&"stage general/DELIVERY".to_owned()),
        "{report:?}"
    );
}

async fn constants_are_bound_only_to_values_of_their_type(db: Db) {
    let s = robohost_tests::http::server(db).await;
    s.engine.install_standard().await.unwrap();
    let toml = Some("application/toml");
    let with_text = SAMPLE.replace(
        "[[fields]]\nkind = \"deal\"\ncode = \"UF_IN_STOCK\"",
        "[[constants]]\ncode = \"Greeting\"\ntype = \"text\"\n\n[[fields]]\nkind = \"deal\"\ncode = \"UF_IN_STOCK\"",
    );
    s.send("POST", "/api/templates", Some(&s.admin), toml, with_text)
        .await
        .expect(200);
    let put = |code: &'static str, value: serde_json::Value| {
        let s = &s;
        async move {
            s.json(
                "PUT",
                &format!("/api/constants/{code}"),
                &s.admin,
                serde_json::json!({ "value": value }),
            )
            .await
        }
    };
    put("Clerk", serde_json::json!("Olga")).await.error(
        422,
        "invalid",
        Some("value"),
        "constant `Clerk` is declared as user; `Olga` is text",
    );
    put("Clerk", serde_json::json!({ "user": 999 })).await.error(
        422,
        "invalid",
        Some("value"),
        "constant `Clerk` is a user, and there is no user 999; add them under settings, people first",
    );
    put("Greeting", serde_json::json!({ "user": 1 })).await.error(
        422,
        "invalid",
        Some("value"),
        "constant `Greeting` is declared as text; `user 1` is user",
    );
    let constants = s.get("/api/constants", &s.admin).await.expect(200);
    assert_eq!(constants, serde_json::json!({}), "nothing was bound");
    s.engine.put_user(&json(r#"{"id": 7, "name": "Olga"}"#)).await.unwrap();
    put("Clerk", serde_json::json!({ "user": 7 })).await.expect(200);
    put("Greeting", serde_json::json!("Hello")).await.expect(200);
    put("Clerk", serde_json::Value::Null).await.expect(200);
    // An undeclared constant takes any value, as before.
    put("Free", serde_json::json!(5)).await.expect(200);
}

async fn robots_use_constants_only_where_their_type_fits(db: Db) {
    let s = robohost_tests::http::server(db).await;
    s.engine.install_standard().await.unwrap();
    let toml = Some("application/toml");
    let with_text = SAMPLE.replace(
        "[[fields]]\nkind = \"deal\"\ncode = \"UF_IN_STOCK\"",
        "[[constants]]\ncode = \"Greeting\"\ntype = \"text\"\n\n[[fields]]\nkind = \"deal\"\ncode = \"UF_IN_STOCK\"",
    );
    s.send("POST", "/api/templates", Some(&s.admin), toml, with_text.clone())
        .await
        .expect(200);
    let path = "/api/pipelines/general/stages/NEW/robots";
    let robot = |recipient: serde_json::Value, properties: serde_json::Value| serde_json::json!({ "plugin": "standard", "robot": "task", "recipient": recipient, "properties": properties });
    let refused = s
        .json(
            "POST",
            path,
            &s.admin,
            robot(
                serde_json::json!({ "constant": "Greeting" }),
                serde_json::json!({ "title": "Hi" }),
            ),
        )
        .await;
    refused.error(
        422,
        "invalid",
        Some("recipient"),
        "constant `Greeting` is declared as text, not a user: a robot is addressed to a user",
    );
    let observers = serde_json::json!({ "title": "Hi", "observers": ["{=GlobalConst.Greeting}"] });
    s.json(
        "POST",
        path,
        &s.admin,
        robot(serde_json::json!("responsible"), observers),
    )
    .await
    .error(
        422,
        "invalid",
        Some("properties.observers"),
        "constant `Greeting` is declared as text; this property takes user",
    );
    let inside = serde_json::json!({ "title": "Hi", "deadline_hours": "1{=GlobalConst.Clerk}" });
    s.json("POST", path, &s.admin, robot(serde_json::json!("responsible"), inside))
        .await
        .error(
            422,
            "invalid",
            Some("properties.deadline_hours"),
            "constant `Clerk` inside a text makes a text; this property takes integer",
        );
    // Where the types fit: a user constant as observer and in a title.
    let fits = serde_json::json!({ "title": "For {=GlobalConst.Clerk}: {=GlobalConst.Greeting}", "observers": ["{=GlobalConst.Clerk}"] });
    s.json(
        "POST",
        path,
        &s.admin,
        robot(serde_json::json!({ "constant": "Clerk" }), fits),
    )
    .await
    .expect(201);

    // In a template, both are problems on the robot's line.
    let engine = standard_portal(db).await;
    let bad = with_text
        .replace(
            r#"recipient = { constant = "Clerk" }"#,
            r#"recipient = { constant = "Greeting" }"#,
        )
        .replace(
            "properties = { text = \"Order the goods\" }",
            "properties = { text = \"Order the goods\", recipient = \"{=GlobalConst.Greeting}\" }",
        );
    let Err(EngineError::Template(problems)) = engine.install_template(&bad).await else {
        panic!("the template was accepted");
    };
    let found: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (
                46,
                "robot `task` at general/CONTRACT: `recipient`: constant `Greeting` is declared as text, not a user: a robot is addressed to a user"
            ),
            (
                63,
                "robot `notify` at shipment/ORDER: `properties.recipient`: constant `Greeting` is declared as text; this property takes user"
            ),
        ]
    );
    // A template declaring a constant the portal has with another type.
    let clash = SAMPLE.replace("code = \"Clerk\"\ntype = \"user\"", "code = \"Clerk\"\ntype = \"text\"");
    let Err(EngineError::Template(problems)) = s.engine.install_template(&clash.replace("1.0.0", "2.0.0")).await else {
        panic!("the template was accepted");
    };
    let found: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
    assert_eq!(
        found[0],
        (
            8,
            "constant `Clerk` is declared in the portal as user; the template declares text"
        )
    );
}

/// Two robots of one stage: the second uses the task the first made.
const CHAINED: &str = r#"
format = 1
code = "chained"
version = "1.0.0"
packages = ["standard"]

[[pipelines]]
code = "sales"
kind = "deal"
names = { en = "Sales" }
stages = [{ code = "NEW", semantic = "in-progress", names = { en = "New" } }]

[[robots]]
id = "prepare"
pipeline = "sales"
stage = "NEW"
plugin = "standard"
robot = "task"
recipient = "responsible"
properties = { title = "Prepare", wait = false }

[[robots]]
pipeline = "sales"
stage = "NEW"
plugin = "standard"
robot = "comment"
timing = { after_previous = true }
properties = { text = "Made {=Robot.prepare.task}" }
"#;

async fn robot_references_in_a_template_survive_install_and_export(db: Db) {
    let engine = standard_portal(db).await;
    engine.install_template(CHAINED).await.unwrap();
    let robots = engine.store().robots_at("sales", "NEW").await.unwrap();
    let text = format!("Made {{=Robot.{}.task}}", robots[0].id);
    assert_eq!(robots[1].properties["text"], FieldValue::Single(Value::Text(text)));

    // It runs: the comment names the task the first robot made.
    engine.put_user(&json(r#"{"id": 7, "name": "Olga"}"#)).await.unwrap();
    let request: NewEntityRequest =
        json(r#"{"kind": "deal", "pipeline": "sales", "responsible": 7, "fields": {"TITLE": "Pumps"}}"#);
    let (draft, links) = request.into_entity().unwrap();
    let deal = engine.create_entity(draft, links).await.unwrap();
    engine.run_until_idle().await.unwrap();
    let runs = engine.store().runs(Some(deal.reference()), 10).await.unwrap();
    let comment = runs.iter().find(|r| r.robot_id == robots[1].id).unwrap();
    let report = comment.report.as_ref().unwrap();
    assert_eq!(comment.status, RunStatus::Succeeded, "{report:?}");
    let made = report.properties["text"].to_string();
    assert!(made.starts_with("Made task:"), "{made}");

    // Exported, the reference is to the template-local id again.
    let first = engine.export_template("chained", "1.0.0").await.unwrap();
    assert!(first.contains("id = \"prepare\""), "{first}");
    assert!(first.contains("{=Robot.prepare.task}"), "{first}");
    let again = standard_portal(db).await;
    again.install_template(&first).await.unwrap();
    assert_eq!(again.export_template("chained", "1.0.0").await.unwrap(), first);

    // A portal's own robots get ids on export: `robot1`, ...
    let own = standard_portal(db).await;
    own.put_pipeline(&engine.store().pipeline("sales").await.unwrap().unwrap())
        .await
        .unwrap();
    let mut task = robots[0].clone();
    task.id = 0;
    let id = own.add_robot(&task).await.unwrap();
    let mut comment = robots[1].clone();
    comment.id = 0;
    let text = format!("Made {{=Robot.{id}.task}}");
    comment
        .properties
        .insert("text".into(), FieldValue::Single(Value::Text(text)));
    own.add_robot(&comment).await.unwrap();
    let exported = own.export_template("own", "1.0.0").await.unwrap();
    assert!(
        exported.contains("id = \"robot1\"") && exported.contains("{=Robot.robot1.task}"),
        "{exported}"
    );
    let into = standard_portal(db).await;
    into.install_template(&exported).await.unwrap();
    assert_eq!(into.export_template("own", "1.0.0").await.unwrap(), exported);
}

async fn robot_references_a_template_cannot_resolve_are_refused(db: Db) {
    let engine = standard_portal(db).await;
    let bad = CHAINED
        .replace("{=Robot.prepare.task}", "{=Robot.7.task} {=Robot.later.task}")
        .replace(
            r#"id = "prepare""#,
            r#"id = "prepare"
"#,
        );
    let Err(EngineError::Template(problems)) = engine.install_template(&bad).await else {
        panic!("the template was accepted");
    };
    let found: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (
                23,
                "robot `comment` at sales/NEW: property `text`: `{=Robot.7...}` names a robot by a portal's number; in a template give the robot an `id` (such as `id = \"call1\"`) and write `{=Robot.call1...}`"
            ),
            (
                23,
                "robot `comment` at sales/NEW: property `text`: no earlier robot of sales/NEW in the template has the id `later`"
            ),
        ]
    );
    let twice = CHAINED.replace("[[robots]]\npipeline", "[[robots]]\nid = \"prepare\"\npipeline");
    let Err(EngineError::Template(problems)) = engine.install_template(&twice).await else {
        panic!("the template was accepted");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].message,
        "robot `comment` at sales/NEW: id `prepare` is given to two robots"
    );
}

robohost_tests::on_both!(
    a_newer_version_adds_what_it_adds_and_keeps_what_the_admin_changed,
    a_stage_the_admin_removed_is_not_brought_back,
    constants_are_bound_only_to_values_of_their_type,
    robots_use_constants_only_where_their_type_fits,
    robot_references_in_a_template_survive_install_and_export,
    robot_references_a_template_cannot_resolve_are_refused,
    a_trigger_the_api_would_refuse_is_refused_with_its_line,
    the_demo_portal_runs_its_robots_at_once,
    prom2b_installs_beside_existing_leads_and_deals,
    templates_install_and_export_over_http,
    invalid_templates_are_refused_with_each_location_and_nothing_is_written,
    export_then_install_then_export_is_identical,
    installing_into_a_portal_with_data_leaves_it_untouched,
);
