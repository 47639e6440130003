//! Email tracking over HTTP: the standard email robot's email carries a
//! token; loading its image moves the lead by `email_opened`, following its
//! link moves it by `link_clicked`, and the host redirects only to links the
//! email holds.

use robohost::domain::{EntityKind, EntityRef};
use robohost_tests::db::Db;
use robohost_tests::fixtures::pipeline;
use robohost_tests::http::server;
use robohost_tests::on_both;
use serde_json::json;

const GUIDE: &str = "https://example.com/guide.pdf?from=mail";

async fn an_opened_email_and_a_clicked_link_move_the_lead(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    let leads = serde_json::to_value(pipeline("leads", "lead", &["NEW", "OPENED", "CLICKED"])).unwrap();
    s.json("PUT", "/api/pipelines/leads", &s.admin, leads).await.expect(200);
    for (stage, code) in [("OPENED", "email_opened"), ("CLICKED", "link_clicked")] {
        let path = format!("/api/pipelines/leads/stages/{stage}/triggers");
        s.json("POST", &path, &s.admin, json!({"code": code})).await.expect(201);
    }
    let body = format!(r#"<p>Hello, {{=Document.NAME}}! <a href="{GUIDE}">Your guide</a></p>"#);
    let email = json!({"plugin": "standard", "robot": "email", "properties": {"subject": "Your guide", "body": body}});
    s.json("POST", "/api/pipelines/leads/stages/NEW/robots", &s.admin, email)
        .await
        .expect(201);
    let lead = json!({"kind": "lead", "pipeline": "leads", "fields": {"NAME": "Ivan", "EMAIL": "ivan@example.com"}});
    let lead = s.json("POST", "/api/entities", &s.admin, lead).await.expect(201);
    let lead = EntityRef {
        kind: EntityKind::Lead,
        id: lead["id"].as_u64().unwrap(),
    };
    s.engine.run_until_idle().await.unwrap();
    assert_eq!(s.engine.deliver_outbox().await.unwrap(), 1);
    let outbox = s.get(&format!("/api/outbox?entity={lead}"), &s.admin).await.expect(200);
    let token = outbox[0]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{outbox}"))
        .to_owned();
    assert_eq!(token.len(), 32, "128 random bits in hex");

    // Opened: the image is served, and the lead moves.
    let image = s.send("GET", &format!("/t/{token}/open.gif"), None, None, "").await;
    assert_eq!(image.status, 200);
    assert_eq!(image.headers["content-type"], "image/gif");
    assert!(image.body.starts_with(b"GIF89a"));
    assert_eq!(s.entity(lead).await["stage"], "OPENED");

    // Clicked: redirected to the email's link, and the lead moves on.
    let click = s.send("GET", &format!("/t/{token}/link/0"), None, None, "").await;
    assert_eq!(click.status, 302);
    assert_eq!(click.headers["location"], GUIDE);
    assert_eq!(s.entity(lead).await["stage"], "CLICKED");
    let path = format!("/api/entities/lead/{}/timeline", lead.id);
    let timeline = s.get(&path, &s.admin).await.expect(200);
    let fired: Vec<&serde_json::Value> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "trigger-fired")
        .collect();
    assert_eq!(fired[0]["data"]["code"], "email_opened");
    assert_eq!(fired[0]["data"]["data"]["EMAIL"], "ivan@example.com");
    assert_eq!(fired[1]["data"]["code"], "link_clicked");
    assert_eq!(fired[1]["data"]["data"]["URL"], GUIDE);

    // No redirect anywhere else: not to a link the email lacks, not for a
    // token no email has; an unknown token's image moves nothing.
    let other = s.send("GET", &format!("/t/{token}/link/1"), None, None, "").await;
    assert_eq!(other.status, 404);
    assert!(other.headers.get("location").is_none());
    let forged = s
        .send("GET", "/t/00000000000000000000000000000000/link/0", None, None, "")
        .await;
    assert_eq!(forged.status, 404);
    let unknown = s
        .send("GET", "/t/00000000000000000000000000000000/open.gif", None, None, "")
        .await;
    assert_eq!(unknown.status, 200);
    assert!(unknown.body.starts_with(b"GIF89a"));
    assert_eq!(s.entity(lead).await["stage"], "CLICKED");
}

on_both!(an_opened_email_and_a_clicked_link_move_the_lead);
