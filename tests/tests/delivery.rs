//! Delivering the outbox to real providers the tests start: an SMTP server
//! on a local port, and HTTP gateways that answer as told (fail twice then
//! succeed, always fail, refuse). Messages are retried with backoff on the
//! controlled clock, carry one idempotency key across attempts, end sent or
//! failed with the reason, and survive a host that dies while delivering.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use robohost::domain::{Timestamp, check_signature};
use robohost::engine::{DeliveryConfig, Engine, EngineConfig, GatewayConfig, ManualClock, SmtpConfig};
use robohost::storage::{Attempted, OutboxMessage};
use robohost_tests::db::{Db, engine};
use robohost_tests::fixtures::{general, json, wednesday};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const SECRET: &str = "whsec_gateway";
const BACKOFF_MS: i64 = 60_000;

/// A portal whose NEW stage sends one message on `channel` to `to`.
async fn portal(db: Db, delivery: DeliveryConfig, channel: &str, to: &str) -> (Arc<Engine>, Arc<ManualClock>) {
    let config = EngineConfig {
        delivery,
        ..EngineConfig::default()
    };
    let (engine, clock) = engine(db, wednesday(), config).await;
    engine.install_standard().await.unwrap();
    engine.put_pipeline(&general()).await.unwrap();
    let properties = match channel {
        "email" => format!(r#"{{"to": "{to}", "subject": "Your order", "body": "Deal {{=Document.TITLE}} is ready"}}"#),
        _ => format!(r#"{{"to": "{to}", "text": "Pay here"}}"#),
    };
    let robot = json(&format!(
        r#"{{"id": 0, "pipeline": "general", "stage": "NEW", "plugin": "standard", "robot": "{channel}", "properties": {properties}}}"#
    ));
    engine.add_robot(&robot).await.unwrap();
    let deal = json(r#"{"kind": "deal", "pipeline": "general", "fields": {"TITLE": "Pumps"}}"#);
    let (draft, links) = robohost::api::NewEntityRequest::into_entity(deal).unwrap();
    engine.create_entity(draft, links).await.unwrap();
    engine.run_until_idle().await.unwrap();
    (engine, clock)
}

fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

async fn the_message(engine: &Engine) -> OutboxMessage {
    let mut all = engine.store().outbox(None, 10).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn gateway_config(url: String, max_attempts: u32) -> DeliveryConfig {
    DeliveryConfig {
        max_attempts,
        backoff_ms: BACKOFF_MS,
        sms: Some(GatewayConfig {
            url,
            secret: SECRET.into(),
        }),
        ..DeliveryConfig::default()
    }
}

/// One post a gateway received: its idempotency key, whether its signature
/// held, and its JSON body.
type Post = (String, bool, serde_json::Value);

/// An HTTP gateway on a local port that answers the posts it gets with
/// `answers` in turn (the last one from then on), recording each.
async fn gateway(answers: Vec<u16>) -> (String, Arc<Mutex<Vec<Post>>>) {
    let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
    let recorded = posts.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let posts = recorded.clone();
            let answers = answers.clone();
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let signed = matches!(
                    check_signature(
                        SECRET,
                        header("robohost-signature").as_deref(),
                        &body,
                        Timestamp::now().0 / 1000
                    ),
                    robohost::domain::SignatureCheck::Valid
                );
                let mut posts = posts.lock().unwrap();
                let json = serde_json::from_slice(&body).unwrap_or_default();
                posts.push((header("idempotency-key").unwrap_or_default(), signed, json));
                let status = answers[(posts.len() - 1).min(answers.len() - 1)];
                (StatusCode::from_u16(status).unwrap(), format!("answer {}", posts.len()))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posts)
}

async fn retried_with_backoff_then_delivered_once(db: Db) {
    let (url, posts) = gateway(vec![500, 503, 200]).await;
    let (engine, clock) = portal(db, gateway_config(url, 5), "sms", "+79001234567").await;

    assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
    let message = the_message(&engine).await;
    assert_eq!((message.status.as_str(), message.attempts), ("queued", 1));
    assert!(message.error.as_deref().unwrap().contains("500"), "{message:?}");
    assert_eq!(message.due_at, Some(Timestamp(wednesday().0 + BACKOFF_MS)));
    // Not before its time.
    clock.advance(ms(BACKOFF_MS - 1));
    assert_eq!(engine.deliver_outbox().await.unwrap(), 0);
    clock.advance(ms(1));
    assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
    let message = the_message(&engine).await;
    assert_eq!((message.status.as_str(), message.attempts), ("queued", 2));
    // The backoff doubles.
    clock.advance(ms(2 * BACKOFF_MS));
    assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
    let message = the_message(&engine).await;
    assert_eq!((message.status.as_str(), message.attempts), ("sent", 3));
    assert_eq!(message.error, None);
    assert!(message.sent_at.is_some());
    clock.advance(ms(100 * BACKOFF_MS));
    assert_eq!(engine.deliver_outbox().await.unwrap(), 0);

    let posts = posts.lock().unwrap();
    assert_eq!(posts.len(), 3, "three attempts, one delivery");
    let key = &posts[0].0;
    assert!(key.starts_with("robohost-"), "{key}");
    for (k, signed, body) in posts.iter() {
        assert_eq!(k, key, "every attempt carries the same key");
        assert!(signed, "every post is signed with the gateway's secret");
        assert_eq!(body["id"], serde_json::json!(key));
        assert_eq!(body["to"], "+79001234567");
        assert_eq!(body["body"], "Pay here");
        assert_eq!(body["channel"], "sms");
    }
}

#[tokio::test]
async fn a_gateway_failing_twice_gets_the_message_once_on_sqlite() {
    retried_with_backoff_then_delivered_once(Db::Sqlite).await;
}

#[tokio::test]
async fn a_gateway_failing_twice_gets_the_message_once_on_postgres() {
    retried_with_backoff_then_delivered_once(Db::Postgres).await;
}

#[tokio::test]
async fn a_gateway_that_always_fails_leaves_the_message_failed_with_the_reason() {
    let (url, posts) = gateway(vec![502]).await;
    let (engine, clock) = portal(Db::Sqlite, gateway_config(url, 3), "sms", "+79001234567").await;
    for _ in 0..3 {
        assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
        clock.advance(ms(10 * BACKOFF_MS));
    }
    assert_eq!(engine.deliver_outbox().await.unwrap(), 0);
    let message = the_message(&engine).await;
    assert_eq!((message.status.as_str(), message.attempts), ("failed", 3));
    assert!(message.error.as_deref().unwrap().contains("502"), "{message:?}");
    assert_eq!(posts.lock().unwrap().len(), 3);
    // The API shows it so.
    let listed = serde_json::to_value(&message).unwrap();
    assert_eq!(listed["status"], "failed");
    assert_eq!(listed["attempts"], 3);
}

#[tokio::test]
async fn a_message_the_gateway_refuses_fails_at_once() {
    let (url, posts) = gateway(vec![422]).await;
    let (engine, _) = portal(Db::Sqlite, gateway_config(url, 5), "sms", "not a phone").await;
    assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
    let message = the_message(&engine).await;
    assert_eq!((message.status.as_str(), message.attempts), ("failed", 1));
    assert!(message.error.as_deref().unwrap().contains("422"), "{message:?}");
    assert_eq!(posts.lock().unwrap().len(), 1);
}

async fn a_dead_hosts_message_is_delivered_after_its_lease(db: Db) {
    let (url, posts) = gateway(vec![200]).await;
    let (engine, clock) = portal(db, gateway_config(url, 5), "sms", "+79001234567").await;
    // A host leases the message, then dies before it hands it over.
    let lease = EngineConfig::default().lease_ms;
    let now = engine.now();
    let taken = engine
        .store()
        .lease_outbox(now, Timestamp(now.0 + lease), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    // Nobody else takes it while the lease holds...
    assert_eq!(engine.deliver_outbox().await.unwrap(), 0);
    clock.advance(ms(lease - 1));
    assert_eq!(engine.deliver_outbox().await.unwrap(), 0);
    assert_eq!(posts.lock().unwrap().len(), 0);
    // ...then another delivers it.
    clock.advance(ms(1));
    assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
    let message = the_message(&engine).await;
    assert_eq!((message.status.as_str(), message.attempts), ("sent", 2));
    assert_eq!(posts.lock().unwrap().len(), 1);
    // The dead host's attempt, had it finished late, changes nothing.
    let late = Attempted::Failed { error: "too late" };
    assert!(!engine.store().outbox_attempted(message.id, 1, late).await.unwrap());
    assert_eq!(the_message(&engine).await.status, "sent");
}

#[tokio::test]
async fn a_dead_hosts_message_is_delivered_after_its_lease_on_sqlite() {
    a_dead_hosts_message_is_delivered_after_its_lease(Db::Sqlite).await;
}

#[tokio::test]
async fn a_dead_hosts_message_is_delivered_after_its_lease_on_postgres() {
    a_dead_hosts_message_is_delivered_after_its_lease(Db::Postgres).await;
}

/// A mail an SMTP server took: its envelope (`MAIL FROM`, `RCPT TO`) and
/// its text.
type Mail = (Vec<String>, String);

/// An SMTP server on a local port that takes every message and keeps it.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kept = mails.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let mails = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test.local ESMTP\r\n").await.unwrap();
                let mut envelope = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let answer = match verb.as_str() {
                        "EHLO" | "HELO" => "250-test.local\r\n250 8BITMIME\r\n".to_owned(),
                        "MAIL" | "RCPT" => {
                            envelope.push(line.clone());
                            "250 OK\r\n".to_owned()
                        }
                        "DATA" => {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut text = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                text.push_str(&line);
                                text.push('\n');
                            }
                            mails.lock().unwrap().push((std::mem::take(&mut envelope), text));
                            "250 queued\r\n".to_owned()
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => "250 OK\r\n".to_owned(),
                    };
                    write.write_all(answer.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

#[tokio::test]
async fn an_email_goes_out_over_smtp_with_its_idempotency_key() {
    let (port, mails) = smtp_server().await;
    let delivery = DeliveryConfig {
        email: Some(SmtpConfig {
            smtp: format!("smtp://127.0.0.1:{port}"),
            from: "Sales <sales@example.com>".into(),
        }),
        ..DeliveryConfig::default()
    };
    let (engine, _) = portal(Db::Sqlite, delivery, "email", "ivan@example.com").await;
    assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
    let message = the_message(&engine).await;
    assert_eq!((message.status.as_str(), message.attempts), ("sent", 1), "{message:?}");

    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    let (envelope, text) = &mails[0];
    assert_eq!(
        envelope,
        &["MAIL FROM:<sales@example.com>", "RCPT TO:<ivan@example.com>"]
    );
    assert!(text.contains("To: ivan@example.com"), "{text}");
    assert!(text.contains("Subject: Your order"), "{text}");
    assert!(text.contains("Deal Pumps is ready"), "{text}");
    let key = format!(
        "Message-ID: <robohost-{}-{}@robohost>",
        message.created_at.0, message.id
    );
    assert!(text.contains(&key), "{text}");
}

#[tokio::test]
async fn an_email_to_a_malformed_address_fails_at_once_and_says_why() {
    let (port, mails) = smtp_server().await;
    let delivery = DeliveryConfig {
        email: Some(SmtpConfig {
            smtp: format!("smtp://127.0.0.1:{port}"),
            from: "sales@example.com".into(),
        }),
        ..DeliveryConfig::default()
    };
    let (engine, _) = portal(Db::Sqlite, delivery, "email", "ivan at example").await;
    assert_eq!(engine.deliver_outbox().await.unwrap(), 1);
    let message = the_message(&engine).await;
    assert_eq!(message.status, "failed");
    assert!(
        message.error.as_deref().unwrap().contains("is not an email address"),
        "{message:?}"
    );
    assert!(mails.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_delivery_configuration_is_refused_by_its_key() {
    let refused = |delivery: DeliveryConfig| async move {
        let config = EngineConfig {
            delivery,
            ..EngineConfig::default()
        };
        let store = robohost_tests::db::store(Db::Sqlite).await;
        let clock = Arc::new(ManualClock::new(wednesday()));
        match Engine::new(store, robohost_tests::db::shared_sandbox(), clock, config).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("started"),
        }
    };
    let smtp = DeliveryConfig {
        email: Some(SmtpConfig {
            smtp: "ftp://mail.example.com".into(),
            from: "sales@example.com".into(),
        }),
        ..DeliveryConfig::default()
    };
    assert!(refused(smtp).await.contains("delivery.email.smtp"));
    let gateway = gateway_config("mailto:x".into(), 3);
    assert!(refused(gateway).await.contains("delivery.sms.url"));
}
