//! Times as people read them (issue 15, item 8), over HTTP on the
//! controlled clock, on SQLite and PostgreSQL: dates in robot texts in the
//! portal's zone, date fields from the portal's midnight, robots timed by
//! a date field that is empty (waiting for it or skipped), undeclared date
//! fields refused, holidays as ranges, relative deadlines, notifications
//! naming their entity, and lead conversion copying declared fields only.

use robohost::domain::{EntityKind, EntityRef};
use robohost_tests::db::Db;
use robohost_tests::fixtures::at;
use robohost_tests::http::{Reply, Server, server};
use robohost_tests::on_both;
use serde_json::{Value, json};

/// A server with the standard robots, the Moscow calendar (a holiday on
/// Monday 30 November), the `general` pipeline and the deal fields
/// `UF_MEETING` (datetime), `UF_DUE` (date) and `UF_COUNT` (integer).
async fn portal(db: Db) -> Server {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    s.json("PUT", "/api/calendar", &s.admin, robohost_tests::fixtures::calendar())
        .await
        .expect(200);
    s.general_pipeline().await;
    for (code, kind) in [("UF_MEETING", "datetime"), ("UF_DUE", "date"), ("UF_COUNT", "integer")] {
        let decl = json!({"type": kind, "names": {"en": code}});
        s.json("PUT", &format!("/api/fields/deal/{code}"), &s.admin, decl)
            .await
            .expect(200);
    }
    s
}

async fn robot(s: &Server, stage: &str, binding: Value) -> Reply {
    let path = format!("/api/pipelines/general/stages/{stage}/robots");
    s.json("POST", &path, &s.admin, binding).await
}

async fn deal(s: &Server, fields: Value) -> EntityRef {
    let deal = json!({"kind": "deal", "pipeline": "general", "responsible": 7, "fields": fields});
    let deal = s.json("POST", "/api/entities", &s.admin, deal).await.expect(201);
    EntityRef {
        kind: EntityKind::Deal,
        id: deal["id"].as_u64().unwrap(),
    }
}

async fn comments(s: &Server, r: EntityRef) -> Vec<String> {
    let path = format!("/api/entities/deal/{}/timeline", r.id);
    let timeline = s.get(&path, &s.admin).await.expect(200);
    (timeline["comments"].as_array().unwrap().iter())
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

/// (status, due_at, reason) of each run on `r`, oldest first.
async fn runs(s: &Server, r: EntityRef) -> Vec<(String, String, String)> {
    let mut runs = s.runs(r).await;
    runs.sort_by_key(|run| run["id"].as_u64());
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    runs.iter()
        .map(|run| {
            (
                text(&run["status"]),
                text(&run["due_at"]),
                text(&run["report"]["reason"]["reason"]),
            )
        })
        .collect()
}

/// A date-time in a text reads in the portal's zone as `dd.mm.yyyy hh:mm`,
/// a date as `dd.mm.yyyy`, never as a UTC ISO string.
async fn texts_read_dates_in_the_portals_zone(db: Db) {
    let s = portal(db).await;
    let text = "Meeting {=Document.UF_MEETING}, pay by {=Document.UF_DUE}, created {=Document.DATE_CREATE}";
    robot(
        &s,
        "NEW",
        json!({"plugin": "standard", "robot": "comment", "properties": {"text": text}}),
    )
    .await
    .expect(201);
    // A text property that is one expression alone reads the same way.
    robot(
        &s,
        "NEW",
        json!({"plugin": "standard", "robot": "comment", "properties": {"text": "{=Document.UF_MEETING}"}}),
    )
    .await
    .expect(201);
    let r = deal(
        &s,
        json!({"TITLE": "Pumps", "UF_MEETING": {"datetime": "2026-12-06T11:30:00Z"}, "UF_DUE": {"date": "2026-12-31"}}),
    )
    .await;
    s.engine.run_until_idle().await.unwrap();
    let mut said = comments(&s, r).await;
    said.sort();
    assert_eq!(
        said,
        [
            "06.12.2026 14:30",
            "Meeting 06.12.2026 14:30, pay by 31.12.2026, created 25.11.2026 10:00"
        ]
    );
}

/// A robot timed by a date-only field counts from midnight in the portal's
/// zone (Moscow, UTC+3), not from UTC's.
async fn a_date_field_counts_from_the_portals_midnight(db: Db) {
    let s = portal(db).await;
    let timing = json!({"relative_to": {"field": "UF_DUE", "offset_seconds": 9 * 3600}});
    robot(
        &s,
        "NEW",
        json!({"plugin": "standard", "robot": "comment", "timing": timing, "properties": {"text": "due"}}),
    )
    .await
    .expect(201);
    let r = deal(&s, json!({"TITLE": "Pumps", "UF_DUE": {"date": "2026-12-01"}})).await;
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(
        runs(&s, r).await,
        [("queued".into(), "2026-12-01T06:00:00.000Z".into(), String::new())],
        "09:00 in Moscow"
    );
    s.clock.set(at("2026-12-01T08:59:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert!(comments(&s, r).await.is_empty());
    s.clock.set(at("2026-12-01T09:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(comments(&s, r).await, ["due"]);
}

/// A robot timed by a date field the deal leaves empty does not run at
/// entry: with `if_empty: wait` it waits for the field and is then due
/// from it; with `if_empty: skip` it is skipped, saying why.
async fn an_empty_date_field_waits_or_skips(db: Db) {
    let s = portal(db).await;
    let around =
        |if_empty: &str| json!({"relative_to": {"field": "UF_MEETING", "offset_seconds": -3600, "if_empty": if_empty}});
    let reminder = |text: &str, if_empty: &str| json!({"plugin": "standard", "robot": "comment", "timing": around(if_empty), "properties": {"text": text}});
    let waits = robot(&s, "NEW", reminder("an hour to the meeting", "wait"))
        .await
        .expect(201);
    robot(&s, "NEW", reminder("skipped without a date", "skip"))
        .await
        .expect(201);
    // Read back as chosen; `wait` is the default and left out.
    let listed = s
        .get("/api/pipelines/general/stages/NEW/robots", &s.admin)
        .await
        .expect(200);
    let if_empty: Vec<Value> = (listed.as_array().unwrap().iter())
        .map(|r| r["timing"]["relative_to"]["if_empty"].clone())
        .collect();
    assert_eq!(if_empty, [Value::Null, json!("skip")]);
    let r = deal(&s, json!({"TITLE": "Pumps"})).await;
    s.engine.run_until_idle().await.unwrap();
    let now = "2026-11-25T07:00:00.000Z".to_owned();
    assert_eq!(
        runs(&s, r).await,
        [
            ("waiting-for-date".into(), now.clone(), String::new()),
            ("skipped".into(), now.clone(), "date-empty".into()),
        ]
    );
    let skipped = &s
        .runs(r)
        .await
        .into_iter()
        .find(|run| run["status"] == "skipped")
        .unwrap();
    assert_eq!(skipped["report"]["reason"]["field"], "UF_MEETING");
    assert!(comments(&s, r).await.is_empty(), "nothing ran at entry");
    // Hours pass; nothing runs without the date.
    s.clock.set(at("2026-11-26T10:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert!(comments(&s, r).await.is_empty());
    // The meeting is set for Friday 15:00: the reminder is due at 14:00.
    let path = format!("/api/entities/deal/{}", r.id);
    let meeting = json!({"fields": {"UF_MEETING": {"datetime": "2026-11-27T15:00:00+03:00"}}});
    s.json("PATCH", &path, &s.admin, meeting).await.expect(200);
    let waiting = s
        .runs(r)
        .await
        .into_iter()
        .find(|run| run["robot_id"] == waits["id"])
        .unwrap();
    assert_eq!(
        (waiting["status"].as_str(), waiting["due_at"].as_str()),
        (Some("queued"), Some("2026-11-27T11:00:00.000Z"))
    );
    s.clock.set(at("2026-11-27T14:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(comments(&s, r).await, ["an hour to the meeting"]);
    // Another deal leaves the stage while it waits: its run is cancelled.
    let other = deal(&s, json!({"TITLE": "Valves"})).await;
    s.engine.run_until_idle().await.unwrap();
    s.move_to(other, "WON").await;
    let statuses: Vec<String> = runs(&s, other).await.into_iter().map(|(status, _, _)| status).collect();
    assert_eq!(statuses, ["cancelled", "skipped"]);
}

/// A robot timed by a custom field that is not declared, or holds no
/// date, is refused naming the field; through the API and in a template.
async fn undeclared_date_fields_are_refused(db: Db) {
    let s = portal(db).await;
    let timed = |field: &str| {
        json!({"plugin": "standard", "robot": "comment", "properties": {"text": "x"},
            "timing": {"relative_to": {"field": field, "offset_seconds": 0}}})
    };
    robot(&s, "NEW", timed("UF_NOPE")).await.error(
        422,
        "invalid",
        Some("timing.relative_to.field"),
        "`UF_NOPE` is not a declared deal field; declare it as a date or datetime field first",
    );
    robot(&s, "NEW", timed("UF_COUNT")).await.error(
        422,
        "invalid",
        Some("timing.relative_to.field"),
        "`UF_COUNT` holds integer values, not one date or date-time",
    );
    // The CRM's own date fields need no declaration.
    robot(&s, "NEW", timed("CLOSEDATE")).await.expect(201);
    robot(&s, "NEW", timed("UF_MEETING")).await.expect(201);
    let template = r#"
format = 1
code = "reminders"
version = "1.0.0"
names = { en = "Reminders" }
packages = ["standard"]

[[robots]]
pipeline = "general"
stage = "NEW"
plugin = "standard"
robot = "comment"
properties = { text = "x" }
timing = { relative_to = { field = "UF_CALL_AT", offset_seconds = 0 } }
"#;
    let toml = Some("application/toml");
    let reply = s.send("POST", "/api/templates", Some(&s.admin), toml, template).await;
    let body = reply.json().to_string();
    assert_eq!(reply.status, 422, "{body}");
    assert!(
        body.contains(
            "its timing: `UF_CALL_AT` is not a declared deal field; declare it as a date or datetime field first"
        ),
        "{body}"
    );
}

/// Holidays may be given as ranges: read back as written, and skipped by
/// robots counting working days.
async fn holidays_may_be_ranges(db: Db) {
    let s = portal(db).await;
    let calendar = json!({"time_zone": "Europe/Moscow", "holidays": ["2026-12-31..2027-01-08", "2027-02-23"]});
    s.json("PUT", "/api/calendar", &s.admin, calendar).await.expect(200);
    let stored = s.get("/api/calendar", &s.admin).await.expect(200);
    assert_eq!(stored["holidays"], json!(["2026-12-31..2027-01-08", "2027-02-23"]));
    let backwards = json!({"time_zone": "Europe/Moscow", "holidays": ["2027-01-08..2026-12-31"]});
    s.json("PUT", "/api/calendar", &s.admin, backwards).await.error(
        400,
        "bad_json",
        Some("holidays[0]"),
        "the holidays `2027-01-08..2026-12-31` end before they start",
    );
    let timing = json!({"delay_seconds": 86_400, "working_time": true});
    robot(
        &s,
        "NEW",
        json!({"plugin": "standard", "robot": "comment", "timing": timing, "properties": {"text": "next day"}}),
    )
    .await
    .expect(201);
    s.clock.set(at("2026-12-30T10:00:00+03:00"));
    let r = deal(&s, json!({"TITLE": "Pumps"})).await;
    // One working day after Wednesday 30 December: Monday 11 January.
    assert_eq!(runs(&s, r).await[0].1, "2027-01-11T07:00:00.000Z");
}

/// A notification names the entity it is about, in the API's listing.
async fn notifications_name_their_entity(db: Db) {
    let s = portal(db).await;
    let notify = json!({"plugin": "standard", "robot": "notify", "recipient": "responsible",
        "properties": {"text": "call the client before {=Document.UF_MEETING}"}});
    robot(&s, "NEW", notify).await.expect(201);
    let r = deal(
        &s,
        json!({"TITLE": "Pumps", "UF_MEETING": {"datetime": "2026-11-27T15:00:00+03:00"}}),
    )
    .await;
    s.engine.run_until_idle().await.unwrap();
    let listed = s.get("/api/notifications?user=7", &s.admin).await.expect(200);
    let id = r.id;
    assert_eq!(
        listed,
        json!([{
            "at": at("2026-11-25T10:00:00+03:00").0,
            "text": "call the client before 27.11.2026 15:00",
            "entity": format!("deal:{id}"),
            "entity_name": format!("Deal #{id} Pumps"),
            "headline": format!("Deal #{id} Pumps: call the client before 27.11.2026 15:00"),
        }])
    );
}

/// A task's deadline may be a time from the run: minutes, hours, or
/// working days by the portal's calendar (Monday 30 November is a holiday);
/// anything else fails the run naming the property.
async fn task_deadlines_may_be_relative(db: Db) {
    let s = portal(db).await;
    let task = |title: &str, deadline: &str| {
        json!({"plugin": "standard", "robot": "task", "recipient": "responsible",
            "properties": {"title": title, "deadline": deadline, "wait": false}})
    };
    for (title, deadline) in [
        ("soon", "in 15 minutes"),
        ("later", "in 2 hours"),
        ("after the weekend", "in 2 working days"),
        ("russian", "через 1 рабочий день"),
    ] {
        robot(&s, "NEW", task(title, deadline)).await.expect(201);
    }
    let broken = robot(&s, "NEW", task("never", "in 2 fortnights")).await.expect(201);
    // Friday 27 November, 10:00 in Moscow.
    s.clock.set(at("2026-11-27T10:00:00+03:00"));
    let r = deal(&s, json!({"TITLE": "Pumps"})).await;
    s.engine.run_until_idle().await.unwrap();
    let tasks = s.get("/api/entities/task", &s.admin).await.expect(200);
    let mut deadlines: Vec<(String, String)> = (tasks.as_array().unwrap().iter())
        .map(|t| {
            let title = t["fields"]["TITLE"].as_str().unwrap().to_owned();
            (title, t["fields"]["DEADLINE"]["datetime"].as_str().unwrap().to_owned())
        })
        .collect();
    deadlines.sort();
    assert_eq!(
        deadlines,
        [
            // Over the weekend and Monday's holiday: Tuesday, Wednesday.
            ("after the weekend".to_owned(), "2026-12-02T07:00:00.000Z".to_owned()),
            ("later".to_owned(), "2026-11-27T09:00:00.000Z".to_owned()),
            ("russian".to_owned(), "2026-12-01T07:00:00.000Z".to_owned()),
            ("soon".to_owned(), "2026-11-27T07:15:00.000Z".to_owned()),
        ]
    );
    let failed = s
        .runs(r)
        .await
        .into_iter()
        .find(|run| run["robot_id"] == broken["id"])
        .unwrap();
    assert_eq!(failed["status"], "dead");
    let message = failed["report"]["outcome"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("`in 2 fortnights` is neither a date-time nor a time from now"),
        "{}",
        failed["report"]
    );
}

/// Converting a lead copies to the deal only the custom fields deals
/// declare; the run's log names those it left out.
async fn a_converted_lead_copies_only_declared_fields(db: Db) {
    let s = portal(db).await;
    let leads = json!({"code": "leads", "kind": "lead", "names": {"en": "Leads"}, "stages": [
        {"code": "NEW", "names": {}, "semantic": "in-progress"},
        {"code": "TARGET", "names": {}, "semantic": "success"}]});
    s.json("PUT", "/api/pipelines/leads", &s.admin, leads).await.expect(200);
    for (code, kind) in [("UF_COUNT", "integer"), ("UF_FAIR", "text"), ("UF_MEETING", "datetime")] {
        let decl = json!({"type": kind});
        s.json("PUT", &format!("/api/fields/lead/{code}"), &s.admin, decl)
            .await
            .expect(200);
    }
    let convert = json!({"plugin": "standard", "robot": "convert_lead", "properties": {"deal_pipeline": "general"}});
    s.json("POST", "/api/pipelines/leads/stages/TARGET/robots", &s.admin, convert)
        .await
        .expect(201);
    let lead = json!({"kind": "lead", "pipeline": "leads", "fields": {"TITLE": "Pumps", "NAME": "Ivan",
        "UF_COUNT": 20, "UF_FAIR": "Metalloobrabotka", "UF_MEETING": {"datetime": "2026-11-27T12:00:00Z"}}});
    let lead = s.json("POST", "/api/entities", &s.admin, lead).await.expect(201);
    let lead = EntityRef {
        kind: EntityKind::Lead,
        id: lead["id"].as_u64().unwrap(),
    };
    s.move_to(lead, "TARGET").await;
    s.engine.run_until_idle().await.unwrap();
    let run = &s.runs(lead).await[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    let deal: EntityRef = run["report"]["returns"]["deal"]["entity"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deal = s.entity(deal).await;
    // Deals declare UF_COUNT and UF_MEETING (the portal's), not UF_FAIR.
    assert_eq!(
        deal["custom_fields"],
        json!({"UF_COUNT": 20, "UF_MEETING": {"datetime": "2026-11-27T12:00:00.000Z"}})
    );
    assert_eq!(deal["fields"]["TITLE"], "Pumps");
    let logs: Vec<&str> = (run["report"]["logs"].as_array().unwrap().iter())
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        logs,
        [format!(
            "not copied to the new deal deal:{}: UF_FAIR (not declared for deals)",
            deal["id"]
        )]
    );
}

on_both!(
    a_converted_lead_copies_only_declared_fields,
    task_deadlines_may_be_relative,
    notifications_name_their_entity,
    texts_read_dates_in_the_portals_zone,
    a_date_field_counts_from_the_portals_midnight,
    an_empty_date_field_waits_or_skips,
    undeclared_date_fields_are_refused,
    holidays_may_be_ranges,
);
