//! Endpoints over HTTP with real compiled trigger plugins: a telephony
//! provider posts call notices to `/hooks/{id}`, the `call_notice` plugin
//! (installed from a package) turns them into hits, and the caller's deal
//! moves. Every refusal is answered with its own status and recorded with
//! its reason, with nothing changed.

use robohost::domain::{EntityKind, EntityRef, sign};
use robohost::engine::Clock;
use robohost_tests::db::Db;
use robohost_tests::fixtures::wednesday;
use robohost_tests::http::{Reply, Server, server};
use robohost_tests::on_both;
use serde_json::{Value, json};

/// A notice of an answered inbound call from the contact's number, in
/// another spelling than the one stored.
const ANSWERED: &str =
    r#"{"event": "call_end", "direction": "inbound", "from": "+7 912 345-67-89", "duration": 125, "call_id": "c-1"}"#;

/// A notice of an answered call of `seconds` from the contact.
fn answered(seconds: u32) -> String {
    ANSWERED.replace("125", &seconds.to_string())
}

/// The portal: [`robohost_tests::fixtures::general`] with an
/// `incoming_call` trigger on WORK for calls of a minute or more, the
/// telephony package, a contact with a phone number and its deal in NEW.
/// Returns the deal.
async fn telephony(s: &Server) -> EntityRef {
    s.general_pipeline().await;
    let long = json!({"compare": {"field": "Event.DURATION", "op": "ge", "value": 60}});
    let trigger = json!({"code": "incoming_call", "condition": long});
    s.json("POST", "/api/pipelines/general/stages/WORK/triggers", &s.admin, trigger)
        .await
        .expect(201);
    let report = s
        .install_triggers("telephony", "call_notice", r#""incoming_call", "missed_call""#)
        .await;
    assert_eq!(report["plugins"], json!(["telephony"]));
    // Stored as dialled nationally; the provider sends it internationally.
    let contact = json!({"kind": "contact", "fields": {"NAME": "Ivan", "PHONE": "8 (912) 345-67-89"}});
    let contact = s.json("POST", "/api/entities", &s.admin, contact).await.expect(201);
    let mut deal = robohost_tests::fixtures::deal("NEW", "1000");
    deal["links"] = json!([{"kind": "contact", "id": contact["id"]}]);
    let deal = s.json("POST", "/api/entities", &s.admin, deal).await.expect(201);
    EntityRef {
        kind: EntityKind::Deal,
        id: deal["id"].as_u64().unwrap(),
    }
}

/// Creates an endpoint for `plugin` as an admin; returns it with its secret.
async fn endpoint(s: &Server, plugin: &str, signed: bool) -> Value {
    let made = s
        .json(
            "POST",
            "/api/endpoints",
            &s.admin,
            json!({"plugin": plugin, "title": "Telephony", "signed": signed}),
        )
        .await
        .expect(201);
    let id = made["id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "128 random bits in hex: {made}");
    assert_eq!(made["url"], format!("/hooks/{id}"));
    assert_eq!(made["secret"].as_str().is_some(), signed, "{made}");
    made
}

/// Posts `body` to the endpoint with `headers`.
async fn post(s: &Server, endpoint: &Value, headers: &[(&str, &str)], body: &str) -> Reply {
    let path = endpoint["url"].as_str().unwrap();
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    s.raw("POST", path, &all, body.to_owned().into()).await
}

/// The signature header for `body` sent now (the portal's clock), with
/// the endpoint's secret.
fn signed(s: &Server, endpoint: &Value, body: &str, seconds_ago: i64) -> String {
    let now = s.clock.now().0 / 1000;
    sign(endpoint["secret"].as_str().unwrap(), now - seconds_ago, body.as_bytes())
}

/// The calls recorded for an endpoint, newest first.
async fn calls(s: &Server, endpoint: &Value) -> Vec<Value> {
    let path = format!("/api/calls?endpoint={}", endpoint["id"].as_str().unwrap());
    s.get(&path, &s.admin).await.expect(200).as_array().unwrap().clone()
}

/// The events of an entity's timeline named `name`.
async fn events(s: &Server, r: EntityRef, name: &str) -> Vec<Value> {
    let path = format!("/api/entities/{}/{}/timeline", r.kind.as_str(), r.id);
    let timeline = s.get(&path, &s.admin).await.expect(200);
    let events = timeline["events"].as_array().unwrap_or_else(|| panic!("{timeline}"));
    events.iter().filter(|e| e["event"] == name).cloned().collect()
}

async fn a_signed_call_moves_the_callers_deal(db: Db) {
    let s = server(db).await;
    let deal = telephony(&s).await;
    // WORK's robot writes what the call that moved the deal there says.
    s.install("bench", "set-fields").await;
    robohost_tests::declare(&s.engine, &[("deal", "UF_ECHO", "text")]).await;
    let echo = json!({"plugin": "bench", "robot": "echo", "properties": {"text": "a call of {=Event.DURATION} s"}});
    s.json("POST", "/api/pipelines/general/stages/WORK/robots", &s.admin, echo)
        .await
        .expect(201);
    let hook = endpoint(&s, "telephony", true).await;
    let call = async |body: &str| {
        let signature = signed(&s, &hook, body, 10);
        let receipt = post(&s, &hook, &[("robohost-signature", &signature)], body)
            .await
            .expect(200);
        assert_eq!(receipt["status"], "handled", "{receipt}");
        assert!(
            receipt.get("hits").is_none(),
            "a sender is not told what moved: {receipt}"
        );
        let recorded = s
            .get(&format!("/api/calls/{}", receipt["call"]), &s.admin)
            .await
            .expect(200);
        assert_eq!(recorded["status"], "handled");
        recorded
    };

    // A short call: the trigger's condition on the call's data is false,
    // and the deal's timeline says so.
    let short = call(&answered(30)).await;
    let why = json!({"why": "condition-false", "because": "Event.DURATION is 30, wanted >= 60"});
    assert_eq!(
        short["hits"][0]["fired"],
        json!([{"entity": deal.to_string(), "ignored": why}])
    );
    assert_eq!(s.entity(deal).await["stage"], "NEW");
    let ignored = events(&s, deal, "trigger-ignored").await;
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0]["data"]["ignored"], why);
    assert_eq!(ignored[0]["data"]["data"]["DURATION"], 30);

    let long = call(ANSWERED).await;
    assert_eq!(s.entity(deal).await["stage"], "WORK");
    assert_eq!(long["size"], ANSWERED.len());
    assert_eq!(long["received_at"], json!(wednesday()));
    assert_eq!(long["signature"], json!({"signature": "valid"}));
    assert_eq!(long["handling"]["outcome"], json!({"outcome": "success"}));
    assert!(long["handling"]["fuel_used"].as_u64().unwrap() > 0);
    let logs = long["handling"]["logs"].to_string();
    assert!(
        logs.contains("incoming_call from +79123456789 (call c-1, 125 s)"),
        "{logs}"
    );
    let hit = &long["hits"][0];
    assert_eq!(hit["trigger"], "incoming_call");
    assert_eq!(hit["data"]["DURATION"], 125);
    assert_eq!(hit["fired"], json!([{"entity": deal.to_string(), "moved_to": "WORK"}]));
    let fired = events(&s, deal, "trigger-fired").await;
    assert_eq!(fired[0]["data"]["code"], "incoming_call");
    assert_eq!(fired[0]["data"]["data"]["CALL_ID"], "c-1");
    // The robot of the stage entered read the event's data.
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(s.entity(deal).await["custom_fields"]["UF_ECHO"], "a call of 125 s");

    // The same trigger again finds the deal at its stage: it does not
    // move, and its timeline says why.
    let again = call(ANSWERED).await;
    let back = json!({"why": "backwards", "stage": "WORK"});
    assert_eq!(
        again["hits"][0]["fired"],
        json!([{"entity": deal.to_string(), "ignored": back}])
    );
    let ignored: Vec<Value> = events(&s, deal, "trigger-ignored").await;
    let whys: Vec<&str> = ignored
        .iter()
        .map(|e| e["data"]["ignored"]["why"].as_str().unwrap())
        .collect();
    assert_eq!(whys, ["condition-false", "backwards"]);
    // No stage has a `missed_call` trigger: the contact the call came from
    // is told so on its own timeline.
    let missed = call(&answered(0)).await;
    assert_eq!(missed["hits"][0]["trigger"], "missed_call");
    let contact = "contact:1".parse().unwrap();
    let none = json!({"why": "no-trigger"});
    assert_eq!(
        missed["hits"][0]["fired"],
        json!([{"entity": "contact:1", "ignored": none}])
    );
    assert_eq!(
        events(&s, contact, "trigger-ignored").await[0]["data"]["code"],
        "missed_call"
    );
    assert_eq!(s.entity(deal).await["stage"], "WORK");
}

async fn forged_stale_oversize_and_unknown_calls_are_refused_and_recorded(db: Db) {
    let s = server(db).await;
    let deal = telephony(&s).await;
    let hook = endpoint(&s, "telephony", true).await;
    let refused = |reply: Reply, status: u16, call_status: &str| {
        let receipt = reply.expect(status);
        assert_eq!(receipt["status"], call_status, "{receipt}");
        receipt["reason"].as_str().unwrap().to_owned()
    };

    let missing = refused(post(&s, &hook, &[], ANSWERED).await, 401, "bad-signature");
    assert!(missing.contains("has no `robohost-signature` header"), "{missing}");
    let forged = sign(
        "whsec_guessed_by_an_attacker",
        s.clock.now().0 / 1000,
        ANSWERED.as_bytes(),
    );
    let forged = refused(
        post(&s, &hook, &[("robohost-signature", &forged)], ANSWERED).await,
        401,
        "bad-signature",
    );
    assert!(forged.contains("secret or the body differ"), "{forged}");
    // Signed for another body.
    let other = signed(&s, &hook, "{}", 0);
    refused(
        post(&s, &hook, &[("robohost-signature", &other)], ANSWERED).await,
        401,
        "bad-signature",
    );
    // A captured call replayed ten minutes later.
    let stale = signed(&s, &hook, ANSWERED, 600);
    let stale = refused(
        post(&s, &hook, &[("robohost-signature", &stale)], ANSWERED).await,
        401,
        "bad-signature",
    );
    assert!(stale.contains("600 s from the host's clock"), "{stale}");
    let garbled = refused(
        post(&s, &hook, &[("robohost-signature", "v1=abc")], ANSWERED).await,
        401,
        "bad-signature",
    );
    assert!(
        garbled.contains("is not `t=<unix seconds>,v1=<hex HMAC-SHA256>`"),
        "{garbled}"
    );

    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(300 * 1024));
    let signature = signed(&s, &hook, &huge, 0);
    let too_large = refused(
        post(&s, &hook, &[("robohost-signature", &signature)], &huge).await,
        413,
        "too-large",
    );
    assert!(too_large.contains("over the 262144 bytes"), "{too_large}");

    let unknown = json!({"id": "0".repeat(32), "url": format!("/hooks/{}", "0".repeat(32))});
    let nobody = refused(post(&s, &unknown, &[], ANSWERED).await, 404, "unknown-endpoint");
    assert_eq!(nobody, "no endpoint has this id");

    // Nothing moved; each refusal is recorded with its verdict.
    assert_eq!(s.entity(deal).await["stage"], "NEW");
    let recorded = calls(&s, &hook).await;
    let statuses: Vec<&str> = recorded.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "too-large",
            "bad-signature",
            "bad-signature",
            "bad-signature",
            "bad-signature",
            "bad-signature"
        ]
    );
    let verdicts: Vec<&str> = recorded[1..]
        .iter()
        .map(|c| c["signature"]["signature"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["malformed", "stale", "mismatch", "mismatch", "missing"]);
    assert_eq!(recorded[2]["signature"]["skew_s"], 600);
    assert!(
        recorded
            .iter()
            .all(|c| c.get("handling").is_none() && c["hits"] == json!([]))
    );
    assert_eq!(recorded[0]["size"], 262144);
    let unknown_calls = calls(&s, &unknown).await;
    assert_eq!(unknown_calls.len(), 1);
    assert_eq!(unknown_calls[0]["status"], "unknown-endpoint");
    let by_status = s.get("/api/calls?status=bad-signature", &s.admin).await.expect(200);
    assert_eq!(by_status.as_array().unwrap().len(), 5);
    // A flood of bad calls from one address is answered alike, but only
    // the first 20 refusals a minute are recorded.
    for _ in 0..20 {
        let reply = post(&s, &unknown, &[], ANSWERED).await.expect(404);
        assert_eq!(reply["status"], "unknown-endpoint");
    }
    assert_eq!(
        calls(&s, &unknown).await.len(),
        1 + 13,
        "7 refusals before, 13 more recorded"
    );
    let bad_status = s.get("/api/calls?status=forged", &s.admin).await;
    bad_status.error(400, "bad_query", Some("status"), "`forged` is not a call status");
}

async fn a_retried_idempotency_key_changes_nothing_the_second_time(db: Db) {
    let s = server(db).await;
    let deal = telephony(&s).await;
    let hook = endpoint(&s, "telephony", false).await;

    let first = post(&s, &hook, &[("idempotency-key", "evt-1")], ANSWERED)
        .await
        .expect(200);
    assert_eq!(first["status"], "handled");
    assert_eq!(s.entity(deal).await["stage"], "WORK");
    // Moved back by hand, so a second firing would move it again.
    s.move_to(deal, "NEW").await;

    let retried = post(&s, &hook, &[("idempotency-key", "evt-1")], ANSWERED)
        .await
        .expect(200);
    assert_eq!(retried["status"], "duplicate");
    assert_eq!(
        retried["reason"],
        format!(
            "call {} was handled with this idempotency key; nothing was done again",
            first["call"]
        )
    );
    assert_eq!(s.entity(deal).await["stage"], "NEW");
    let [duplicate, _] = &calls(&s, &hook).await[..] else {
        panic!("two calls")
    };
    assert_eq!(duplicate["original"], first["call"]);
    assert_eq!(duplicate["idempotency_key"], "evt-1");
    assert!(
        duplicate.get("handling").is_none(),
        "the plugin is not run again: {duplicate}"
    );

    // Another key is another event.
    post(&s, &hook, &[("idempotency-key", "evt-2")], ANSWERED)
        .await
        .expect(200);
    assert_eq!(s.entity(deal).await["stage"], "WORK");
}

/// Calls are kept for `keep-calls-days` (30 by default): older records
/// are forgotten, and a key among them no longer makes a call a duplicate.
async fn old_calls_are_forgotten_with_their_keys(db: Db) {
    let s = server(db).await;
    let deal = telephony(&s).await;
    let hook = endpoint(&s, "telephony", false).await;
    post(&s, &hook, &[("idempotency-key", "evt-1")], ANSWERED)
        .await
        .expect(200);
    s.move_to(deal, "NEW").await;
    s.clock.advance(chrono::Duration::days(29));
    post(&s, &hook, &[], "not json").await.expect(422);
    assert_eq!(s.engine.forget_old_calls().await.unwrap(), 0);
    assert_eq!(calls(&s, &hook).await.len(), 2);

    // Past 30 days the first is forgotten, the second is kept.
    s.clock.advance(chrono::Duration::days(2));
    assert_eq!(s.engine.forget_old_calls().await.unwrap(), 1);
    let kept = calls(&s, &hook).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["status"], "plugin-failed");
    let again = post(&s, &hook, &[("idempotency-key", "evt-1")], ANSWERED)
        .await
        .expect(200);
    assert_eq!(again["status"], "handled");
    assert_eq!(s.entity(deal).await["stage"], "WORK");
}

async fn a_hostile_trigger_plugin_fails_only_its_own_call(db: Db) {
    let s = server(db).await;
    s.general_pipeline().await;
    s.json(
        "POST",
        "/api/pipelines/general/stages/WORK/triggers",
        &s.admin,
        json!({"code": "poked"}),
    )
    .await
    .expect(201);
    s.install_triggers("hostile", "hostile_trigger", r#""poked""#).await;
    let deal = s.deal("NEW", "100").await;
    assert_eq!(deal.id, 1, "the hostile plugin's honest hit names deal 1");
    let hook = endpoint(&s, "hostile", false).await;

    for (attack, outcome) in [
        ("loop", "out-of-fuel"),
        ("memory", "memory-limit"),
        ("trap", "guest-trap"),
        ("hits", "output-limit"),
        ("log", "output-limit"),
    ] {
        let reply = post(&s, &hook, &[], attack).await;
        let receipt = reply.expect(500);
        assert_eq!(receipt["status"], "plugin-failed", "{attack}: {receipt}");
        let call = s
            .get(&format!("/api/calls/{}", receipt["call"]), &s.admin)
            .await
            .expect(200);
        assert_eq!(call["handling"]["outcome"]["outcome"], outcome, "{attack}: {call}");
        assert_eq!(call["handling"]["blame"], "guest", "{attack}");
        assert_eq!(call["hits"], json!([]));
        assert_eq!(s.entity(deal).await["stage"], "NEW", "{attack} moved nothing");
    }
    // The next call is handled as if nothing happened.
    post(&s, &hook, &[], "honest").await.expect(200);
    assert_eq!(s.entity(deal).await["stage"], "WORK");
}

async fn endpoints_are_admins_to_make_and_need_a_trigger_plugin(db: Db) {
    let s = server(db).await;
    telephony(&s).await;
    let integrator = s.token("integrator").await;
    let manager = s.token("manager").await;
    // The codes a stage may use: the host's own and the installed plugins'.
    let catalog = s.get("/api/trigger-catalog", &manager).await.expect(200);
    let codes: Vec<(&str, &str)> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["code"].as_str().unwrap(), t["plugin"].as_str().unwrap_or("host")))
        .collect();
    let expected = [
        ("email_opened", "host"),
        ("form_submitted", "host"),
        ("incoming_call", "telephony"),
        ("link_clicked", "host"),
        ("missed_call", "telephony"),
        ("updated", "host"),
    ];
    assert_eq!(codes, expected);
    assert_eq!(catalog[2]["names"]["ru"], "Входящий звонок");
    let body = json!({"plugin": "telephony"});
    assert_eq!(
        s.json("POST", "/api/endpoints", &integrator, body.clone()).await.status,
        403
    );
    s.install("bench", "crm-read").await;
    s.json("POST", "/api/endpoints", &s.admin, json!({"plugin": "bench"}))
        .await
        .error(
            422,
            "invalid",
            Some("plugin"),
            "`bench` is a robot plugin; an endpoint needs a trigger plugin",
        );
    s.json("POST", "/api/endpoints", &s.admin, json!({"plugin": "nope"}))
        .await
        .error(422, "invalid", Some("plugin"), "no plugin `nope` is installed");
    let hook = endpoint(&s, "telephony", true).await;
    // Listed without the secret, to an integrator too; not to a manager.
    let listed = s.get("/api/endpoints", &integrator).await.expect(200);
    assert_eq!(listed[0]["id"], hook["id"]);
    assert_eq!(listed[0]["signed"], true);
    assert!(listed[0].get("secret").is_none(), "{listed}");
    assert_eq!(s.get("/api/endpoints", &manager).await.status, 403);
    assert_eq!(s.get("/api/calls", &manager).await.status, 403);

    // A new secret: the old one no longer holds.
    let path = format!("/api/endpoints/{}/secret", hook["id"].as_str().unwrap());
    let renewed = s.json("POST", &path, &s.admin, json!({})).await.expect(200);
    assert_ne!(renewed["secret"], hook["secret"]);
    let old = signed(&s, &hook, ANSWERED, 0);
    post(&s, &hook, &[("robohost-signature", &old)], ANSWERED)
        .await
        .expect(401);
    let new = signed(&s, &renewed, ANSWERED, 0);
    post(&s, &renewed, &[("robohost-signature", &new)], ANSWERED)
        .await
        .expect(200);

    // The package cannot go while the endpoint uses it, unless forced.
    let refused = s
        .send("DELETE", "/api/packages/telephony", Some(&s.admin), None, "")
        .await;
    refused.error(422, "invalid", Some("force"), "handles endpoints");
    let path = format!("/api/endpoints/{}", hook["id"].as_str().unwrap());
    assert_eq!(s.send("DELETE", &path, Some(&s.admin), None, "").await.status, 204);
    let gone = post(&s, &hook, &[], ANSWERED).await.expect(404);
    assert_eq!(gone["status"], "unknown-endpoint");
    s.send("DELETE", "/api/packages/telephony", Some(&s.admin), None, "")
        .await
        .expect(200);
}

async fn a_call_from_an_unknown_number_makes_a_lead_when_the_endpoint_says_so(db: Db) {
    let s = server(db).await;
    telephony(&s).await;
    let leads = serde_json::to_value(robohost_tests::fixtures::pipeline("leads", "lead", &["NEW", "CALLED"])).unwrap();
    s.json("PUT", "/api/pipelines/leads", &s.admin, leads).await.expect(200);
    s.json(
        "POST",
        "/api/pipelines/leads/stages/CALLED/triggers",
        &s.admin,
        json!({"code": "incoming_call"}),
    )
    .await
    .expect(201);
    let make = |pipeline: &str| json!({"plugin": "telephony", "title": "PBX", "signed": false, "unmatched": {"then": "create-lead", "pipeline": pipeline}});
    s.json("POST", "/api/endpoints", &s.admin, make("general")).await.error(
        422,
        "invalid",
        Some("unmatched.pipeline"),
        "general",
    );
    let hook = s
        .json("POST", "/api/endpoints", &s.admin, make("leads"))
        .await
        .expect(201);
    assert_eq!(hook["unmatched"], json!({"then": "create-lead", "pipeline": "leads"}));

    let stranger = ANSWERED.replace("+7 912 345-67-89", "+7 999 000-11-22");
    let receipt = post(&s, &hook, &[], &stranger).await.expect(200);
    let call = s
        .get(&format!("/api/calls/{}", receipt["call"]), &s.admin)
        .await
        .expect(200);
    let hit = &call["hits"][0];
    let lead = hit["created"].as_str().unwrap_or_else(|| panic!("{call}"));
    assert_eq!(hit["fired"], json!([{"entity": lead, "moved_to": "CALLED"}]));
    let lead: EntityRef = lead.parse().unwrap();
    let made = s.entity(lead).await;
    assert_eq!(made["pipeline"], "leads");
    assert_eq!(made["stage"], "CALLED");
    assert_eq!(made["fields"]["PHONE"], "+79990001122");
    assert_eq!(made["fields"]["TITLE"], "+79990001122 (PBX)");
    assert_eq!(made["fields"]["DURATION"], 125);
    assert_eq!(events(&s, lead, "created").await[0]["data"]["endpoint"], hook["id"]);

    // The next call from that number finds the lead: no second one.
    let receipt = post(&s, &hook, &[], &stranger).await.expect(200);
    let call = s
        .get(&format!("/api/calls/{}", receipt["call"]), &s.admin)
        .await
        .expect(200);
    assert!(call["hits"][0].get("created").is_none(), "{call}");
    assert_eq!(call["hits"][0]["fired"][0]["entity"], lead.to_string());
    let all = s.get("/api/entities/lead", &s.admin).await.expect(200);
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
}

async fn a_web_form_makes_leads_and_keeps_bots_and_floods_out(db: Db) {
    let s = server(db).await;
    let leads = serde_json::to_value(robohost_tests::fixtures::pipeline(
        "leads",
        "lead",
        &["NEW", "QUALIFIED"],
    ))
    .unwrap();
    s.json("PUT", "/api/pipelines/leads", &s.admin, leads).await.expect(200);
    // A visitor who leaves a phone number is qualified at once.
    let with_phone = json!({"compare": {"field": "Event.PHONE", "op": "not-empty", "value": ""}});
    let trigger = json!({"code": "form_submitted", "condition": with_phone});
    s.json(
        "POST",
        "/api/pipelines/leads/stages/QUALIFIED/triggers",
        &s.admin,
        trigger,
    )
    .await
    .expect(201);
    let form = json!({"pipeline": "leads", "fields": {"name": "NAME", "email": "EMAIL", "phone": "PHONE"},
        "redirect": "https://example.com/thanks"});
    let made = s
        .json(
            "POST",
            "/api/endpoints",
            &s.admin,
            json!({"title": "Site", "form": form}),
        )
        .await
        .expect(201);
    assert_eq!(made["signed"], false, "browsers post forms unsigned: {made}");
    let url = made["url"].as_str().unwrap().to_owned();
    let submit = async |body: &str| {
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        s.raw("POST", &url, &headers, body.to_owned().into()).await
    };
    let thanks = |reply: robohost_tests::http::Reply| {
        assert_eq!(reply.status, 303, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.headers["location"], "https://example.com/thanks");
    };
    let leads = async || s.get("/api/entities/lead", &s.admin).await.expect(200);

    thanks(submit("name=Ivan+Petrov&email=ivan%40example.com&comment=hello").await);
    thanks(submit("name=Anna&phone=%2B7+912+000-00-01").await);
    let made = leads().await;
    assert_eq!(
        made[0]["fields"],
        json!({"NAME": "Ivan Petrov", "EMAIL": "ivan@example.com", "TITLE": "Site"})
    );
    assert_eq!(made[0]["stage"], "NEW");
    assert_eq!(made[1]["fields"]["PHONE"], "+7 912 000-00-01");
    assert_eq!(made[1]["stage"], "QUALIFIED", "{made}");

    // A bot fills the hidden field: it is thanked like a person, and
    // nothing is made. A submission that fills no field is refused.
    thanks(submit("name=Bot&email=bot%40spam.example&website=http%3A%2F%2Fspam.example").await);
    let empty = submit("comment=hi").await.expect(422);
    assert_eq!(empty["status"], "invalid");
    assert_eq!(
        empty["reason"],
        "the submission fills none of the form's fields (email, name, phone)"
    );
    assert_eq!(leads().await.as_array().map(Vec::len), Some(2));
    let recorded = calls(&s, &json!({"id": made_id(&url)})).await;
    let statuses: Vec<&str> = recorded.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["invalid", "spam", "handled", "handled"]);
    assert_eq!(
        recorded[1]["reason"],
        "the hidden field `website` is filled, as only bots do"
    );

    // Five submissions a minute from one address; the sixth is refused,
    // and not recorded; a minute later the address may submit again.
    thanks(submit("name=Five").await);
    let flood = submit("name=Six").await;
    assert_eq!(flood.status, 429);
    assert_eq!(flood.headers["retry-after"], "60");
    assert_eq!(flood.json()["status"], "rate-limited");
    assert_eq!(calls(&s, &json!({"id": made_id(&url)})).await.len(), 5);
    s.clock.advance(chrono::Duration::seconds(60));
    thanks(submit("name=Seven").await);
    let names: Vec<Value> = leads()
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["fields"]["NAME"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("Ivan Petrov"), json!("Anna"), json!("Five"), json!("Seven")]
    );
}

/// An endpoint's id from its address.
fn made_id(url: &str) -> String {
    url.trim_start_matches("/hooks/").to_owned()
}

on_both!(
    old_calls_are_forgotten_with_their_keys,
    a_web_form_makes_leads_and_keeps_bots_and_floods_out,
    a_call_from_an_unknown_number_makes_a_lead_when_the_endpoint_says_so,
    a_signed_call_moves_the_callers_deal,
    forged_stale_oversize_and_unknown_calls_are_refused_and_recorded,
    a_retried_idempotency_key_changes_nothing_the_second_time,
    a_hostile_trigger_plugin_fails_only_its_own_call,
    endpoints_are_admins_to_make_and_need_a_trigger_plugin,
);
