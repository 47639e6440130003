//! The whole Prom2B process through the HTTP API, on the controlled clock:
//! the template installed over HTTP, every user action a request, and the
//! exact tasks, notifications, calls, controls, stage moves and due times
//! asserted. The portal works in Moscow, Monday to Friday 09:00-18:00, with
//! a public holiday on Tuesday 2026-12-01.

use robohost::domain::{EntityKind, EntityRef, Timestamp};
use robohost::engine::PROM2B;
use robohost_tests::db::Db;
use robohost_tests::fixtures::{at, wednesday};
use robohost_tests::http::{Server, server};
use serde_json::{Value, json};

/// The JSON form of a moment, as entity fields hold it.
fn datetime(text: &str) -> Value {
    json!({ "datetime": at(text).to_string() })
}

const MANAGER: u64 = 1;
const HEAD: u64 = 2;
const CONSULTANT: u64 = 3;
const CLERK: u64 = 4;
const PURCHASER: u64 = 7;

/// A portal with Prom2B installed over HTTP, its team and its calendar,
/// the clock at Wednesday 2026-11-25 10:00 in Moscow.
async fn prom2b(db: Db) -> Server {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    let report = s
        .send(
            "POST",
            "/api/templates",
            Some(&s.admin),
            Some("application/toml"),
            PROM2B,
        )
        .await
        .expect(200);
    assert_eq!(
        report["to_bind"],
        json!(["Consultant", "Clerk", "Accountant", "Lawyer", "Purchaser"])
    );
    // Its calls and emails need a source: a trigger plugin and an endpoint.
    assert_eq!(
        report["to_source"],
        json!(["incoming_call", "incoming_email", "missed_call"])
    );
    s.json(
        "PUT",
        "/api/departments/1",
        &s.admin,
        json!({"name": "Sales", "head": HEAD}),
    )
    .await
    .expect(200);
    let people = [
        "Anna Smirnova",
        "Boris Petrov",
        "Clara Orlova",
        "Dmitry Volkov",
        "Elena Sokolova",
        "Fyodor Kuznetsov",
        "Galina Lebedeva",
    ];
    for (i, name) in people.iter().enumerate() {
        let body = json!({"name": name, "department": 1});
        s.json("PUT", &format!("/api/users/{}", i + 1), &s.admin, body)
            .await
            .expect(200);
    }
    for (code, user) in [
        ("Consultant", 3),
        ("Clerk", 4),
        ("Accountant", 5),
        ("Lawyer", 6),
        ("Purchaser", 7),
    ] {
        let body = json!({"value": {"user": user}});
        s.json("PUT", &format!("/api/constants/{code}"), &s.admin, body)
            .await
            .expect(200);
    }
    let calendar = json!({"time_zone": "Europe/Moscow", "holidays": ["2026-12-01"]});
    s.json("PUT", "/api/calendar", &s.admin, calendar).await.expect(200);
    s.clock.set(wednesday());
    s
}

/// Runs everything due now.
async fn settle(s: &Server) {
    s.engine.run_until_idle().await.unwrap();
}

/// Moves the clock to `when` and runs what is due.
async fn at_time(s: &Server, when: &str) {
    s.clock.set(at(when));
    settle(s).await;
}

async fn create(s: &Server, body: Value) -> EntityRef {
    let created = s.json("POST", "/api/entities", &s.admin, body).await.expect(201);
    let kind: EntityKind = created["kind"].as_str().unwrap().parse().unwrap();
    let id = created["id"].as_u64().unwrap();
    settle(s).await;
    EntityRef { kind, id }
}

async fn stage(s: &Server, r: EntityRef) -> String {
    let e = s.entity(r).await;
    format!("{}/{}", e["pipeline"].as_str().unwrap(), e["stage"].as_str().unwrap())
}

/// Moves an entity to `stage` and runs what is due.
async fn move_to(s: &Server, r: EntityRef, stage: &str) {
    s.move_to(r, stage).await;
    settle(s).await;
}

async fn patch(s: &Server, r: EntityRef, fields: Value) {
    let path = format!("/api/entities/{}/{}", r.kind.as_str(), r.id);
    s.json("PATCH", &path, &s.admin, json!({"fields": fields}))
        .await
        .expect(200);
    settle(s).await;
}

async fn all(s: &Server, kind: &str) -> Vec<Value> {
    let listed = s
        .get(&format!("/api/entities/{kind}?limit=1000"), &s.admin)
        .await
        .expect(200);
    listed.as_array().unwrap().clone()
}

/// The entity of `kind` made last.
async fn newest(s: &Server, kind: &str) -> Value {
    all(s, kind).await.pop().unwrap_or_else(|| panic!("no {kind} yet"))
}

async fn notifications(s: &Server, user: u64) -> Vec<(Timestamp, String)> {
    let listed = s
        .get(&format!("/api/notifications?user={user}"), &s.admin)
        .await
        .expect(200);
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                Timestamp(n["at"].as_i64().unwrap()),
                n["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn complete(s: &Server, task: &Value) {
    let r = EntityRef {
        kind: EntityKind::Task,
        id: task["id"].as_u64().unwrap(),
    };
    patch(s, r, json!({"STATUS": {"option": "completed"}})).await;
}

/// A standard or custom field of an entity as the API shows it.
fn field<'a>(e: &'a Value, code: &str) -> &'a Value {
    let group = if code.starts_with("UF_") {
        "custom_fields"
    } else {
        "fields"
    };
    &e[group][code]
}

fn text(e: &Value, code: &str) -> String {
    let value = field(e, code);
    value
        .as_str()
        .or_else(|| value["option"].as_str())
        .unwrap_or_else(|| panic!("{code} of {e}"))
        .to_owned()
}

async fn a_lead_not_reached_in_five_calls_ends_at_does_not_get_in_touch(db: Db) {
    let s = prom2b(db).await;
    let lead = create(
        &s,
        json!({"kind": "lead", "pipeline": "leads", "responsible": MANAGER,
               "fields": {"TITLE": "Pumps", "SOURCE_ID": "WEB"}}),
    )
    .await;
    assert_eq!(stage(&s, lead).await, "leads/PROCESSING");
    let call = newest(&s, "activity").await;
    assert_eq!(text(&call, "SUBJECT"), "Call attempt 1 of 5: Pumps");
    assert_eq!(call["fields"]["START"], datetime("2026-11-25T10:00:00+03:00"));
    assert_eq!(call["responsible"], MANAGER);

    // Each failed attempt parks the lead until the next is due, counted
    // from when the request came in.
    let attempts = [
        ("2026-11-25T10:05:00+03:00", "2026-11-25T10:30:00+03:00"),
        ("2026-11-25T10:35:00+03:00", "2026-11-25T11:00:00+03:00"),
        ("2026-11-25T11:05:00+03:00", "2026-11-26T10:00:00+03:00"),
        ("2026-11-26T10:05:00+03:00", "2026-11-28T10:00:00+03:00"),
    ];
    for (n, (failed, due)) in attempts.into_iter().enumerate() {
        at_time(&s, failed).await;
        move_to(&s, lead, "NO_ANSWER").await;
        assert_eq!(stage(&s, lead).await, "leads/NO_ANSWER", "after attempt {}", n + 1);
        let before = Timestamp(at(due).0 - 1000);
        s.clock.set(before);
        settle(&s).await;
        assert_eq!(
            stage(&s, lead).await,
            "leads/NO_ANSWER",
            "a second before attempt {} is due",
            n + 2
        );
        at_time(&s, due).await;
        assert_eq!(stage(&s, lead).await, "leads/PROCESSING", "attempt {} is due", n + 2);
        let call = newest(&s, "activity").await;
        assert_eq!(text(&call, "SUBJECT"), format!("Call attempt {} of 5: Pumps", n + 2));
        assert_eq!(call["fields"]["START"], datetime(due));
    }
    at_time(&s, "2026-11-28T10:05:00+03:00").await;
    move_to(&s, lead, "NO_ANSWER").await;
    assert_eq!(stage(&s, lead).await, "leads/NO_CONTACT");
    assert_eq!(all(&s, "activity").await.len(), 5, "five calls in all");
    assert_eq!(field(&s.entity(lead).await, "UF_CALL_ATTEMPTS"), &json!(5));

    // A lead from a call gets no call attempts.
    let called = create(
        &s,
        json!({"kind": "lead", "pipeline": "leads", "fields": {"TITLE": "Valves", "SOURCE_ID": "CALL"}}),
    )
    .await;
    assert_eq!(stage(&s, called).await, "leads/PROCESSING");
    assert_eq!(all(&s, "activity").await.len(), 5);
}

async fn a_target_lead_becomes_a_deal_that_runs_through_general_to_shipment(db: Db) {
    let s = prom2b(db).await;
    let lead = create(
        &s,
        json!({"kind": "lead", "pipeline": "leads", "responsible": MANAGER, "fields": {
            "TITLE": "Pumps for a plant", "SOURCE_ID": "CALL", "NAME": "Ivan", "PHONE": "+7 900 100-20-30",
            "EMAIL": "ivan@plant.example", "COMPANY_TITLE": "Plant LLC",
            "UF_CLIENT_REQUEST": "Ten pumps", "UF_NEEDS_CONSULTATION": true}}),
    )
    .await;
    move_to(&s, lead, "TARGET").await;

    // Conversion: contact, company and deal, with the lead's fields.
    let contact = newest(&s, "contact").await;
    assert_eq!(
        (text(&contact, "NAME"), text(&contact, "PHONE")),
        ("Ivan".into(), "+7 900 100-20-30".into())
    );
    let company = newest(&s, "company").await;
    assert_eq!(text(&company, "TITLE"), "Plant LLC");
    let deal_json = newest(&s, "deal").await;
    let deal = EntityRef {
        kind: EntityKind::Deal,
        id: deal_json["id"].as_u64().unwrap(),
    };
    assert_eq!(stage(&s, deal).await, "general/EQUIPMENT_SELECTION");
    assert_eq!(text(&deal_json, "UF_CLIENT_REQUEST"), "Ten pumps");
    assert_eq!(deal_json["responsible"], MANAGER);
    let store = s.engine.store();
    assert_eq!(store.related(deal, EntityKind::Contact).await.unwrap().len(), 1);
    assert_eq!(store.related(deal, EntityKind::Company).await.unwrap().len(), 1);

    // Equipment selection: the consultant's task; its completion moves on.
    let task = newest(&s, "task").await;
    assert_eq!(task["responsible"], CONSULTANT);
    assert_eq!(text(&task, "TITLE"), "Equipment selection: Pumps for a plant");
    assert!(text(&task, "DESCRIPTION").starts_with("Client request: Ten pumps."));
    complete(&s, &task).await;
    assert_eq!(stage(&s, deal).await, "general/FORMING_KP");

    // Forming the KP: at once, a day later, and the supervisor's control
    // two days later.
    at_time(&s, "2026-11-26T09:59:59+03:00").await;
    assert_eq!(notifications(&s, MANAGER).await.len(), 1, "no reminder before its day");
    at_time(&s, "2026-11-26T10:00:00+03:00").await;
    at_time(&s, "2026-11-27T10:00:00+03:00").await;
    let manager: Vec<(Timestamp, String)> = notifications(&s, MANAGER).await;
    assert_eq!(
        manager,
        [
            (
                at("2026-11-25T10:00:00+03:00"),
                "Prepare the commercial proposal for Pumps for a plant".into()
            ),
            (
                at("2026-11-26T10:00:00+03:00"),
                "Reminder: the commercial proposal for Pumps for a plant is not ready".into()
            ),
        ]
    );
    let head = notifications(&s, HEAD).await;
    assert_eq!(
        head,
        [(
            at("2026-11-27T10:00:00+03:00"),
            "Control: the commercial proposal for Pumps for a plant is still not ready".into()
        )]
    );

    // The KP file is attached: the deal goes on to get feedback. The call
    // comes three working days later, past the weekend and the holiday.
    at_time(&s, "2026-11-27T11:00:00+03:00").await;
    patch(
        &s,
        deal,
        json!({"UF_KP": {"file": {"id": 1, "name": "kp.pdf", "size": 2048}}}),
    )
    .await;
    assert_eq!(stage(&s, deal).await, "general/GETTING_FEEDBACK");
    at_time(&s, "2026-12-03T10:59:59+03:00").await;
    assert_eq!(all(&s, "activity").await.len(), 0, "no call before it is due");
    at_time(&s, "2026-12-03T11:00:00+03:00").await;
    let call = newest(&s, "activity").await;
    assert_eq!(
        text(&call, "SUBJECT"),
        "Get the client's feedback on the KP: Pumps for a plant"
    );
    assert_eq!(call["fields"]["START"], datetime("2026-12-03T11:00:00+03:00"));

    // The client calls: the trigger moves the deal on, and the control due
    // five working days after entry (Monday 2026-12-07) never comes.
    at_time(&s, "2026-12-03T12:00:00+03:00").await;
    s.json(
        "POST",
        "/api/events",
        &s.admin,
        json!({"trigger": "incoming_call", "entity": format!("deal:{}", deal.id)}),
    )
    .await
    .expect(200);
    settle(&s).await;
    assert_eq!(stage(&s, deal).await, "general/FEEDBACK_RECEIVED");
    let reaction = newest(&s, "task").await;
    assert_eq!(text(&reaction, "TASK_TYPE"), "assignment");
    assert_eq!(
        text(&reaction, "TITLE"),
        "React to the client's feedback: Pumps for a plant"
    );
    let latest = notifications(&s, MANAGER).await;
    assert_eq!(latest[2].1, "The client answered about Pumps for a plant");
    assert_eq!(
        latest[3].1,
        "Assignment: React to the client's feedback: Pumps for a plant"
    );
    at_time(&s, "2026-12-07T11:00:00+03:00").await;
    assert_eq!(
        notifications(&s, HEAD).await.len(),
        1,
        "the feedback control was cancelled"
    );

    // Contract signing: the clerk's task, watched by the accountant and the
    // lawyer; when it is done, the manager hears of it.
    move_to(&s, deal, "CONTRACT_SIGNING").await;
    let contract = newest(&s, "task").await;
    assert_eq!(contract["responsible"], CLERK);
    assert_eq!(contract["fields"]["OBSERVERS"], json!([{"user": 5}, {"user": 6}]));
    assert_eq!(
        text(&contract, "DESCRIPTION"),
        "Anna Smirnova, you need to prepare the contract and the invoice for this company. \
         All information is in the deal card."
    );
    complete(&s, &contract).await;
    let latest = notifications(&s, MANAGER).await;
    assert_eq!(
        latest.last().unwrap().1,
        "The contract and the invoice for Pumps for a plant are ready"
    );

    // Awaiting payment: a call to check it in three days.
    patch(&s, deal, json!({"UF_PAYMENT_TYPE": {"option": "prepayment"}})).await;
    move_to(&s, deal, "AWAITING_PAYMENT").await;
    let call = newest(&s, "activity").await;
    assert_eq!(text(&call, "SUBJECT"), "Check the payment status: Pumps for a plant");
    assert_eq!(call["fields"]["START"], datetime("2026-12-10T11:00:00+03:00"));

    // Prepayment: handed over to Shipment. Not in stock: the purchaser's
    // task holds it at the supplier order until the goods arrive.
    move_to(&s, deal, "PREPAYMENT_RECEIVED").await;
    assert_eq!(stage(&s, deal).await, "shipment/ORDER_FROM_SUPPLIER");
    let order = newest(&s, "task").await;
    assert_eq!(order["responsible"], PURCHASER);
    assert_eq!(text(&order, "TITLE"), "Order from supplier | Pumps for a plant");
    complete(&s, &order).await;
    assert_eq!(stage(&s, deal).await, "shipment/IN_WAREHOUSE");
    assert_eq!(
        text(&newest(&s, "task").await, "TITLE"),
        "Ship the goods: Pumps for a plant"
    );

    // Shipped, prepaid: on to the closing documents.
    move_to(&s, deal, "SHIPMENT").await;
    assert_eq!(stage(&s, deal).await, "shipment/CLOSING_DOCUMENTS");
    let closing = newest(&s, "task").await;
    assert_eq!(
        text(&closing, "TITLE"),
        "Check that all closing documents of Pumps for a plant are received, then finish the deal"
    );
}

async fn shipment_takes_the_in_stock_and_postpayment_branches(db: Db) {
    let s = prom2b(db).await;
    let deal = create(
        &s,
        json!({"kind": "deal", "pipeline": "shipment", "responsible": MANAGER, "fields": {
            "TITLE": "Gearboxes", "UF_IN_STOCK": true, "UF_PAYMENT_TYPE": {"option": "postpayment"}}}),
    )
    .await;
    assert_eq!(
        stage(&s, deal).await,
        "shipment/IN_WAREHOUSE",
        "in stock: no supplier order"
    );
    let tasks = all(&s, "task").await;
    assert_eq!(tasks.len(), 1, "only the shipping task: {tasks:?}");
    assert_eq!(tasks[0]["responsible"], MANAGER);

    move_to(&s, deal, "SHIPMENT").await;
    assert_eq!(stage(&s, deal).await, "shipment/POSTPAYMENT");
    let call = newest(&s, "activity").await;
    assert_eq!(text(&call, "SUBJECT"), "Get the postpayment: Gearboxes");
    let manager = notifications(&s, MANAGER).await;
    let texts: Vec<&str> = manager.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["Gearboxes is being shipped", "Get the postpayment for Gearboxes"]
    );

    // The supervisor's control, ten working days later: past two weekends
    // and the holiday, Thursday 2026-12-10 10:00.
    at_time(&s, "2026-12-10T09:59:59+03:00").await;
    assert!(notifications(&s, HEAD).await.is_empty());
    at_time(&s, "2026-12-10T10:00:00+03:00").await;
    assert_eq!(
        notifications(&s, HEAD).await,
        [(
            at("2026-12-10T10:00:00+03:00"),
            "Control: the postpayment for Gearboxes has not come in".into()
        )]
    );
}

robohost_tests::on_both!(
    a_lead_not_reached_in_five_calls_ends_at_does_not_get_in_touch,
    a_target_lead_becomes_a_deal_that_runs_through_general_to_shipment,
    shipment_takes_the_in_stock_and_postpayment_branches,
);
