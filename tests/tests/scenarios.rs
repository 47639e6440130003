//! The sources' scenarios that depend on outside events and time, end to end over
//! HTTP on the controlled clock, with the standard robots and the example
//! trigger plugins, on SQLite and PostgreSQL.

use robohost::domain::{EntityKind, EntityRef, sign};
use robohost::engine::Clock;
use robohost_tests::db::Db;
use robohost_tests::http::{Server, server};
use robohost_tests::on_both;
use serde_json::{Value, json};

/// The order pipeline: new, awaiting payment, paid (won), cancelled (lost).
fn orders() -> Value {
    json!({"code": "orders", "kind": "deal", "names": {"en": "Orders"}, "stages": [
        {"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"},
        {"code": "AWAITING_PAYMENT", "names": {"en": "Awaiting payment"}, "semantic": "in-progress"},
        {"code": "PAID", "names": {"en": "Paid"}, "semantic": "success"},
        {"code": "CANCELLED", "names": {"en": "Cancelled"}, "semantic": "failure"}]})
}

async fn robot(s: &Server, stage: &str, binding: Value) {
    let path = format!("/api/pipelines/orders/stages/{stage}/robots");
    s.json("POST", &path, &s.admin, binding).await.expect(201);
}

/// The messages sent about an entity: (channel, to, body).
async fn sent(s: &Server, about: EntityRef) -> Vec<(String, String, String)> {
    let outbox = s
        .get(&format!("/api/outbox?entity={about}"), &s.admin)
        .await
        .expect(200);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    outbox
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (text(&m["channel"]), text(&m["to"]), text(&m["body"])))
        .collect()
}

/// Installs the trigger plugin `plugin` as package `name`, providing
/// `codes`, and makes an endpoint of `spec` for it: the endpoint as made.
async fn hook(s: &Server, name: &str, plugin: &str, codes: &str, mut spec: Value) -> Value {
    s.install_triggers(name, plugin, codes).await;
    spec["plugin"] = json!(name);
    s.json("POST", "/api/endpoints", &s.admin, spec).await.expect(201)
}

/// Posts `body` to endpoint `hook` as its sender does, signed with the
/// endpoint's secret when it has one: the call's record, with its hits and
/// what they did, as an admin sees it.
async fn post(s: &Server, hook: &Value, body: &Value) -> Value {
    let body = body.to_string();
    let signature = hook["secret"]
        .as_str()
        .map(|secret| sign(secret, s.clock.now().0 / 1000, body.as_bytes()));
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(signature.as_deref().map(|signature| ("robohost-signature", signature)));
    let path = hook["url"].as_str().unwrap();
    let receipt = s.raw("POST", path, &headers, body.into()).await.expect(200);
    s.get(&format!("/api/calls/{}", receipt["call"]), &s.admin)
        .await
        .expect(200)
}

/// The texts of user `user`'s notifications.
async fn notifications(s: &Server, user: u64) -> Vec<String> {
    let notes = s
        .get(&format!("/api/notifications?user={user}"), &s.admin)
        .await
        .expect(200);
    notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Scenario 7, payment link: when an order reaches "Awaiting payment" the
/// client gets an SMS with a payment link, and a reminder a day later; the
/// payment provider's notification moves the order to "Paid", which
/// cancels the reminder and notes the payment on the order.
async fn a_payment_link_and_the_payment_notification_move_the_order(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    s.json("PUT", "/api/pipelines/orders", &s.admin, orders())
        .await
        .expect(200);
    let link = "Order {=Document.ID}: pay at https://pay.example/checkout?order={=Document.ID}";
    robot(
        &s,
        "AWAITING_PAYMENT",
        json!({"plugin": "standard", "robot": "sms", "properties": {"text": link}}),
    )
    .await;
    let reminder = json!({"plugin": "standard", "robot": "sms", "timing": {"delay_seconds": 86_400},
        "properties": {"text": "A reminder: order {=Document.ID} awaits payment"}});
    robot(&s, "AWAITING_PAYMENT", reminder).await;
    let note = json!({"plugin": "standard", "robot": "comment",
        "properties": {"text": "Paid {=Event.AMOUNT} (payment {=Event.PAYMENT_ID})"}});
    robot(&s, "PAID", note).await;
    s.json(
        "POST",
        "/api/pipelines/orders/stages/PAID/triggers",
        &s.admin,
        json!({"code": "payment_received"}),
    )
    .await
    .expect(201);
    let payments = hook(
        &s,
        "payments",
        "payment_notice",
        r#""payment_received""#,
        json!({"title": "Payments"}),
    )
    .await;

    let client = json!({"kind": "contact", "fields": {"NAME": "Ivan", "PHONE": "+79123456789"}});
    let client = s.json("POST", "/api/entities", &s.admin, client).await.expect(201);
    let order = json!({"kind": "deal", "pipeline": "orders", "fields": {"TITLE": "Pumps"},
        "links": [{"kind": "contact", "id": client["id"]}]});
    let order = s.json("POST", "/api/entities", &s.admin, order).await.expect(201);
    let order = EntityRef {
        kind: EntityKind::Deal,
        id: order["id"].as_u64().unwrap(),
    };
    s.move_to(order, "AWAITING_PAYMENT").await;
    s.engine.run_until_idle().await.unwrap();
    let id = order.id;
    let first = format!("Order {id}: pay at https://pay.example/checkout?order={id}");
    assert_eq!(
        sent(&s, order).await,
        [("sms".into(), "+79123456789".into(), first.clone())]
    );
    let runs = s.runs(order).await;
    let waiting: Vec<&Value> = runs.iter().filter(|r| r["status"] == "queued").collect();
    assert_eq!(waiting.len(), 1, "the reminder waits: {runs:?}");
    assert_eq!(
        waiting[0]["due_at"],
        json!(robohost_tests::fixtures::at("2026-11-26T10:00:00+03:00"))
    );

    // A pending payment moves nothing; the succeeded one moves the order.
    let notify = async |event: &str| {
        let body = json!({"event": event, "payment": {"id": "pay_123", "amount": "1500.00", "currency": "RUB",
            "order_id": format!("deal:{id}"), "paid_at": "2026-11-25T07:30:00Z"}});
        post(&s, &payments, &body).await
    };
    assert_eq!(notify("payment.pending").await["status"], "handled");
    assert_eq!(s.entity(order).await["stage"], "AWAITING_PAYMENT");
    s.clock.advance(chrono::Duration::minutes(30));
    assert_eq!(notify("payment.succeeded").await["status"], "handled");
    assert_eq!(s.entity(order).await["stage"], "PAID");
    s.engine.run_until_idle().await.unwrap();

    // The payment is noted; the reminder was cancelled, and a day later no
    // second SMS goes out.
    let path = format!("/api/entities/deal/{id}/timeline");
    let timeline = s.get(&path, &s.admin).await.expect(200);
    assert_eq!(timeline["comments"][0]["text"], "Paid 1500.00 RUB (payment pay_123)");
    let runs = s.runs(order).await;
    let cancelled: Vec<&Value> = runs.iter().filter(|r| r["status"] == "cancelled").collect();
    assert_eq!(cancelled.len(), 1, "{runs:?}");
    assert_eq!(cancelled[0]["report"]["reason"], json!({"reason": "left-stage"}));
    s.clock.set(robohost_tests::fixtures::at("2026-11-27T10:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(sent(&s, order).await, [("sms".into(), "+79123456789".into(), first)]);
}

/// Scenario 3, escalation: the head of sales gets an SMS about a new lead
/// still unprocessed after 5 minutes, and only on working days.
async fn an_unprocessed_lead_is_escalated_on_working_days_only(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    s.json("PUT", "/api/calendar", &s.admin, robohost_tests::fixtures::calendar())
        .await
        .expect(200);
    let leads = serde_json::to_value(robohost_tests::fixtures::pipeline(
        "leads",
        "lead",
        &["NEW", "PROCESSING"],
    ))
    .unwrap();
    s.json("PUT", "/api/pipelines/leads", &s.admin, leads).await.expect(200);
    let escalation = json!({"plugin": "standard", "robot": "sms", "title": "Escalate to the head of sales",
        "timing": {"delay_seconds": 300, "skip_outside_working_time": true},
        "properties": {"to": "+79000000001", "text": "Lead {=Document.ID} ({=Document.NAME}) is unprocessed after 5 minutes"}});
    s.json("POST", "/api/pipelines/leads/stages/NEW/robots", &s.admin, escalation)
        .await
        .expect(201);
    // Postponing and skipping together is refused, naming the field.
    let both = json!({"plugin": "standard", "robot": "sms", "timing": {"working_time": true, "skip_outside_working_time": true},
        "properties": {"to": "+79000000001", "text": "x"}});
    s.json("POST", "/api/pipelines/leads/stages/NEW/robots", &s.admin, both)
        .await
        .error(422, "invalid", Some("timing.skip_outside_working_time"), "not both");
    let lead = async |name: &str| {
        let made = json!({"kind": "lead", "pipeline": "leads", "fields": {"NAME": name}});
        let made = s.json("POST", "/api/entities", &s.admin, made).await.expect(201);
        EntityRef {
            kind: EntityKind::Lead,
            id: made["id"].as_u64().unwrap(),
        }
    };
    let at = robohost_tests::fixtures::at;

    // Wednesday 10:00: one lead is taken at 10:03, the other is not.
    let taken = lead("Anna").await;
    let forgotten = lead("Boris").await;
    s.clock.set(at("2026-11-25T10:03:00+03:00"));
    s.move_to(taken, "PROCESSING").await;
    s.clock.set(at("2026-11-25T10:05:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    let text = format!("Lead {} (Boris) is unprocessed after 5 minutes", forgotten.id);
    assert_eq!(sent(&s, forgotten).await, [("sms".into(), "+79000000001".into(), text)]);
    assert_eq!(sent(&s, taken).await, []);
    assert_eq!(s.runs(taken).await[0]["status"], "cancelled");

    // Saturday noon: nobody is escalated at 12:05, and the run says why.
    s.clock.set(at("2026-11-28T12:00:00+03:00"));
    let weekend = lead("Vera").await;
    s.clock.set(at("2026-11-28T12:05:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(sent(&s, weekend).await, []);
    let run = &s.runs(weekend).await[0];
    assert_eq!(run["status"], "skipped");
    assert_eq!(run["due_at"], json!(at("2026-11-28T12:05:00+03:00")));
    assert_eq!(run["report"]["reason"], json!({"reason": "outside-working-time"}));
    assert_eq!(run["report"]["robot"]["title"], "Escalate to the head of sales");
}

/// Scenario 4, lead magnet: a site's form makes a lead and sends it the
/// guide by email; opening the email adds the lead to the mailing list;
/// a lead that has not opened it in 3 days is brought to the manager.
async fn a_lead_magnet_form_emails_the_guide_and_follows_up(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    robohost_tests::declare(&s.engine, &[("lead", "UF_MAILING", "text")]).await;
    let leads = serde_json::to_value(robohost_tests::fixtures::pipeline("leads", "lead", &["NEW", "OPENED"])).unwrap();
    s.json("PUT", "/api/pipelines/leads", &s.admin, leads).await.expect(200);
    let add = async |stage: &str, binding: Value| {
        let path = format!("/api/pipelines/leads/stages/{stage}/robots");
        s.json("POST", &path, &s.admin, binding).await.expect(201);
    };
    let guide = r#"<p>Hello, {=Document.NAME}! Here is <a href="https://example.com/guide.pdf">your guide</a>.</p>"#;
    add(
        "NEW",
        json!({"plugin": "standard", "robot": "email", "properties": {"subject": "Your guide", "body": guide}}),
    )
    .await;
    add(
        "NEW",
        json!({"plugin": "standard", "robot": "notify", "recipient": {"user": 7},
        "timing": {"delay_seconds": 3 * 86_400},
        "properties": {"text": "{=Document.NAME} has not opened the guide in 3 days"}}),
    )
    .await;
    add(
        "OPENED",
        json!({"plugin": "standard", "robot": "modify_fields",
        "properties": {"fields": ["UF_MAILING"], "values": ["guide-readers"]}}),
    )
    .await;
    s.json(
        "POST",
        "/api/pipelines/leads/stages/OPENED/triggers",
        &s.admin,
        json!({"code": "email_opened"}),
    )
    .await
    .expect(201);
    let form = json!({"pipeline": "leads", "fields": {"name": "NAME", "email": "EMAIL"}});
    let form = s
        .json(
            "POST",
            "/api/endpoints",
            &s.admin,
            json!({"title": "Guide", "form": form}),
        )
        .await
        .expect(201);
    let submit = async |body: &str| {
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let url = form["url"].as_str().unwrap();
        s.raw("POST", url, &headers, body.to_owned().into()).await.expect(200)
    };
    let ivan = submit("name=Ivan&email=ivan%40example.com").await;
    let maria = submit("name=Maria&email=maria%40example.com").await;
    assert_eq!(
        (ivan["status"].as_str(), maria["status"].as_str()),
        (Some("handled"), Some("handled"))
    );
    let leads = s.get("/api/entities/lead", &s.admin).await.expect(200);
    let lead = |i: usize| EntityRef {
        kind: EntityKind::Lead,
        id: leads[i]["id"].as_u64().unwrap(),
    };
    let (ivan, maria) = (lead(0), lead(1));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(s.engine.deliver_outbox().await.unwrap(), 2);
    let guide_for = |name: &str| guide.replace("{=Document.NAME}", name);
    assert_eq!(
        sent(&s, ivan).await,
        [("email".into(), "ivan@example.com".into(), guide_for("Ivan"))]
    );
    assert_eq!(
        sent(&s, maria).await,
        [("email".into(), "maria@example.com".into(), guide_for("Maria"))]
    );

    // Ivan opens it the next day: he is on the mailing list.
    s.clock.advance(chrono::Duration::days(1));
    let outbox = s.get(&format!("/api/outbox?entity={ivan}"), &s.admin).await.expect(200);
    let token = outbox[0]["token"].as_str().unwrap();
    assert_eq!(
        s.send("GET", &format!("/t/{token}/open.gif"), None, None, "")
            .await
            .status,
        200
    );
    s.engine.run_until_idle().await.unwrap();
    let opened = s.entity(ivan).await;
    assert_eq!(opened["stage"], "OPENED");
    assert_eq!(opened["custom_fields"]["UF_MAILING"], "guide-readers");

    // Three days on, the manager hears of Maria only.
    s.clock.advance(chrono::Duration::days(2));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(notifications(&s, 7).await, ["Maria has not opened the guide in 3 days"]);
    assert!(
        s.runs(ivan).await.iter().any(|r| r["status"] == "cancelled"),
        "Ivan's reminder was cancelled"
    );
    assert_eq!(s.entity(maria).await["custom_fields"]["UF_MAILING"], Value::Null);
}

/// Scenario 6, webinar chain: an SMS the day before the webinar, a thank
/// you an hour after it, the recording two days later, and the clients who
/// did not buy moved to a warming pipeline on the third day.
async fn a_webinar_chain_runs_around_the_webinars_date(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    let webinar = serde_json::to_value(robohost_tests::fixtures::pipeline("webinar", "deal", &["REGISTERED"])).unwrap();
    let warming = serde_json::to_value(robohost_tests::fixtures::pipeline("warming", "deal", &["NURTURE"])).unwrap();
    s.json("PUT", "/api/pipelines/webinar", &s.admin, webinar)
        .await
        .expect(200);
    s.json("PUT", "/api/pipelines/warming", &s.admin, warming)
        .await
        .expect(200);
    // A robot may be timed only by a declared date field.
    let declared = json!({"type": "datetime", "names": {"en": "Webinar at"}});
    s.json("PUT", "/api/fields/deal/UF_WEBINAR_AT", &s.admin, declared)
        .await
        .expect(200);
    let bought = json!({"type": "text", "names": {"en": "Bought"}});
    s.json("PUT", "/api/fields/deal/UF_BOUGHT", &s.admin, bought)
        .await
        .expect(200);
    let around =
        |offset_seconds: i64| json!({"relative_to": {"field": "UF_WEBINAR_AT", "offset_seconds": offset_seconds}});
    let sms = |offset: i64, text: &str| json!({"plugin": "standard", "robot": "sms", "timing": around(offset), "properties": {"text": text}});
    let not_bought = json!({"compare": {"field": "UF_BOUGHT", "op": "ne", "value": "Y"}});
    for binding in [
        sms(-86_400, "See you tomorrow at the webinar, {=Document.TITLE}"),
        sms(3_600, "Thank you for coming to the webinar"),
        sms(2 * 86_400, "The recording: https://example.com/webinar/recording"),
        json!({"plugin": "standard", "robot": "move_to_pipeline", "timing": around(3 * 86_400),
            "condition": not_bought, "properties": {"pipeline": "warming"}}),
    ] {
        s.json(
            "POST",
            "/api/pipelines/webinar/stages/REGISTERED/robots",
            &s.admin,
            binding,
        )
        .await
        .expect(201);
    }
    let at = robohost_tests::fixtures::at;
    let guest = async |name: &str, phone: &str| {
        let deal = json!({"kind": "deal", "pipeline": "webinar", "fields": {"TITLE": name, "PHONE": phone,
            "UF_WEBINAR_AT": {"datetime": "2026-11-26T15:00:00+03:00"}}});
        let deal = s.json("POST", "/api/entities", &s.admin, deal).await.expect(201);
        EntityRef {
            kind: EntityKind::Deal,
            id: deal["id"].as_u64().unwrap(),
        }
    };
    let (buyer, browser) = (
        guest("Anna", "+79000000002").await,
        guest("Boris", "+79000000003").await,
    );
    let texts =
        async |r: EntityRef| -> Vec<String> { sent(&s, r).await.into_iter().map(|(_, _, body)| body).collect() };

    s.clock.set(at("2026-11-25T15:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(texts(buyer).await, ["See you tomorrow at the webinar, Anna"]);
    assert_eq!(sent(&s, browser).await[0].1, "+79000000003");
    s.clock.set(at("2026-11-26T16:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(
        texts(browser).await.last().unwrap(),
        "Thank you for coming to the webinar"
    );
    // Anna buys on the second day.
    let path = format!("/api/entities/deal/{}", buyer.id);
    s.json("PATCH", &path, &s.admin, json!({"fields": {"UF_BOUGHT": "Y"}}))
        .await
        .expect(200);
    s.clock.set(at("2026-11-28T15:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(texts(browser).await.len(), 3);
    assert_eq!(
        texts(buyer).await.last().unwrap(),
        "The recording: https://example.com/webinar/recording"
    );
    s.clock.set(at("2026-11-29T15:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    let moved = s.entity(browser).await;
    assert_eq!(
        (moved["pipeline"].as_str(), moved["stage"].as_str()),
        (Some("warming"), Some("NURTURE"))
    );
    assert_eq!(s.entity(buyer).await["pipeline"], "webinar", "a buyer stays");
    let skipped: Vec<Value> = s
        .runs(buyer)
        .await
        .into_iter()
        .filter(|r| r["status"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["due_at"], json!(at("2026-11-29T15:00:00+03:00")));
}

/// Scenario 8, abandoned cart: reminders by email, SMS and messenger in
/// the first hours, then a task for a manager; paying cancels what is left.
async fn an_abandoned_cart_is_chased_until_it_is_paid(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    let carts = json!({"code": "carts", "kind": "deal", "names": {"en": "Carts"}, "stages": [
        {"code": "ABANDONED", "names": {"en": "Abandoned"}, "semantic": "in-progress"},
        {"code": "PAID", "names": {"en": "Paid"}, "semantic": "success"}]});
    s.json("PUT", "/api/pipelines/carts", &s.admin, carts).await.expect(200);
    let after = |hours: u64| json!({"delay_seconds": hours * 3_600});
    for binding in [
        json!({"plugin": "standard", "robot": "email", "timing": after(1),
            "properties": {"subject": "Your cart", "body": "{=Document.TITLE} wait in your cart"}}),
        json!({"plugin": "standard", "robot": "sms", "timing": after(3),
            "properties": {"text": "{=Document.TITLE} still wait in your cart"}}),
        json!({"plugin": "standard", "robot": "messenger", "timing": after(6),
            "properties": {"text": "Shall we hold {=Document.TITLE} for you?"}}),
        json!({"plugin": "standard", "robot": "task", "timing": after(24), "recipient": {"user": 7},
            "properties": {"title": "Call about the cart: {=Document.TITLE}"}}),
    ] {
        s.json(
            "POST",
            "/api/pipelines/carts/stages/ABANDONED/robots",
            &s.admin,
            binding,
        )
        .await
        .expect(201);
    }
    s.json(
        "POST",
        "/api/pipelines/carts/stages/PAID/triggers",
        &s.admin,
        json!({"code": "payment_received"}),
    )
    .await
    .expect(201);
    let payments = hook(
        &s,
        "payments",
        "payment_notice",
        r#""payment_received""#,
        json!({"signed": false}),
    )
    .await;
    let cart = async |title: &str, n: u32| {
        let deal = json!({"kind": "deal", "pipeline": "carts", "fields": {"TITLE": title,
            "EMAIL": format!("client{n}@example.com"), "PHONE": format!("+7900000001{n}"), "IM": format!("@client{n}")}});
        let deal = s.json("POST", "/api/entities", &s.admin, deal).await.expect(201);
        EntityRef {
            kind: EntityKind::Deal,
            id: deal["id"].as_u64().unwrap(),
        }
    };
    let (paid, lost) = (cart("Pumps", 1).await, cart("Valves", 2).await);
    let at = robohost_tests::fixtures::at;

    // Email at 11:00 and SMS at 13:00 for both; the pumps are paid at 14:00.
    for hour in ["11", "13"] {
        s.clock.set(at(&format!("2026-11-25T{hour}:00:00+03:00")));
        s.engine.run_until_idle().await.unwrap();
    }
    s.clock.set(at("2026-11-25T14:00:00+03:00"));
    let body = json!({"event": "payment.succeeded", "payment": {"id": "pay_9", "amount": "900.00", "currency": "RUB",
        "order_id": paid.to_string(), "paid_at": "2026-11-25T11:00:00Z"}});
    assert_eq!(post(&s, &payments, &body).await["status"], "handled");
    assert_eq!(s.entity(paid).await["stage"], "PAID");

    // The next day: the valves were chased to the end, the pumps no more.
    s.clock.set(at("2026-11-26T10:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    let to = |channel: &str, to: &str, body: &str| (channel.to_owned(), to.to_owned(), body.to_owned());
    assert_eq!(
        sent(&s, paid).await,
        [
            to("email", "client1@example.com", "Pumps wait in your cart"),
            to("sms", "+79000000011", "Pumps still wait in your cart")
        ]
    );
    assert_eq!(
        sent(&s, lost).await,
        [
            to("email", "client2@example.com", "Valves wait in your cart"),
            to("sms", "+79000000012", "Valves still wait in your cart"),
            to("messenger", "@client2", "Shall we hold Valves for you?"),
        ]
    );
    let tasks = s.get("/api/entities/task", &s.admin).await.expect(200);
    let titles: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["fields"]["TITLE"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Call about the cart: Valves"]);
    assert_eq!(tasks[0]["responsible"], 7);
    let cancelled = s
        .runs(paid)
        .await
        .into_iter()
        .filter(|r| r["status"] == "cancelled")
        .count();
    assert_eq!(cancelled, 2, "the messenger reminder and the task");
}

/// Scenario 5, partner application: a partner is asked by email for their
/// dealer certificate; their reply moves the application on and tells the
/// manager; without a reply in 3 days the manager is told, and when the
/// stage still has not changed 2 days after that, the department's head.
async fn a_partner_application_waits_for_the_partners_reply(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    // Olga (7) handles partners in department 2, which Sergey (8) heads.
    let partners = json!({"name": "Partners", "head": 8});
    s.json("PUT", "/api/departments/2", &s.admin, partners)
        .await
        .expect(200);
    for (id, name) in [(7, "Olga"), (8, "Sergey")] {
        let user = json!({"name": name, "department": 2});
        s.json("PUT", &format!("/api/users/{id}"), &s.admin, user)
            .await
            .expect(200);
    }
    let pipeline = json!({"code": "partners", "kind": "deal", "names": {"en": "Partner applications"}, "stages": [
        {"code": "REQUESTED", "names": {"en": "Certificate requested"}, "semantic": "in-progress"},
        {"code": "REPLIED", "names": {"en": "Partner replied"}, "semantic": "in-progress"},
        {"code": "APPROVED", "names": {"en": "Approved"}, "semantic": "success"},
        {"code": "DECLINED", "names": {"en": "Declined"}, "semantic": "failure"}]});
    s.json("PUT", "/api/pipelines/partners", &s.admin, pipeline)
        .await
        .expect(200);
    let add = async |stage: &str, binding: Value| {
        let path = format!("/api/pipelines/partners/stages/{stage}/robots");
        s.json("POST", &path, &s.admin, binding).await.expect(201);
    };
    let request =
        "Hello! To become our dealer, please reply with your dealer certificate (application {=Document.ID}).";
    add(
        "REQUESTED",
        json!({"plugin": "standard", "robot": "email",
        "properties": {"subject": "Dealer certificate", "body": request}}),
    )
    .await;
    add(
        "REQUESTED",
        json!({"plugin": "standard", "robot": "notify", "recipient": "responsible",
        "timing": {"delay_seconds": 3 * 86_400},
        "properties": {"text": "{=Document.TITLE}: no reply to the certificate request in 3 days"}}),
    )
    .await;
    add(
        "REQUESTED",
        json!({"plugin": "standard", "robot": "notify", "recipient": "supervisor",
        "timing": {"after_previous": true, "delay_seconds": 2 * 86_400},
        "properties": {"text": "{=Document.TITLE} has waited 5 days for its certificate"}}),
    )
    .await;
    add(
        "REPLIED",
        json!({"plugin": "standard", "robot": "notify", "recipient": "responsible",
        "properties": {"text": "{=Document.TITLE} replied: {=Event.SUBJECT}"}}),
    )
    .await;
    let path = "/api/pipelines/partners/stages/REPLIED/triggers";
    s.json("POST", path, &s.admin, json!({"code": "incoming_email"}))
        .await
        .expect(201);
    let mail = hook(
        &s,
        "mail",
        "mail_notice",
        r#""incoming_email""#,
        json!({"title": "Partners' mailbox"}),
    )
    .await;

    let application = async |name: &str, email: &str| {
        let contact = json!({"kind": "contact", "fields": {"NAME": name, "EMAIL": email}});
        let contact = s.json("POST", "/api/entities", &s.admin, contact).await.expect(201);
        let deal = json!({"kind": "deal", "pipeline": "partners", "responsible": 7, "fields": {"TITLE": name},
            "links": [{"kind": "contact", "id": contact["id"]}]});
        let deal = s.json("POST", "/api/entities", &s.admin, deal).await.expect(201);
        let contact = EntityRef {
            kind: EntityKind::Contact,
            id: contact["id"].as_u64().unwrap(),
        };
        let deal = EntityRef {
            kind: EntityKind::Deal,
            id: deal["id"].as_u64().unwrap(),
        };
        (contact, deal)
    };
    let (alpha_contact, alpha) = application("Alpha Pumps", "sales@alpha.example").await;
    let (_, beta) = application("Beta Valves", "info@beta.example").await;
    s.engine.run_until_idle().await.unwrap();
    for (deal, email) in [(alpha, "sales@alpha.example"), (beta, "info@beta.example")] {
        let text = request.replace("{=Document.ID}", &deal.id.to_string());
        assert_eq!(sent(&s, deal).await, [("email".into(), email.into(), text)]);
    }
    let email = |id: &str, from: &str, subject: &str, automatic: bool| {
        json!({"event": "email.received", "message_id": format!("<{id}@mail.example>"),
            "from": from, "to": ["partners@portal.example"], "subject": subject,
            "text": "Please find the certificate attached.", "auto_submitted": automatic})
    };

    // The next day Beta's mailbox answers that they are away, which is no
    // reply; Alpha replies, and its application moves on.
    let at = robohost_tests::fixtures::at;
    s.clock.set(at("2026-11-26T09:00:00+03:00"));
    let away = post(&s, &mail, &email("m1", "info@beta.example", "Out of office", true)).await;
    assert_eq!(
        (away["status"].as_str(), away["hits"].as_array().map(Vec::len)),
        (Some("handled"), Some(0))
    );
    let from = r#""Alpha Pumps" <Sales@Alpha.example>"#;
    let reply = post(&s, &mail, &email("m2", from, "Re: Dealer certificate", false)).await;
    assert_eq!(
        reply["hits"][0]["fired"],
        json!([{"entity": alpha.to_string(), "moved_to": "REPLIED"}])
    );
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(s.entity(alpha).await["stage"], "REPLIED");
    assert_eq!(s.entity(beta).await["stage"], "REQUESTED");
    assert_eq!(
        notifications(&s, 7).await,
        ["Alpha Pumps replied: Re: Dealer certificate"]
    );
    // The reply is on the partner's contact, and Alpha's reminders are off.
    let timeline = s
        .get(
            &format!("/api/entities/contact/{}/timeline", alpha_contact.id),
            &s.admin,
        )
        .await
        .expect(200);
    let received: Vec<&Value> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "received")
        .collect();
    assert_eq!(received.len(), 1, "{timeline}");
    assert_eq!(received[0]["data"]["code"], "incoming_email");
    assert_eq!(received[0]["data"]["data"]["SUBJECT"], "Re: Dealer certificate");
    let runs = s.runs(alpha).await;
    let cancelled = runs.iter().filter(|r| r["status"] == "cancelled").count();
    assert_eq!(cancelled, 2, "both reminders: {runs:?}");

    // Three days after the request Olga hears of Beta; two days later,
    // with Beta still waiting, Sergey does.
    s.clock.set(at("2026-11-28T10:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    let olga = [
        "Alpha Pumps replied: Re: Dealer certificate",
        "Beta Valves: no reply to the certificate request in 3 days",
    ];
    assert_eq!(notifications(&s, 7).await, olga);
    assert_eq!(notifications(&s, 8).await, Vec::<String>::new());
    s.clock.set(at("2026-11-30T09:59:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(notifications(&s, 8).await, Vec::<String>::new());
    s.clock.set(at("2026-11-30T10:00:00+03:00"));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(
        notifications(&s, 8).await,
        ["Beta Valves has waited 5 days for its certificate"]
    );
    assert_eq!(notifications(&s, 7).await, olga);
}

/// Scenario 13, messenger connector: a message from a client's phone is
/// attached to the contact found by it; a message from an unknown number
/// makes a lead, and that number's next message finds the lead.
async fn a_messenger_message_finds_its_contact_or_makes_a_lead(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    let leads = serde_json::to_value(robohost_tests::fixtures::pipeline("leads", "lead", &["NEW", "IN_WORK"])).unwrap();
    s.json("PUT", "/api/pipelines/leads", &s.admin, leads).await.expect(200);
    let answer = json!({"plugin": "standard", "robot": "task", "recipient": {"user": 7},
        "properties": {"title": "Answer {=Document.NAME} in {=Event.CHANNEL}: {=Event.TEXT}"}});
    s.json("POST", "/api/pipelines/leads/stages/NEW/robots", &s.admin, answer)
        .await
        .expect(201);
    let messenger = hook(
        &s,
        "messenger",
        "messenger_notice",
        r#""messenger_message""#,
        json!({"title": "WhatsApp", "unmatched": {"then": "create-lead", "pipeline": "leads"}}),
    )
    .await;
    let ivan = json!({"kind": "contact", "fields": {"NAME": "Ivan", "PHONE": "+79123456789"}});
    let ivan = s.json("POST", "/api/entities", &s.admin, ivan).await.expect(201);
    let ivan = EntityRef {
        kind: EntityKind::Contact,
        id: ivan["id"].as_u64().unwrap(),
    };
    let message = |id: &str, phone: &str, name: &str, text: &str| {
        json!({"event": "message.received", "message": {"id": id, "channel": "whatsapp", "text": text,
            "from": {"phone": phone, "name": name}}})
    };
    let received = async |r: EntityRef| {
        let path = format!("/api/entities/{}/{}/timeline", r.kind.as_str(), r.id);
        let timeline = s.get(&path, &s.admin).await.expect(200);
        let texts: Vec<String> = timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "received")
            .map(|e| e["data"]["data"]["TEXT"].as_str().unwrap().to_owned())
            .collect();
        texts
    };

    // Ivan writes from his number, spelled as the messenger spells it.
    let call = post(
        &s,
        &messenger,
        &message("m-1", "+7 (912) 345-67-89", "Ivan", "Do you have pumps?"),
    )
    .await;
    assert_eq!(call["status"], "handled");
    assert_eq!(call["hits"][0]["created"], Value::Null);
    assert_eq!(received(ivan).await, ["Do you have pumps?"]);
    assert_eq!(s.get("/api/entities/lead", &s.admin).await.expect(200), json!([]));

    // An unknown number makes a lead with the sender's name and number, and
    // the manager a task to answer it.
    let call = post(
        &s,
        &messenger,
        &message("m-2", "8 903 111-22-33", "Anna", "What does delivery cost?"),
    )
    .await;
    let lead: EntityRef = call["hits"][0]["created"].as_str().unwrap().parse().unwrap();
    s.engine.run_until_idle().await.unwrap();
    let made = s.entity(lead).await;
    assert_eq!(
        (made["pipeline"].as_str(), made["stage"].as_str()),
        (Some("leads"), Some("NEW"))
    );
    assert_eq!(made["fields"]["NAME"], "Anna");
    assert_eq!(made["fields"]["PHONE"], "+79031112233");
    let tasks = s.get("/api/entities/task", &s.admin).await.expect(200);
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!(
        tasks[0]["fields"]["TITLE"],
        "Answer Anna in whatsapp: What does delivery cost?"
    );
    assert_eq!(tasks[0]["responsible"], 7);

    // Her next message is attached to that lead; no second lead is made.
    let call = post(&s, &messenger, &message("m-3", "+79031112233", "Anna", "And to Kazan?")).await;
    assert_eq!(call["hits"][0]["created"], Value::Null);
    assert_eq!(received(lead).await, ["What does delivery cost?", "And to Kazan?"]);
    let leads = s.get("/api/entities/lead", &s.admin).await.expect(200);
    assert_eq!(leads.as_array().unwrap().len(), 1);
    assert_eq!(received(ivan).await, ["Do you have pumps?"]);
}

/// Scenario 9, RF segmentation: every night the clients are put in one of
/// seven segments by days since their last purchase and how many purchases
/// they made, and move to their segment's stage, where that segment's
/// campaign email goes out; a client who buys moves on the next night.
/// The RF robot is the example plugin `rf_segmentation`, on a schedule.
async fn clients_move_between_rf_segments_every_night_as_they_buy(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    s.install("rf_segmentation", "set-fields").await;
    let fields = [
        ("contact", "UF_PURCHASES", "integer"),
        ("contact", "UF_LAST_PURCHASE", "date"),
    ];
    robohost_tests::declare(&s.engine, &fields).await;
    let segments = ["new", "promising", "wandering", "dormant", "loyal", "at_risk", "lost"];
    let options = segments.map(|code| json!({"code": code, "names": {}}));
    let segment = json!({"type": "option", "options": options});
    s.json("PUT", "/api/fields/contact/UF_RF_SEGMENT", &s.admin, segment)
        .await
        .expect(200);
    let mut stages = vec![json!({"code": "incoming", "names": {"en": "Incoming"}, "semantic": "in-progress"})];
    stages.extend(segments.map(|code| json!({"code": code, "names": {"en": code}, "semantic": "in-progress"})));
    let pipeline = json!({"kind": "contact", "names": {"en": "Clients"}, "stages": stages});
    s.json("PUT", "/api/pipelines/clients", &s.admin, pipeline)
        .await
        .expect(200);
    // Calendar days count in Moscow.
    let calendar = json!({"time_zone": "Europe/Moscow"});
    s.json("PUT", "/api/calendar", &s.admin, calendar).await.expect(200);
    for stage in std::iter::once("incoming").chain(segments) {
        let path = format!("/api/pipelines/clients/stages/{stage}/robots");
        // At 03:00 the segment is recomputed; at 03:05 the client moves to
        // its segment's stage (a stage's code is its segment's).
        let rf = json!({"plugin": "rf_segmentation", "robot": "rf_segment", "title": "Recompute the segment",
            "timing": {"schedule": "0 0 3 * * *"}});
        s.json("POST", &path, &s.admin, rf).await.expect(201);
        let go = json!({"plugin": "standard", "robot": "change_stage", "title": "To its segment",
            "timing": {"schedule": "0 5 3 * * *"}, "properties": {"stage": "{=Document.UF_RF_SEGMENT}"}});
        s.json("POST", &path, &s.admin, go).await.expect(201);
        if stage != "incoming" {
            let campaign = json!({"plugin": "standard", "robot": "email", "title": format!("Campaign {stage}"),
                "properties": {"subject": format!("For our {stage} clients"), "body": "Dear {=Document.NAME}"}});
            s.json("POST", &path, &s.admin, campaign).await.expect(201);
        }
    }
    // (name, purchases, days since the last one) and the segment it gives.
    let clients = [
        ("Anna", 1, 10, "new"),
        ("Boris", 3, 20, "promising"),
        ("Zoya", 2, 60, "wandering"),
        ("Gleb", 2, 120, "dormant"),
        ("Vera", 6, 40, "loyal"),
        ("Dina", 7, 150, "at_risk"),
        ("Egor", 1, 400, "lost"),
    ];
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let mut refs = Vec::new();
    for (name, purchases, days, _) in clients {
        let last = (today - chrono::Duration::days(days)).to_string();
        let contact = json!({"kind": "contact", "pipeline": "clients", "fields": {
            "NAME": name, "EMAIL": format!("{}@example.com", name.to_lowercase()),
            "UF_PURCHASES": purchases, "UF_LAST_PURCHASE": {"date": last}}});
        let made = s.json("POST", "/api/entities", &s.admin, contact).await.expect(201);
        refs.push(EntityRef {
            kind: EntityKind::Contact,
            id: made["id"].as_u64().unwrap(),
        });
    }
    let stage_of = async |r: EntityRef| s.entity(r).await["stage"].as_str().unwrap().to_owned();
    let night = async |day: u32| {
        s.engine.run_schedules().await.unwrap();
        for at in ["03:00:00", "03:05:00"] {
            s.clock
                .set(robohost_tests::fixtures::at(&format!("2026-11-{day}T{at}+03:00")));
            s.engine.run_schedules().await.unwrap();
            s.engine.run_until_idle().await.unwrap();
        }
    };
    let subjects = async |r: EntityRef| -> Vec<String> {
        let outbox = s.get(&format!("/api/outbox?entity={r}"), &s.admin).await.expect(200);
        outbox
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_owned())
            .collect()
    };

    // Nothing moves before the night, and no campaign goes out.
    s.engine.run_until_idle().await.unwrap();
    for &r in &refs {
        assert_eq!(stage_of(r).await, "incoming");
    }
    // The first night: each client in its segment, with its campaign.
    s.engine.run_schedules().await.unwrap();
    night(26).await;
    for (&r, (name, _, _, segment)) in refs.iter().zip(clients) {
        assert_eq!(stage_of(r).await, segment, "{name}");
        assert_eq!(subjects(r).await, [format!("For our {segment} clients")], "{name}");
    }

    // Gleb buys a third time; the next night he is promising again and
    // gets that campaign. Nobody else moves or gets another email.
    let gleb = refs[3];
    let bought = json!({"fields": {"UF_PURCHASES": 3, "UF_LAST_PURCHASE": {"date": "2026-11-26"}}});
    s.json("PATCH", &format!("/api/entities/contact/{}", gleb.id), &s.admin, bought)
        .await
        .expect(200);
    night(27).await;
    assert_eq!(stage_of(gleb).await, "promising");
    assert_eq!(
        subjects(gleb).await,
        ["For our dormant clients", "For our promising clients"]
    );
    for (&r, (name, _, _, segment)) in refs.iter().zip(clients).filter(|(r, _)| **r != gleb) {
        assert_eq!(stage_of(r).await, segment, "{name}");
        assert_eq!(subjects(r).await.len(), 1, "{name}");
    }
    let segment = s.entity(gleb).await["custom_fields"]["UF_RF_SEGMENT"].clone();
    assert_eq!(segment, json!({"option": "promising"}));
}

/// Scenario 11, repeat sale: when a deal is won it is copied into the
/// repeat-sale pipeline, with its fields and manager, and thirty days later
/// the manager is reminded to offer the client a repeat purchase. A deal
/// that is lost is not copied.
async fn a_won_deal_starts_a_repeat_sale_and_reminds_the_manager(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    let olga = json!({"id": 7, "name": "Olga"});
    s.json("PUT", "/api/users/7", &s.admin, olga).await.expect(200);
    let sales = json!({"kind": "deal", "names": {"en": "Sales"}, "stages": [
        {"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"},
        {"code": "WON", "names": {"en": "Won"}, "semantic": "success"},
        {"code": "LOST", "names": {"en": "Lost"}, "semantic": "failure"}]});
    s.json("PUT", "/api/pipelines/sales", &s.admin, sales).await.expect(200);
    let repeat = json!({"kind": "deal", "names": {"en": "Repeat sales"}, "stages": [
        {"code": "WAIT", "names": {"en": "Waiting"}, "semantic": "in-progress"},
        {"code": "OFFER", "names": {"en": "Offer made"}, "semantic": "in-progress"}]});
    s.json("PUT", "/api/pipelines/repeat", &s.admin, repeat)
        .await
        .expect(200);
    let copy = json!({"plugin": "standard", "robot": "copy_deal", "title": "Start a repeat sale",
        "properties": {"pipeline": "repeat", "stage": "WAIT", "title": "Repeat: {=Document.TITLE}"}});
    s.json("POST", "/api/pipelines/sales/stages/WON/robots", &s.admin, copy)
        .await
        .expect(201);
    let remind = json!({"plugin": "standard", "robot": "task", "title": "Remind about the repeat sale",
        "recipient": "responsible", "timing": {"delay_seconds": 30 * 86_400},
        "properties": {"title": "Offer {=Document.TITLE} again"}});
    s.json("POST", "/api/pipelines/repeat/stages/WAIT/robots", &s.admin, remind)
        .await
        .expect(201);

    let deal = |title: &str| {
        json!({"kind": "deal", "pipeline": "sales", "responsible": 7,
            "fields": {"TITLE": title, "OPPORTUNITY": {"money": "150000.00 RUB"}, "COMMENTS": "pumps x3"}})
    };
    let pumps = s
        .json("POST", "/api/entities", &s.admin, deal("Pumps"))
        .await
        .expect(201);
    let valves = s
        .json("POST", "/api/entities", &s.admin, deal("Valves"))
        .await
        .expect(201);
    let move_to = async |id: &Value, stage: &str| {
        let path = format!("/api/entities/deal/{id}/move");
        s.json("POST", &path, &s.admin, json!({"stage": stage}))
            .await
            .expect(200);
    };
    move_to(&pumps["id"], "WON").await;
    move_to(&valves["id"], "LOST").await;
    s.engine.run_until_idle().await.unwrap();

    // One copy, of the won deal, with its fields and manager.
    let deals = s.get("/api/entities/deal", &s.admin).await.expect(200);
    let copies: Vec<&Value> = deals
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["pipeline"] == "repeat")
        .collect();
    assert_eq!(copies.len(), 1, "{deals}");
    let copy = copies[0];
    assert_eq!(copy["stage"], "WAIT");
    assert_eq!(copy["responsible"], 7);
    assert_eq!(copy["fields"]["TITLE"], "Repeat: Pumps");
    assert_eq!(copy["fields"]["OPPORTUNITY"], json!({"money": "150000.00 RUB"}));
    assert_eq!(copy["fields"]["COMMENTS"], "pumps x3");

    // The reminder comes thirty days later, not a minute before.
    let tasks = async || s.get("/api/entities/task", &s.admin).await.expect(200);
    s.clock
        .advance(chrono::Duration::days(30) - chrono::Duration::minutes(1));
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(tasks().await, json!([]));
    s.clock.advance(chrono::Duration::minutes(1));
    s.engine.run_until_idle().await.unwrap();
    let tasks = tasks().await;
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["fields"]["TITLE"], "Offer Repeat: Pumps again");
    assert_eq!(tasks[0]["responsible"], 7);
}

/// Scenario 12, reassignment in bulk: a manager leaves, and his companies go
/// to two colleagues from a CSV file of `id, new responsible`. The job says
/// first what it will do and which lines it cannot apply; then, batch by
/// batch, each company changes hands with its open deals, their activities
/// and its tasks not completed; a closed deal, a completed task and a
/// colleague's deal stay as they were. Each change is on the timeline with
/// the job that made it, so the previous responsibles are kept.
async fn a_leaving_managers_companies_are_reassigned_from_a_file(db: Db) {
    let s = server(db).await;
    for (id, name) in [(1, "Olga"), (2, "Ivan"), (3, "Petr"), (4, "Anna")] {
        let user = json!({"id": id, "name": name});
        s.json("PUT", &format!("/api/users/{id}"), &s.admin, user)
            .await
            .expect(200);
    }
    s.json(
        "PUT",
        "/api/users/5",
        &s.admin,
        json!({"id": 5, "name": "Gone", "active": false}),
    )
    .await
    .expect(200);
    s.general_pipeline().await;
    let create = async |body: Value| {
        s.json("POST", "/api/entities", &s.admin, body).await.expect(201)["id"]
            .as_u64()
            .unwrap()
    };
    let petr = 3;
    let mut companies = Vec::new();
    for name in ["Pumps", "Valves", "Gears"] {
        companies.push(create(json!({"kind": "company", "responsible": petr, "fields": {"TITLE": name}})).await);
    }
    let annas = create(json!({"kind": "company", "responsible": 4, "fields": {"TITLE": "Bolts"}})).await;
    let link = |kind: &str, id: u64| json!([{"kind": kind, "id": id}]);
    let pumps = companies[0];
    let open_deal =
        create(json!({"kind": "deal", "pipeline": "general", "responsible": petr, "links": link("company", pumps)}))
            .await;
    let won_deal = create(json!({"kind": "deal", "pipeline": "general", "stage": "WON", "responsible": petr, "links": link("company", pumps)})).await;
    let annas_deal =
        create(json!({"kind": "deal", "pipeline": "general", "responsible": 4, "links": link("company", pumps)})).await;
    let call = create(
        json!({"kind": "activity", "responsible": petr, "fields": {"TITLE": "Call"}, "links": link("deal", open_deal)}),
    )
    .await;
    let task = create(json!({"kind": "task", "responsible": petr, "fields": {"TITLE": "Send the offer"}, "links": link("company", pumps)})).await;
    let done_task = create(json!({"kind": "task", "responsible": petr, "fields": {"TITLE": "Meet", "STATUS": "completed"}, "links": link("company", pumps)})).await;

    let file = format!(
        "id;new responsible\n{pumps};Olga\n{};2\ncompany:{};Ivan\n999;Olga\n{annas};Nobody\ncompany:{pumps};4\n{};5\n",
        companies[1], companies[2], companies[1]
    );
    let plan = s
        .raw(
            "POST",
            "/api/jobs/reassign?kind=company&batch=2&pause_ms=0",
            &[
                ("authorization", &format!("Bearer {}", s.admin)),
                ("content-type", "text/csv"),
            ],
            file.into(),
        )
        .await
        .expect(201);
    let job = plan["id"].as_u64().unwrap();
    assert_eq!(plan["status"], "planned");
    assert_eq!(plan["plan"]["rows"], json!({"company": 3}));
    assert_eq!(plan["plan"]["unusable"], 4);
    // At most: the two deals of Petr's, the call on the open one, the two tasks.
    assert_eq!(
        plan["plan"]["cascade_at_most"],
        json!({"deal": 2, "activity": 1, "task": 2})
    );
    let failed = s
        .get(&format!("/api/jobs/{job}/rows?status=failed"), &s.admin)
        .await
        .expect(200);
    let failed: Vec<(u64, &str)> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            (5, "company:999 does not exist"),
            (6, "RESPONSIBLE: `Nobody` is no user's number or name"),
            (7, &*format!("company:{pumps} is already at line 2")),
            (8, "RESPONSIBLE: Gone (#5) is not active"),
        ]
    );
    // Planned, nothing changed yet.
    let responsible = async |kind: &str, id: u64| {
        s.get(&format!("/api/entities/{kind}/{id}"), &s.admin).await.expect(200)["responsible"].clone()
    };
    assert_eq!(responsible("company", pumps).await, petr);

    s.json("POST", &format!("/api/jobs/{job}/start"), &s.admin, json!({}))
        .await
        .expect(200);
    let mut seen = Vec::new();
    let ended = s.engine.drive_job(job, |j| seen.push(j.progress.done())).await.unwrap();
    assert_eq!(ended.status, robohost::domain::JobStatus::Done);
    // Three rows in batches of two, after the four failed at planning.
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && seen.contains(&6) && seen.contains(&7),
        "{seen:?}"
    );

    let job = s.get(&format!("/api/jobs/{job}"), &s.admin).await.expect(200);
    let progress = &job["progress"];
    assert_eq!(
        (
            &progress["total"],
            &progress["applied"],
            &progress["failed"],
            &progress["pending"],
            &progress["percent"]
        ),
        (&json!(7), &json!(3), &json!(4), &json!(0), &json!(100.0))
    );
    assert_eq!(
        (&progress["deals"], &progress["activities"], &progress["tasks"]),
        (&json!(1), &json!(1), &json!(1))
    );

    assert_eq!(responsible("company", pumps).await, 1);
    assert_eq!(responsible("company", companies[1]).await, 2);
    assert_eq!(responsible("company", companies[2]).await, 2);
    assert_eq!(responsible("company", annas).await, 4);
    assert_eq!(responsible("deal", open_deal).await, 1);
    assert_eq!(responsible("activity", call).await, 1);
    assert_eq!(responsible("task", task).await, 1);
    // Closed, completed or someone else's: left alone.
    assert_eq!(responsible("deal", won_deal).await, petr);
    assert_eq!(responsible("deal", annas_deal).await, 4);
    assert_eq!(responsible("task", done_task).await, petr);

    // The history keeps who had it and which job changed it.
    let changes = async |kind: &str, id: u64| -> Vec<Value> {
        let timeline = s
            .get(&format!("/api/entities/{kind}/{id}/timeline"), &s.admin)
            .await
            .expect(200);
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "responsible-changed")
            .map(|e| e["data"].clone())
            .collect()
    };
    let id = job["id"].clone();
    assert_eq!(
        changes("company", pumps).await,
        [json!({"from": petr, "to": 1, "job": id})]
    );
    assert_eq!(
        changes("deal", open_deal).await,
        [json!({"from": petr, "to": 1, "job": id})]
    );
    assert_eq!(changes("task", task).await, [json!({"from": petr, "to": 1, "job": id})]);
    assert_eq!(changes("deal", won_deal).await, json!([]).as_array().unwrap().clone());

    // A second file moves Pumps on: both earlier responsibles stay in its history.
    let again = s
        .raw(
            "POST",
            "/api/jobs/reassign?start=true&pause_ms=0",
            &[
                ("authorization", &format!("Bearer {}", s.admin)),
                ("content-type", "text/csv"),
            ],
            format!("company:{pumps},Anna\n").into(),
        )
        .await
        .expect(201);
    assert_eq!(again["status"], "running");
    s.engine.drive_job(again["id"].as_u64().unwrap(), |_| {}).await.unwrap();
    let history: Vec<(Value, Value)> = changes("company", pumps)
        .await
        .iter()
        .map(|c| (c["from"].clone(), c["to"].clone()))
        .collect();
    assert_eq!(history, [(json!(petr), json!(1)), (json!(1), json!(4))]);
    assert_eq!(responsible("deal", open_deal).await, 4);
}

/// Scenario 10, deal distribution: a new deal goes to a sales manager
/// picked at random among those present; a VIP client's deal to the VIP
/// manager; a deal of a million or more in turn to the key account managers
/// present; a service deal to the service engineer. A manager on leave gets
/// nothing until the leave is over, and none present is a failed run that
/// says who is away.
async fn new_deals_are_distributed_among_the_managers_present(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    let at = robohost_tests::fixtures::at;
    s.json("PUT", "/api/calendar", &s.admin, robohost_tests::fixtures::calendar())
        .await
        .expect(200);
    // The client's type and the deal's category, as the portal declares them.
    let vip = json!({"type": "boolean", "names": {"en": "VIP client"}});
    s.json("PUT", "/api/fields/deal/UF_VIP", &s.admin, vip)
        .await
        .expect(200);
    let category = json!({"type": "text", "names": {"en": "Category"}});
    s.json("PUT", "/api/fields/deal/UF_CATEGORY", &s.admin, category)
        .await
        .expect(200);
    for (id, name) in [(1, "Sales"), (2, "Key accounts")] {
        let path = format!("/api/departments/{id}");
        s.json("PUT", &path, &s.admin, json!({"name": name})).await.expect(200);
    }
    let people = [
        (11, "Anna", Some(1)),
        (12, "Boris", Some(1)),
        (13, "Vera", Some(1)),
        (21, "Kirill", Some(2)),
        (22, "Lena", Some(2)),
        (23, "Mark", Some(2)),
        (31, "Polina", None),
        (41, "Sergey", None),
    ];
    for (id, name, department) in people {
        let user = json!({"name": name, "department": department});
        s.json("PUT", &format!("/api/users/{id}"), &s.admin, user)
            .await
            .expect(200);
    }
    // Boris is on leave until Friday; Mark from next Monday for a week.
    let boris = s
        .json("PUT", "/api/users/12/away", &s.admin, json!({"until": "2026-11-27"}))
        .await
        .expect(200);
    assert_eq!(boris["away"], json!({"until": "2026-11-27"}));
    let mark = json!({"from": "2026-11-30", "until": "2026-12-04"});
    s.json("PUT", "/api/users/23/away", &s.admin, mark).await.expect(200);
    let backwards = json!({"from": "2026-12-05", "until": "2026-12-01"});
    s.json("PUT", "/api/users/23/away", &s.admin, backwards).await.error(
        422,
        "invalid",
        Some("away"),
        "starts (2026-12-05) after it ends (2026-12-01)",
    );
    s.json("PUT", "/api/users/99/away", &s.admin, json!({"until": "2026-12-01"}))
        .await
        .error(404, "not_found", None, "user 99");

    let sales = json!({"kind": "deal", "names": {"en": "Sales"}, "stages": [
        {"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"},
        {"code": "WON", "names": {"en": "Won"}, "semantic": "success"}]});
    s.json("PUT", "/api/pipelines/sales", &s.admin, sales).await.expect(200);
    let not_vip = json!({"compare": {"field": "UF_VIP", "op": "ne", "value": true}});
    let big = |op: &str| json!({"compare": {"field": "OPPORTUNITY", "op": op, "value": 1_000_000}});
    let service = |op: &str| json!({"compare": {"field": "UF_CATEGORY", "op": op, "value": "service"}});
    let robots = [
        json!({"title": "VIP clients to Polina", "recipient": {"user": 31},
            "condition": {"compare": {"field": "UF_VIP", "op": "eq", "value": true}}}),
        json!({"title": "A million or more in turn to key accounts", "recipient": {"among": {"departments": [2]}},
            "properties": {"distribution": {"option": "in_turn"}}, "condition": {"all": [not_vip, big("ge")]}}),
        json!({"title": "Service to Sergey", "recipient": {"user": 41},
            "condition": {"all": [not_vip, big("lt"), service("eq")]}}),
        json!({"title": "The rest at random to sales", "recipient": {"among": {"departments": [1]}},
            "properties": {"distribution": {"option": "random"}},
            "condition": {"all": [not_vip, big("lt"), service("ne")]}}),
    ];
    for mut robot in robots {
        robot["plugin"] = json!("standard");
        robot["robot"] = json!("change_responsible");
        s.json("POST", "/api/pipelines/sales/stages/NEW/robots", &s.admin, robot)
            .await
            .expect(201);
    }
    // Several people are for a robot that picks one, and must exist.
    let task = json!({"plugin": "standard", "robot": "task", "recipient": {"among": {"users": [11, 13]}},
        "properties": {"title": "Call the client"}});
    s.json("POST", "/api/pipelines/sales/stages/NEW/robots", &s.admin, task)
        .await
        .error(
            422,
            "invalid",
            Some("recipient"),
            "robot `task` is addressed to one person",
        );
    let nowhere =
        json!({"plugin": "standard", "robot": "change_responsible", "recipient": {"among": {"departments": [9]}}});
    s.json("POST", "/api/pipelines/sales/stages/NEW/robots", &s.admin, nowhere)
        .await
        .error(422, "invalid", Some("recipient"), "there is no department 9");

    let deal = async |amount: i64, custom: Value| {
        let made = json!({"kind": "deal", "pipeline": "sales", "fields": {"TITLE": "Pumps",
            "OPPORTUNITY": {"money": format!("{amount}.00 RUB")}}, "custom_fields": custom});
        let made = s.json("POST", "/api/entities", &s.admin, made).await.expect(201);
        EntityRef {
            kind: EntityKind::Deal,
            id: made["id"].as_u64().unwrap(),
        }
    };
    let goods = || json!({"UF_CATEGORY": "goods"});
    let responsible = async |deals: &[EntityRef]| {
        let mut who = Vec::new();
        for d in deals {
            who.push(s.entity(*d).await["responsible"].as_u64().unwrap_or(0));
        }
        who
    };

    // Wednesday: ordinary deals go to Anna or Vera, never to Boris, away.
    let mut ordinary = Vec::new();
    for _ in 0..30 {
        ordinary.push(deal(50_000, goods()).await);
    }
    // Key accounts in turn, the deals made together: Kirill, Lena, Mark, ...
    let mut large = Vec::new();
    for _ in 0..6 {
        large.push(deal(1_500_000, goods()).await);
    }
    let vip = deal(2_000_000, json!({"UF_VIP": true})).await;
    let repair = deal(80_000, json!({"UF_CATEGORY": "service"})).await;
    s.engine.run_until_idle().await.unwrap();
    let picked = responsible(&ordinary).await;
    assert!(picked.iter().all(|u| [11, 13].contains(u)), "{picked:?}");
    assert!(picked.contains(&11) && picked.contains(&13), "at random: {picked:?}");
    assert_eq!(responsible(&large).await, [21, 22, 23, 21, 22, 23]);
    assert_eq!(responsible(&[vip, repair]).await, [31, 41]);
    let runs = s.runs(vip).await;
    let skipped: Vec<&Value> = runs.iter().filter(|r| r["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 3, "only the VIP robot ran: {runs:?}");
    let ran = runs.iter().find(|r| r["status"] == "succeeded").unwrap();
    assert_eq!(ran["report"]["returns"]["assigned_user"], json!({"user": 31}));

    // Tuesday: Boris is back and gets deals too; Mark is on leave, so the
    // turn goes on between Kirill and Lena, Kirill first as he waited longest.
    s.clock.set(at("2026-12-01T10:00:00+03:00"));
    let mut ordinary = Vec::new();
    for _ in 0..40 {
        ordinary.push(deal(50_000, goods()).await);
    }
    let mut large = Vec::new();
    for _ in 0..3 {
        large.push(deal(1_500_000, goods()).await);
    }
    s.engine.run_until_idle().await.unwrap();
    let picked = responsible(&ordinary).await;
    assert!(picked.iter().all(|u| [11, 12, 13].contains(u)), "{picked:?}");
    assert!(picked.contains(&12), "Boris is back: {picked:?}");
    assert_eq!(responsible(&large).await, [21, 22, 21]);

    // Kirill and Lena go on leave too: no one of key accounts is present,
    // and the run fails saying who is away; the deal keeps no responsible.
    for id in [21, 22] {
        let path = format!("/api/users/{id}/away");
        s.json("PUT", &path, &s.admin, json!({"until": "2026-12-02"}))
            .await
            .expect(200);
    }
    let nobody = deal(3_000_000, goods()).await;
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(responsible(&[nobody]).await, [0]);
    let runs = s.runs(nobody).await;
    let dead = runs.iter().find(|r| r["status"] == "dead").unwrap();
    assert_eq!(
        dead["report"]["outcome"]["message"],
        "no one the robot may choose is present: user 21 (Kirill) is away until 2026-12-02; \
         user 22 (Lena) is away until 2026-12-02; user 23 (Mark) is away until 2026-12-04"
    );

    // Lena's leave is called off; on Thursday Kirill's is over as well.
    let lena = s
        .send("DELETE", "/api/users/22/away", Some(&s.admin), None, "")
        .await
        .expect(200);
    assert_eq!(lena.get("away"), None);
    let first = deal(1_200_000, goods()).await;
    s.engine.run_until_idle().await.unwrap();
    s.clock.set(at("2026-12-03T09:00:00+03:00"));
    let second = deal(1_200_000, goods()).await;
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(responsible(&[first, second]).await, [22, 21]);
}

on_both!(
    a_leaving_managers_companies_are_reassigned_from_a_file,
    new_deals_are_distributed_among_the_managers_present,
    a_won_deal_starts_a_repeat_sale_and_reminds_the_manager,
    clients_move_between_rf_segments_every_night_as_they_buy,
    a_messenger_message_finds_its_contact_or_makes_a_lead,
    a_partner_application_waits_for_the_partners_reply,
    an_abandoned_cart_is_chased_until_it_is_paid,
    a_webinar_chain_runs_around_the_webinars_date,
    a_lead_magnet_form_emails_the_guide_and_follows_up,
    a_payment_link_and_the_payment_notification_move_the_order,
    an_unprocessed_lead_is_escalated_on_working_days_only,
);
