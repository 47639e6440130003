//! The run log and what an admin does with it, over HTTP on both databases:
//! runs filtered and paged newest first, a dead run retried once its cause
//! is fixed; and API tokens listed and revoked.

use robohost::domain::{EntityKind, EntityRef};
use robohost_tests::db::Db;
use robohost_tests::http::server;
use robohost_tests::on_both;
use serde_json::{Value, json};

/// The ids of a list of runs.
fn ids(runs: &Value) -> Vec<u64> {
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

async fn a_dead_run_is_listed_and_retried_once_its_cause_is_fixed(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    s.general_pipeline().await;
    // An email to a deal with no address fails for good: dead at once.
    let email = json!({"plugin": "standard", "robot": "email",
        "properties": {"subject": "Offer", "body": "Our offer for {=Document.TITLE}"}});
    let path = "/api/pipelines/general/stages/WORK/robots";
    s.json("POST", path, &s.admin, email).await.expect(201);
    let mut deals = Vec::new();
    for title in ["Pumps", "Valves", "Pipes"] {
        let deal = json!({"kind": "deal", "pipeline": "general", "stage": "WORK", "fields": {"TITLE": title}});
        let deal = s.json("POST", "/api/entities", &s.admin, deal).await.expect(201);
        deals.push(EntityRef {
            kind: EntityKind::Deal,
            id: deal["id"].as_u64().unwrap(),
        });
    }
    s.engine.run_until_idle().await.unwrap();

    let dead = s.get("/api/runs?status=dead&order=newest", &s.admin).await.expect(200);
    let all = ids(&dead);
    assert_eq!(all.len(), 3, "{dead}");
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    assert_eq!(dead[0]["report"]["outcome"]["code"], "no_address", "{}", dead[0]);
    // Paged two at a time.
    let first = s
        .get("/api/runs?status=dead&order=newest&limit=2", &s.admin)
        .await
        .expect(200);
    assert_eq!(ids(&first), all[..2]);
    let next = format!("/api/runs?status=dead&order=newest&limit=2&before={}", all[1]);
    assert_eq!(ids(&s.get(&next, &s.admin).await.expect(200)), all[2..]);
    let none = s.get("/api/runs?status=succeeded", &s.admin).await.expect(200);
    assert_eq!(none, json!([]));
    s.get("/api/runs?status=lost", &s.admin).await.error(
        400,
        "bad_query",
        Some("status"),
        "`lost` is not a run status",
    );
    s.get("/api/runs?order=random", &s.admin)
        .await
        .error(400, "bad_query", Some("order"), "`oldest` or `newest`");

    // The first deal gets an address; only admins retry, only dead runs.
    let fixed = json!({"fields": {"EMAIL": "buyer@example.com"}});
    s.json("PATCH", &format!("/api/entities/deal/{}", deals[0].id), &s.admin, fixed)
        .await
        .expect(200);
    let pumps = ids(&s
        .get(&format!("/api/runs?entity={}", deals[0]), &s.admin)
        .await
        .expect(200))[0];
    let manager = s.token("manager").await;
    s.json("POST", "/api/runs/retry", &manager, json!({"ids": [pumps]}))
        .await
        .expect(403);
    let retried = s
        .json("POST", "/api/runs/retry", &s.admin, json!({"ids": [pumps, 999_999]}))
        .await
        .expect(200);
    assert_eq!(retried, json!({"retried": [pumps], "not_dead": [999_999]}));
    s.engine.run_until_idle().await.unwrap();
    let run = s.get(&format!("/api/runs/{pumps}"), &s.admin).await.expect(200);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 1);
    let again = s
        .json("POST", "/api/runs/retry", &s.admin, json!({"ids": [pumps]}))
        .await
        .expect(200);
    assert_eq!(again, json!({"retried": [], "not_dead": [pumps]}));
    let dead = s.get("/api/runs?status=dead", &s.admin).await.expect(200);
    assert_eq!(ids(&dead), all[..2].iter().rev().copied().collect::<Vec<_>>());
    s.json("POST", "/api/runs/retry", &s.admin, json!({"ids": []}))
        .await
        .error(422, "invalid", Some("ids"), "1 to 1000");
}

async fn tokens_are_listed_without_their_text_and_revoked(db: Db) {
    let s = server(db).await;
    let made = s
        .json(
            "POST",
            "/api/tokens",
            &s.admin,
            json!({"name": "crm sync", "role": "integrator"}),
        )
        .await
        .expect(201);
    let token = made["token"].as_str().unwrap();
    let id = made["id"].as_str().unwrap();
    s.get("/api/plugins", token).await.expect(200);

    let listed = s.get("/api/tokens", &s.admin).await.expect(200);
    let sync: Vec<&Value> = listed.as_array().unwrap().iter().filter(|t| t["id"] == id).collect();
    assert_eq!(sync.len(), 1, "{listed}");
    assert_eq!(
        (sync[0]["name"].as_str(), sync[0]["role"].as_str()),
        (Some("crm sync"), Some("integrator"))
    );
    assert!(!listed.to_string().contains(token), "a token's text is shown once");
    s.get("/api/tokens", token).await.expect(403);

    let revoked = s
        .send("DELETE", &format!("/api/tokens/{id}"), Some(&s.admin), None, "")
        .await;
    assert_eq!(revoked.status, 204);
    s.get("/api/plugins", token).await.expect(401);
    s.send("DELETE", &format!("/api/tokens/{id}"), Some(&s.admin), None, "")
        .await
        .expect(404);
    s.send("DELETE", "/api/tokens/rh", Some(&s.admin), None, "")
        .await
        .expect(404);
    let left = s.get("/api/tokens", &s.admin).await.expect(200);
    assert!(left.as_array().unwrap().iter().all(|t| t["id"] != id), "{left}");
}

on_both!(
    a_dead_run_is_listed_and_retried_once_its_cause_is_fixed,
    tokens_are_listed_without_their_text_and_revoked,
);
