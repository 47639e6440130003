//! Inbound calls: `cargo bench -p robohost-tests --bench inbound`.
//!
//! A telephony provider's signed call notice posted to `/hooks/{id}`:
//! signature and idempotency key checked, the `call_notice` trigger plugin
//! run in a fresh sandbox, the caller's contact found by phone, their deal
//! moved, and the move and the call's record committed; against the baseline,
//! in the same run, the same move fired by an authenticated `POST
//! /api/events` with the same lookup (no signature, no plugin, no record).
//! One call at a time over a new connection each, alternating the two, on
//! SQLite and on PostgreSQL; each call moves a deal of its own.

use std::time::{Duration, Instant};

use robohost::domain::sign;
use robohost::engine::Clock;
use robohost_tests::db::Db;
use robohost_tests::http::{Server, server};
use serde_json::json;

/// Calls of each kind.
const CALLS: usize = 300;

fn phone(i: usize) -> String {
    format!("+7900{i:07}")
}

/// The portal: deals in NEW of `general`, each linked to a contact with its
/// own phone; an `incoming_call` trigger on WORK; the telephony package and
/// a signed endpoint. Returns the endpoint's address and secret.
async fn portal(s: &Server) -> (String, String) {
    s.general_pipeline().await;
    s.json(
        "POST",
        "/api/pipelines/general/stages/WORK/triggers",
        &s.admin,
        json!({"code": "incoming_call"}),
    )
    .await
    .expect(201);
    s.install_triggers("telephony", "call_notice", r#""incoming_call", "missed_call""#)
        .await;
    for i in 0..2 * CALLS {
        let contact = json!({"kind": "contact", "fields": {"PHONE": phone(i)}});
        let contact = s.json("POST", "/api/entities", &s.admin, contact).await.expect(201);
        let mut deal = robohost_tests::fixtures::deal("NEW", "1000");
        deal["links"] = json!([{"kind": "contact", "id": contact["id"]}]);
        s.json("POST", "/api/entities", &s.admin, deal).await.expect(201);
    }
    let hook = s
        .json("POST", "/api/endpoints", &s.admin, json!({"plugin": "telephony"}))
        .await
        .expect(201);
    (
        hook["url"].as_str().unwrap().to_owned(),
        hook["secret"].as_str().unwrap().to_owned(),
    )
}

fn percentile(times: &mut [Duration], p: usize) -> Duration {
    times.sort_unstable();
    times[(times.len() * p / 100).min(times.len() - 1)]
}

async fn measure(db: Db) {
    let s = server(db).await;
    let (url, secret) = portal(&s).await;
    let now = s.clock.now().0 / 1000;
    let (mut hooks, mut events) = (Vec::with_capacity(CALLS), Vec::with_capacity(CALLS));
    for i in 0..CALLS {
        let body = json!({"event": "call_end", "direction": "inbound", "from": phone(i), "duration": 60, "call_id": format!("c-{i}")})
            .to_string();
        let signature = sign(&secret, now, body.as_bytes());
        let key = format!("call-{i}");
        let headers = [
            ("content-type", "application/json"),
            ("robohost-signature", signature.as_str()),
            ("idempotency-key", key.as_str()),
        ];
        let started = Instant::now();
        let reply = s.raw("POST", &url, &headers, body.into()).await;
        hooks.push(started.elapsed());
        assert_eq!(reply.expect(200)["status"], "handled");

        let event = json!({"trigger": "incoming_call", "lookup": {"kind": "contact", "code": "PHONE", "value": phone(CALLS + i)}});
        let started = Instant::now();
        let reply = s.json("POST", "/api/events", &s.admin, event).await;
        events.push(started.elapsed());
        assert_eq!(reply.expect(200)["moved"].as_array().map(Vec::len), Some(1));
    }
    let (hook_p50, event_p50) = (percentile(&mut hooks, 50), percentile(&mut events, 50));
    println!(
        "{db:?}: {CALLS} signed calls through the trigger plugin p50 {:.2} ms, p99 {:.2} ms; \
         POST /api/events (baseline) p50 {:.2} ms, p99 {:.2} ms; ratio {:.2}",
        hook_p50.as_secs_f64() * 1e3,
        percentile(&mut hooks, 99).as_secs_f64() * 1e3,
        event_p50.as_secs_f64() * 1e3,
        percentile(&mut events, 99).as_secs_f64() * 1e3,
        hook_p50.as_secs_f64() / event_p50.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    measure(Db::Sqlite).await;
    measure(Db::Postgres).await;
}
