//! The HTTP API end to end: a real server on 127.0.0.1:0 over a real SQLite
//! engine with real plugins, spoken to by a plain HTTP/1 client.

use hyper::body::Bytes;
use robohost::domain::Timestamp;
use robohost_tests::db::Db;
use robohost_tests::http::server;
use serde_json::{Value, json};

async fn a_deal_posted_through_the_api_is_assigned_by_its_robot(db: Db) {
    let s = server(db).await;
    s.assign_portal().await;
    let admin = s.admin.as_str();
    let robot = json!({"plugin": "assign_by_amount", "robot": "assign_by_amount", "title": "By amount",
        "properties": {"bounds": [{"decimal": "100000"}], "users": [{"user": 7}, {"user": 8}]}});
    let placed = s
        .json("POST", "/api/pipelines/general/stages/NEW/robots", admin, robot)
        .await
        .expect(201);
    let robot_id = placed["id"].as_u64().unwrap();
    let robots = s
        .get("/api/pipelines/general/stages/NEW/robots", admin)
        .await
        .expect(200);
    assert_eq!(robots[0]["id"], robot_id);
    assert_eq!(robots[0]["stage"], "NEW");

    let deal = s
        .json(
            "POST",
            "/api/entities",
            admin,
            json!({"kind": "deal", "pipeline": "general", "responsible": 1,
                "fields": {"TITLE": "Pumps", "OPPORTUNITY": {"money": "250000 RUB"}}}),
        )
        .await
        .expect(201);
    assert_eq!(deal["stage"], "NEW");
    let id = deal["id"].as_u64().unwrap();
    assert_eq!(s.engine.run_until_idle().await.unwrap(), 1);

    let stored = s.get(&format!("/api/entities/deal/{id}"), admin).await.expect(200);
    assert_eq!(stored["responsible"], 8);
    assert_eq!(stored["fields"]["OPPORTUNITY"], json!({"money": "250000 RUB"}));
    let listed = s.get("/api/entities/deal?limit=10", admin).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let after = s
        .get(&format!("/api/entities/deal?after={id}"), admin)
        .await
        .expect(200);
    assert_eq!(after, json!([]));

    let runs = s
        .get(&format!("/api/runs?entity=deal:{id}&limit=100"), admin)
        .await
        .expect(200);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["robot_id"], robot_id);
    assert_eq!(runs[0]["report"]["outcome"]["outcome"], "success");
    let run_id = runs[0]["id"].as_u64().unwrap();
    let run = s.get(&format!("/api/runs/{run_id}"), admin).await.expect(200);
    assert_eq!(run["id"], run_id);
    assert!(run["report"]["fuel_used"].as_u64().unwrap() > 0, "{run}");

    let timeline = s
        .get(&format!("/api/entities/deal/{id}/timeline"), admin)
        .await
        .expect(200);
    assert!(
        timeline["comments"][0]["text"]
            .as_str()
            .unwrap()
            .contains("band 2 of 2"),
        "{timeline}"
    );
    let events: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["created", "stage-entered", "responsible-changed"]);

    // A manager edits and moves it; an integrator's event moves it on.
    let manager = s.token("manager").await;
    let patched = s
        .json(
            "PATCH",
            &format!("/api/entities/deal/{id}"),
            &manager,
            json!({"fields": {"TITLE": "Big pumps"}, "responsible": 7}),
        )
        .await
        .expect(200);
    assert_eq!(patched["fields"]["TITLE"], "Big pumps");
    assert_eq!(patched["responsible"], 7);
    let moved = s
        .json(
            "POST",
            &format!("/api/entities/deal/{id}/move"),
            &manager,
            json!({"stage": "WORK"}),
        )
        .await
        .expect(200);
    assert_eq!(moved["stage"], "WORK");
    let trigger = s
        .json(
            "POST",
            "/api/pipelines/general/stages/WON/triggers",
            admin,
            json!({"code": "paid"}),
        )
        .await
        .expect(201);
    let triggers = s
        .get("/api/pipelines/general/stages/WON/triggers", &manager)
        .await
        .expect(200);
    assert_eq!(triggers[0]["id"], trigger["id"]);
    let integrator = s.token("integrator").await;
    let fired = s
        .json(
            "POST",
            "/api/events",
            &integrator,
            json!({"trigger": "paid", "lookup": {"kind": "deal", "code": "TITLE", "value": "Big pumps"},
                "data": {"SUM": {"money": "250000 RUB"}}}),
        )
        .await
        .expect(200);
    assert_eq!(fired["moved"][0]["id"], id);
    assert_eq!(fired["moved"][0]["stage"], "WON");
    let again = s
        .json(
            "POST",
            "/api/events",
            &integrator,
            json!({"trigger": "paid", "entity": format!("deal:{id}")}),
        )
        .await
        .expect(200);
    assert_eq!(again["moved"], json!([]), "already in WON");
    assert_eq!(
        again["fired"][0]["ignored"],
        json!({"why": "final-stage", "stage": "WON"})
    );
}

async fn the_portal_settings_round_trip(db: Db) {
    let s = server(db).await;
    let admin = s.admin.as_str();
    let department = json!({"name": "Sales", "head": 7});
    s.json("PUT", "/api/departments/2", admin, department).await.expect(200);
    s.json(
        "PUT",
        "/api/users/7",
        admin,
        json!({"id": 7, "name": "Olga", "department": 2}),
    )
    .await
    .expect(200);
    s.json(
        "PUT",
        "/api/users/8",
        admin,
        json!({"name": "Ivan", "department": 2, "active": false}),
    )
    .await
    .expect(200);
    let users = s.get("/api/users", admin).await.expect(200);
    assert_eq!(
        users[1],
        json!({"id": 8, "name": "Ivan", "department": 2, "active": false})
    );
    let departments = s.get("/api/departments", admin).await.expect(200);
    assert_eq!(departments[0]["head"], 7);

    let constants = s
        .json("PUT", "/api/constants/Clerk", admin, json!({"value": {"user": 7}}))
        .await
        .expect(200);
    assert_eq!(constants, json!({"Clerk": {"user": 7}}));
    assert_eq!(s.get("/api/constants", admin).await.expect(200), constants);

    let calendar = json!({"time_zone": "Europe/Moscow", "holidays": ["2026-11-30"]});
    s.json("PUT", "/api/calendar", admin, calendar).await.expect(200);
    let stored = s.get("/api/calendar", admin).await.expect(200);
    assert_eq!(stored["time_zone"], "Europe/Moscow");
    assert_eq!(stored["holidays"], json!(["2026-11-30"]));
    s.json("PUT", "/api/calendar", admin, json!({"time_zone": "Mars/Base"}))
        .await
        .error(400, "bad_json", None, "`Mars/Base` is not an IANA time zone");

    let plugins = s.get("/api/plugins", admin).await.expect(200);
    assert_eq!(plugins, json!([]));
    let live = s.send("GET", "/health/live", None, None, Bytes::new()).await;
    assert_eq!(live.expect(200), json!({"status": "ok"}));
}

/// Ready means the database answers with every migration and a worker
/// runs; live means the process answers.
async fn readiness_needs_the_database_and_a_worker(db: Db) {
    let s = server(db).await;
    let get = async |path: &str| s.send("GET", path, None, None, Bytes::new()).await;
    // The test server runs no worker of its own.
    for path in ["/health/ready", "/health"] {
        let answer = get(path).await.expect(503);
        assert_eq!(answer["status"], "unavailable");
        assert_eq!(answer["workers"], 0);
        assert!(answer["problem"].as_str().unwrap().contains("no worker"), "{answer}");
    }
    assert_eq!(get("/health/live").await.expect(200)["status"], "ok");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(s.engine.clone().run(shutdown.clone()));
    let mut ready = get("/health/ready").await;
    for _ in 0..100 {
        if ready.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ready = get("/health/ready").await;
    }
    assert_eq!(ready.expect(200), json!({"status": "ok", "workers": 1}));
    shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(get("/health/ready").await.status, 503);
}

#[tokio::test]
async fn readiness_needs_the_database_and_a_worker_on_sqlite() {
    readiness_needs_the_database_and_a_worker(Db::Sqlite).await;
}

#[tokio::test]
async fn readiness_needs_the_database_and_a_worker_on_postgres() {
    readiness_needs_the_database_and_a_worker(Db::Postgres).await;
}

/// `/metrics` counts what happened: runs by outcome, HTTP requests by
/// route, and reads the queue from the database.
#[tokio::test]
async fn metrics_count_runs_requests_and_the_queue() {
    let s = server(Db::Sqlite).await;
    let scrape = async || {
        let text = s.send("GET", "/metrics", None, None, Bytes::new()).await;
        assert_eq!(text.status, 200);
        assert!(text.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
        String::from_utf8(text.body.to_vec()).unwrap()
    };
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    };
    let before = scrape().await;
    s.assign_portal().await;
    let robot = json!({"plugin": "assign_by_amount", "robot": "assign_by_amount",
        "properties": {"bounds": [{"decimal": "100000"}], "users": [{"user": 7}, {"user": 8}]}});
    s.json("POST", "/api/pipelines/general/stages/NEW/robots", &s.admin, robot)
        .await
        .expect(201);
    s.deal("NEW", "150000.00").await;
    let queued = scrape().await;
    assert_eq!(value(&queued, "robohost_queue_depth "), 1.0, "{queued}");
    s.engine.run_until_idle().await.unwrap();
    let after = scrape().await;
    assert_eq!(value(&after, "robohost_queue_depth "), 0.0);
    let succeeded = r#"robohost_runs_total{status="succeeded",outcome="success",blame="none"} "#;
    assert!(value(&after, succeeded) >= value(&before, succeeded) + 1.0, "{after}");
    assert!(value(&after, "robohost_run_seconds_count ") >= value(&before, "robohost_run_seconds_count ") + 1.0);
    assert!(value(&after, "robohost_run_fuel_count ") >= 1.0);
    let created = r#"robohost_http_requests_total{method="POST",route="/api/entities",status="201"} "#;
    assert!(value(&after, created) >= value(&before, created) + 1.0, "{after}");
    assert!(after.contains("# TYPE robohost_compile_seconds histogram"), "{after}");
}

async fn every_route_checks_the_token_and_its_role(db: Db) {
    let s = server(db).await;
    let manager = s.token("manager").await;
    let integrator = s.token("integrator").await;

    let none = s.send("GET", "/api/pipelines", None, None, Bytes::new()).await;
    none.error(401, "unauthorized", None, "Authorization: Bearer");
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    s.get("/api/pipelines", "rh_0000")
        .await
        .error(401, "unauthorized", None, "not known");
    s.raw(
        "GET",
        "/api/runs",
        &[("authorization", "Basic cm9vdDpyb290")],
        Bytes::new(),
    )
    .await
    .error(401, "unauthorized", None, "must be `Bearer <token>`");
    // Auth comes before the body: a stranger learns nothing of its input.
    s.send("POST", "/api/entities", None, Some("text/plain"), "{")
        .await
        .error(401, "unauthorized", None, "Bearer");

    s.json("PUT", "/api/pipelines/general", &manager, json!({}))
        .await
        .error(
            403,
            "forbidden",
            None,
            "needs the role admin; this token has the role manager",
        );
    s.get("/api/entities/deal", &integrator).await.error(
        403,
        "forbidden",
        None,
        "needs the role admin or manager; this token has the role integrator",
    );
    s.get("/api/plugins", &manager)
        .await
        .error(403, "forbidden", None, "admin or integrator");
    s.json("POST", "/api/tokens", &manager, json!({"name": "me", "role": "admin"}))
        .await
        .error(403, "forbidden", None, "needs the role admin");

    for token in [&s.admin, &manager, &integrator] {
        s.get("/api/pipelines", token).await.expect(200);
        s.get("/api/runs", token).await.expect(200);
        s.get("/api/calendar", token).await.expect(200);
    }
    s.get("/api/entities/deal", &manager).await.expect(200);
    s.get("/api/plugins", &integrator).await.expect(200);
    s.json(
        "POST",
        "/api/entities",
        &manager,
        json!({"kind": "contact", "fields": {"PHONE": "+79123456789"}}),
    )
    .await
    .expect(201);
    s.json("POST", "/api/tokens", &s.admin, json!({"name": "x", "role": "owner"}))
        .await
        .error(400, "bad_json", Some("role"), "unknown variant `owner`");
    s.json("POST", "/api/tokens", &s.admin, json!({"name": " ", "role": "manager"}))
        .await
        .error(422, "invalid", Some("name"), "1 to 200 characters");
}

/// The value to put in a path segment when calling every route.
fn sample(segment: &str) -> &'static str {
    match segment {
        "{kind}" => "deal",
        "{id}" => "1",
        "{code}" => "general",
        "{stage}" => "NEW",
        "{name}" => "sample",
        "{token}" => "0123456789abcdef",
        "{n}" => "0",
        other => panic!("no sample for {other}"),
    }
}

/// A documented path with sample segments.
fn concrete_path(path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|seg| if seg.starts_with('{') { sample(seg) } else { seg })
        .collect();
    segments.join("/")
}

async fn the_openapi_document_lists_every_route_and_its_roles(db: Db) {
    let s = server(db).await;
    s.assign_portal().await;
    let doc = s
        .send("GET", "/openapi.json", None, None, Bytes::new())
        .await
        .expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "rh_<64 hex digits>"})
    );
    // Every reference resolves, and every operation says how it fails.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "{name} is referenced but not defined");
    }
    // A run is described down to each outcome and each reason it did not run.
    for path in ["/api/runs/{id}", "/api/runs"] {
        let body = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(
            body.to_string().contains("#/components/schemas/Run\""),
            "{path}: {body}"
        );
    }
    let report = &schemas["RunReport"]["properties"];
    for field in [
        "robot", "attempt", "reason", "outcome", "blame", "plugin", "version", "effects", "logs",
    ] {
        assert!(report.get(field).is_some(), "RunReport has no `{field}`: {report}");
    }
    let outcomes = schemas["Outcome"].to_string();
    for code in [
        "success",
        "robot-error",
        "configuration-error",
        "host-error",
        "external-error",
    ] {
        assert!(
            outcomes.contains(&format!("\"{code}\"")),
            "Outcome lacks `{code}`: {outcomes}"
        );
    }
    assert!(schemas["NotRun"].to_string().contains("\"left-stage\""));

    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert_eq!(
                operation["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
            operations.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    let listed: Vec<String> = operations.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    for route in [
        "GET /health",
        "GET /openapi.json",
        "POST /api/entities",
        "GET /api/entities/{kind}",
        "GET /api/entities/{kind}/{id}",
        "PATCH /api/entities/{kind}/{id}",
        "POST /api/entities/{kind}/{id}/move",
        "GET /api/entities/{kind}/{id}/timeline",
        "GET /api/pipelines",
        "PUT /api/pipelines/{code}",
        "GET /api/pipelines/{code}/stages/{stage}/robots",
        "POST /api/pipelines/{code}/stages/{stage}/robots",
        "GET /api/pipelines/{code}/stages/{stage}/triggers",
        "POST /api/pipelines/{code}/stages/{stage}/triggers",
        "GET /api/users",
        "PUT /api/users/{id}",
        "GET /api/departments",
        "PUT /api/departments/{id}",
        "GET /api/constants",
        "PUT /api/constants/{code}",
        "GET /api/calendar",
        "PUT /api/calendar",
        "GET /api/plugins",
        "PUT /api/plugins/{name}",
        "DELETE /api/plugins/{name}",
        "POST /api/events",
        "GET /api/runs",
        "GET /api/runs/{id}",
        "GET /api/outbox",
        "POST /api/packages",
        "GET /api/packages",
        "POST /api/packages/{name}/rollback",
        "DELETE /api/packages/{name}",
        "GET /api/trust",
        "PUT /api/trust",
        "GET /api/notifications",
        "POST /api/templates",
        "GET /api/templates",
        "GET /api/templates/export",
        "POST /api/tokens",
        "PUT /api/webhooks/{name}",
        "POST /api/endpoints",
        "GET /api/endpoints",
        "DELETE /api/endpoints/{id}",
        "POST /api/endpoints/{id}/secret",
        "GET /api/calls",
        "GET /api/calls/{id}",
        "GET /api/trigger-catalog",
        "POST /hooks/{id}",
        "GET /t/{token}/open.gif",
        "GET /t/{token}/link/{n}",
        "GET /api/tokens",
        "DELETE /api/tokens/{id}",
        "POST /api/runs/retry",
        "DELETE /api/pipelines/{code}",
        "DELETE /api/pipelines/{code}/stages/{stage}",
        "PUT /api/pipelines/{code}/stages/{stage}/robots/order",
        "PUT /api/pipelines/{code}/stages/{stage}/robots/{id}",
        "DELETE /api/pipelines/{code}/stages/{stage}/robots/{id}",
        "PUT /api/pipelines/{code}/stages/{stage}/triggers/{id}",
        "DELETE /api/pipelines/{code}/stages/{stage}/triggers/{id}",
        "PUT /api/users/{id}/away",
        "DELETE /api/users/{id}/away",
        "GET /api/fields",
        "GET /api/fields/misfits",
        "PUT /api/fields/{kind}/{code}",
        "DELETE /api/fields/{kind}/{code}",
        "POST /api/jobs/reassign",
        "GET /api/jobs",
        "GET /api/jobs/{id}",
        "GET /api/jobs/{id}/rows",
        "POST /api/jobs/{id}/start",
        "POST /api/jobs/{id}/cancel",
    ] {
        assert!(listed.contains(&route.to_owned()), "{route} is missing from {listed:?}");
    }
    assert_eq!(listed.len(), 76, "{listed:?}");

    // A path serves the methods the document lists, and no other.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = concrete_path(path);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if item.get(method.to_lowercase()).is_none() {
                s.send(method, &concrete, Some(&s.admin), Some("application/json"), "{}")
                    .await
                    .error(405, "method_not_allowed", None, method);
            }
        }
    }

    let tokens = [
        ("admin", s.admin.clone()),
        ("manager", s.token("manager").await),
        ("integrator", s.token("integrator").await),
    ];
    for (method, path, operation) in &operations {
        let concrete = concrete_path(path);
        let (content_type, body) = if path.starts_with("/api/plugins/") {
            ("application/wasm", Bytes::from_static(b"not a component"))
        } else {
            ("application/json", Bytes::from_static(b"{}"))
        };
        let roles: Vec<&str> = match operation["security"].as_array() {
            None => {
                let reply = s.send(method, &concrete, None, None, Bytes::new()).await;
                // An endpoint's id and an email's token are credentials:
                // no endpoint or email has the made-up ones.
                let public = if path.starts_with("/hooks/") || path.contains("/link/") {
                    404
                } else if path == "/health" || path == "/health/ready" {
                    // Answered without a token, and not ready: the test
                    // server runs no worker.
                    503
                } else {
                    200
                };
                assert_eq!(reply.status, public, "{method} {path} is public");
                continue;
            }
            Some(security) => security[0]["bearer"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect(),
        };
        let stranger = s.send(method, &concrete, None, Some(content_type), body.clone()).await;
        assert_eq!(stranger.status, 401, "{method} {path} without a token");
        for (role, token) in &tokens {
            let reply = s
                .send(method, &concrete, Some(token), Some(content_type), body.clone())
                .await;
            let allowed = roles.contains(role);
            assert!(reply.status < 500, "{method} {path} as {role}: {reply:?}");
            if reply.status >= 400 {
                let message = reply.json()["error"]["message"].to_string();
                assert!(
                    !message.contains("no route") && reply.status != 405,
                    "{method} {path} is not served: {message}"
                );
            }
            assert_eq!(
                reply.status == 403,
                !allowed,
                "{method} {path} as {role}, which the document {}: {}",
                if allowed { "admits" } else { "refuses" },
                String::from_utf8_lossy(&reply.body)
            );
        }
    }
}

async fn bad_input_gets_a_4xx_that_names_the_problem(db: Db) {
    let s = server(db).await;
    s.assign_portal().await;
    let admin = s.admin.as_str();
    let deal = s
        .json(
            "POST",
            "/api/entities",
            admin,
            json!({"kind": "deal", "pipeline": "general"}),
        )
        .await
        .expect(201);
    let id = deal["id"].as_u64().unwrap();

    // Bodies.
    s.json("POST", "/api/entities", admin, json!({"kind": "deal", "colour": "red"}))
        .await
        .error(400, "bad_json", Some("colour"), "unknown field `colour`");
    s.json(
        "POST",
        "/api/entities",
        admin,
        json!({"kind": "deal", "responsible": "x"}),
    )
    .await
    .error(
        400,
        "bad_json",
        Some("responsible"),
        "`responsible`: invalid type: string \"x\", expected u64",
    );
    s.json(
        "POST",
        "/api/entities",
        admin,
        json!({"kind": "deal", "fields": {"AMOUNT": 1.5}}),
    )
    .await
    .error(400, "bad_json", Some("fields.AMOUNT"), "1.5 is not a whole number");
    s.json("POST", "/api/entities", admin, json!({"kind": "dael"}))
        .await
        .error(400, "bad_json", Some("kind"), "unknown variant `dael`");
    s.json("POST", "/api/entities", admin, json!({"pipeline": "general"}))
        .await
        .error(422, "invalid", Some("kind"), "`kind`: is required");
    s.send(
        "POST",
        "/api/entities",
        Some(admin),
        Some("application/json"),
        "{\"kind\": ",
    )
    .await
    .error(400, "bad_json", None, "EOF while parsing");
    s.send("POST", "/api/entities", Some(admin), Some("application/json"), "{} {}")
        .await
        .error(400, "bad_json", None, "trailing characters");
    s.send("POST", "/api/entities", Some(admin), None, "{}").await.error(
        415,
        "unsupported_media_type",
        None,
        "application/json",
    );
    s.send("POST", "/api/entities", Some(admin), Some("text/plain"), "{}")
        .await
        .error(415, "unsupported_media_type", None, "not text/plain");
    s.json("PUT", "/api/users/5", admin, json!({"name": "a\u{0}b"}))
        .await
        .error(400, "bad_json", Some("name"), "NUL character");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    s.send("PUT", "/api/calendar", Some(admin), Some("application/json"), deep)
        .await
        .error(400, "bad_json", None, "recursion limit exceeded");

    // Oversize: a 2 MiB body against the 1 MiB limit.
    let big = json!({"kind": "deal", "fields": {"NOTE": "x".repeat(2 * 1024 * 1024)}});
    s.json("POST", "/api/entities", admin, big)
        .await
        .error(413, "too_large", None, "limit of 1 MiB");

    // Unknown pipeline, stage, entity, trigger.
    s.json(
        "POST",
        "/api/entities",
        admin,
        json!({"kind": "deal", "pipeline": "nope"}),
    )
    .await
    .error(422, "invalid", Some("pipeline"), "no pipeline `nope`");
    s.json(
        "POST",
        &format!("/api/entities/deal/{id}/move"),
        admin,
        json!({"stage": "NOPE"}),
    )
    .await
    .error(422, "invalid", Some("stage"), "pipeline `general` has no stage `NOPE`");
    s.json("POST", "/api/entities/deal/999/move", admin, json!({"stage": "WORK"}))
        .await
        .error(404, "not_found", None, "deal:999 does not exist");
    s.json(
        "POST",
        &format!("/api/entities/deal/{id}/move"),
        admin,
        json!({"stage": 3}),
    )
    .await
    .error(400, "bad_json", Some("stage"), "expected a string");
    s.get("/api/pipelines/nope/stages/NEW/robots", admin).await.error(
        404,
        "not_found",
        Some("code"),
        "pipeline `nope` does not exist",
    );
    s.json(
        "POST",
        "/api/pipelines/general/stages/GONE/triggers",
        admin,
        json!({"code": "x"}),
    )
    .await
    .error(404, "not_found", Some("stage"), "stage `GONE` of pipeline `general`");
    // A code no stage uses moves nothing, and the deal's timeline says so.
    let nothing = s
        .json(
            "POST",
            "/api/events",
            admin,
            json!({"trigger": "incoming_call", "entity": format!("deal:{id}")}),
        )
        .await
        .expect(200);
    let ignored = json!({"entity": format!("deal:{id}"), "ignored": {"why": "no-trigger"}});
    assert_eq!(nothing, json!({"moved": [], "fired": [ignored]}));
    let timeline = s
        .get(&format!("/api/entities/deal/{id}/timeline"), admin)
        .await
        .expect(200);
    assert!(
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "trigger-ignored"),
        "{timeline}"
    );
    s.json(
        "POST",
        "/api/events",
        admin,
        json!({"trigger": "x", "entity": "deal:999"}),
    )
    .await
    .error(404, "not_found", Some("entity"), "deal:999");
    s.json("POST", "/api/events", admin, json!({"trigger": "x", "entity": "deal"}))
        .await
        .error(400, "bad_json", Some("entity"), "`deal` is not an entity reference");
    s.json("POST", "/api/events", admin, json!({"trigger": "x"}))
        .await
        .error(422, "invalid", Some("entity"), "give either `entity`");
    s.get("/api/runs/77", admin)
        .await
        .error(404, "not_found", Some("id"), "run 77 does not exist");

    // Robots and pipelines whose body contradicts or repeats the path.
    let robot = json!({"id": 5, "plugin": "assign_by_amount", "robot": "assign_by_amount"});
    s.json("POST", "/api/pipelines/general/stages/NEW/robots", admin, robot)
        .await
        .error(400, "bad_json", Some("id"), "come from the path");
    let robot = json!({"plugin": "assign_by_amount", "robot": "assign_by_amount", "properties": {"colour": 1}});
    s.json("POST", "/api/pipelines/general/stages/NEW/robots", admin, robot)
        .await
        .error(422, "invalid", Some("properties.colour"), "has no property `colour`");
    let robot = json!({"plugin": "nope", "robot": "x"});
    s.json("POST", "/api/pipelines/general/stages/NEW/robots", admin, robot)
        .await
        .error(422, "invalid", Some("plugin"), "no plugin `nope` is installed");
    let other = json!({"code": "other", "kind": "deal", "names": {}, "stages": [{"code": "A", "names": {}, "semantic": "success"}]});
    s.json("PUT", "/api/pipelines/general", admin, other).await.error(
        422,
        "invalid",
        Some("code"),
        "the path says \"general\"",
    );
    // Codes that become database keys, and delays, have bounds.
    let long = "c".repeat(201);
    s.json("PUT", &format!("/api/constants/{long}"), admin, json!({"value": 1}))
        .await
        .error(400, "bad_path", Some("code"), "longer than 200 characters");
    s.json(
        "POST",
        "/api/pipelines/general/stages/WON/triggers",
        admin,
        json!({"code": long}),
    )
    .await
    .error(422, "invalid", Some("code"), "at most 200 characters");
    let stages = json!({"kind": "deal", "names": {}, "stages": [{"code": long, "names": {}, "semantic": "success"}]});
    s.json("PUT", "/api/pipelines/long", admin, stages).await.error(
        422,
        "invalid",
        Some("stages[0].code"),
        "at most 200 characters",
    );
    let robot = json!({"plugin": "assign_by_amount", "robot": "assign_by_amount",
        "properties": {"bounds": [], "users": [{"user": 7}]}, "timing": {"delay_seconds": 100_000_000_000_000_000u64}});
    s.json("POST", "/api/pipelines/general/stages/NEW/robots", admin, robot)
        .await
        .error(422, "invalid", Some("timing.delay_seconds"), "ten years");
    let empty = json!({"kind": "deal", "names": {}, "stages": []});
    s.json("PUT", "/api/pipelines/empty", admin, empty).await.error(
        422,
        "invalid",
        Some("stages"),
        "at least one stage",
    );

    // Paths and queries.
    s.get("/api/entities/dael/1", admin).await.error(
        400,
        "bad_path",
        Some("kind"),
        "`dael` is not an entity kind; use lead, deal",
    );
    s.get("/api/entities/deal/x1", admin)
        .await
        .error(400, "bad_path", Some("id"), "`id` must be a whole number");
    s.get("/api/entities/deal/%00", admin)
        .await
        .error(400, "bad_path", Some("id"), "NUL");
    s.get("/api/runs?limit=0", admin)
        .await
        .error(400, "bad_query", Some("limit"), "from 1 to 1000, not `0`");
    s.get("/api/runs?entity=deal", admin)
        .await
        .error(400, "bad_query", Some("entity"), "not an entity reference");
    s.get("/api/runs?colour=red", admin)
        .await
        .error(400, "bad_query", Some("colour"), "takes entity, status, robot");
    s.get("/api/runs?limit=1&limit=2", admin)
        .await
        .error(400, "bad_query", Some("limit"), "more than once");
    s.get("/api/entities/deal?after=-1", admin)
        .await
        .error(400, "bad_query", Some("after"), "whole number");
    s.get("/api/nowhere", admin)
        .await
        .error(404, "not_found", None, "no route GET /api/nowhere");
    s.send("DELETE", "/api/pipelines", Some(admin), None, Bytes::new())
        .await
        .error(405, "method_not_allowed", None, "DELETE");

    // Plugins.
    s.send(
        "PUT",
        "/api/plugins/junk",
        Some(admin),
        Some("application/wasm"),
        "not wasm at all",
    )
    .await
    .error(422, "bad_plugin", None, "not a WebAssembly component");
    s.send("PUT", "/api/plugins/junk", Some(admin), Some("application/json"), "{}")
        .await
        .error(415, "unsupported_media_type", None, "application/wasm");
    s.send(
        "PUT",
        "/api/plugins/junk?grant=crm-read,fly",
        Some(admin),
        Some("application/wasm"),
        "x",
    )
    .await
    .error(400, "bad_query", Some("grant"), "`fly` is not a capability");
    s.send(
        "PUT",
        "/api/plugins/bad%20name",
        Some(admin),
        Some("application/wasm"),
        "x",
    )
    .await
    .error(422, "invalid", Some("name"), "letters, digits");
    // The upload limit is its own: 2 MiB passes it and fails as a component.
    let bytes = vec![0u8; 2 * 1024 * 1024];
    s.send(
        "PUT",
        "/api/plugins/big",
        Some(admin),
        Some("application/octet-stream"),
        bytes,
    )
    .await
    .error(422, "bad_plugin", None, "not a WebAssembly component");
}

async fn a_webhook_plugin_installs_over_http(db: Db) {
    let s = robohost_tests::http::server(db).await;
    let url = robohost_tests::echo_webhook().await;
    let body = json!({"url": url, "grants": ["set-fields"]});
    let installed = s
        .json("PUT", "/api/webhooks/echo_hook", &s.admin, body)
        .await
        .expect(200);
    assert_eq!(installed["webhook"], json!(url));
    assert_eq!(
        installed["grants"],
        json!(["set-fields", "read:*", "write:*", "field:*"])
    );
    let listed = s.get("/api/plugins", &s.admin).await.expect(200);
    assert_eq!(listed[0]["name"], "echo_hook");
    assert_eq!(listed[0]["webhook"], json!(url));

    s.json("PUT", "/api/webhooks/bad_hook", &s.admin, json!({"url": "ftp://x"}))
        .await
        .error(422, "invalid", Some("url"), "`ftp://x` is not an http:// URL");
    s.json(
        "PUT",
        "/api/webhooks/bad_hook",
        &s.admin,
        json!({"url": url, "grants": ["fly"]}),
    )
    .await
    .error(400, "bad_json", Some("grants[0]"), "unknown variant `fly`");
    let manager = s.token("manager").await;
    assert_eq!(
        s.json("PUT", "/api/webhooks/echo_hook", &manager, json!({"url": url}))
            .await
            .status,
        403
    );
}

/// Custom fields are declared per kind, and every write of one is checked
/// against its declaration, naming the field and what it expected: through
/// the API, a robot's effect (that run fails, blamed on the robot, and
/// nothing changes) and a template. Values that no longer fit a changed
/// declaration stay, and are reported.
async fn custom_fields_are_declared_and_every_write_is_checked(db: Db) {
    let s = server(db).await;
    s.engine.install_standard().await.unwrap();
    s.general_pipeline().await;
    let declare = async |kind: &str, code: &str, body: Value| {
        s.json("PUT", &format!("/api/fields/{kind}/{code}"), &s.admin, body)
            .await
    };
    declare("deal", "UF_COUNT", json!({"type": "integer", "names": {"en": "Count"}}))
        .await
        .expect(200);
    let segment = json!({"type": "option", "required": true, "options": [{"code": "vip", "names": {}}, {"code": "regular", "names": {}}]});
    declare("deal", "UF_SEGMENT", segment).await.expect(200);
    declare("deal", "SEGMENT", json!({"type": "text"}))
        .await
        .error(422, "invalid", Some("SEGMENT"), "`UF_`");
    declare("deal", "UF_KIND", json!({"type": "option"})).await.error(
        422,
        "invalid",
        Some("UF_KIND"),
        "lists its options",
    );
    let listed = s.get("/api/fields", &s.admin).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    let create = async |fields: Value| {
        s.json(
            "POST",
            "/api/entities",
            &s.admin,
            json!({"kind": "deal", "pipeline": "general", "fields": fields}),
        )
        .await
    };
    create(json!({"UF_SEGMENT": "vip", "UF_NOPE": 1})).await.error(
        422,
        "invalid",
        Some("UF_NOPE"),
        "is not a declared deal field",
    );
    create(json!({"UF_SEGMENT": "vip", "UF_COUNT": "many"})).await.error(
        422,
        "invalid",
        Some("UF_COUNT"),
        "expected integer: `many` is not a whole number",
    );
    create(json!({"UF_SEGMENT": {"option": "gold"}})).await.error(
        422,
        "invalid",
        Some("UF_SEGMENT"),
        "`gold` is not one of its options: vip, regular",
    );
    create(json!({"UF_COUNT": 1}))
        .await
        .error(422, "invalid", Some("UF_SEGMENT"), "is required for every deal");
    let deals = s.get("/api/entities/deal", &s.admin).await.expect(200);
    assert_eq!(deals, json!([]), "nothing refused was stored");

    // Text is read as the field's type, as a form or a file gives it.
    let deal = create(json!({"TITLE": "Pumps", "UF_COUNT": "12", "UF_SEGMENT": "vip"}))
        .await
        .expect(201);
    assert_eq!(
        deal["custom_fields"],
        json!({"UF_COUNT": 12, "UF_SEGMENT": {"option": "vip"}})
    );
    let path = format!("/api/entities/deal/{}", deal["id"]);
    s.json("PATCH", &path, &s.admin, json!({"custom_fields": {"UF_COUNT": true}}))
        .await
        .error(422, "invalid", Some("UF_COUNT"), "expected integer, got `true`");
    s.json("PATCH", &path, &s.admin, json!({"fields": {"UF_SEGMENT": null}}))
        .await
        .error(422, "invalid", Some("UF_SEGMENT"), "is required and cannot be emptied");

    // A robot that writes what does not fit fails its own run.
    let robot = json!({"plugin": "standard", "robot": "modify_fields", "title": "Count",
        "properties": {"fields": ["UF_COUNT"], "values": ["many"]}});
    s.json("POST", "/api/pipelines/general/stages/WORK/robots", &s.admin, robot)
        .await
        .expect(201);
    s.json("POST", &format!("{path}/move"), &s.admin, json!({"stage": "WORK"}))
        .await
        .expect(200);
    s.engine.run_until_idle().await.unwrap();
    let reference = robohost::domain::EntityRef {
        kind: robohost::domain::EntityKind::Deal,
        id: deal["id"].as_u64().unwrap(),
    };
    let runs = s.runs(reference).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "dead", "{runs:?}");
    let run = s
        .get(&format!("/api/runs/{}", runs[0]["id"]), &s.admin)
        .await
        .expect(200);
    assert_eq!(run["report"]["blame"], "guest", "{run}");
    let message = run["report"]["outcome"]["message"].as_str().unwrap();
    assert!(
        message.contains("field `UF_COUNT`: expected integer: `many` is not a whole number"),
        "{message}"
    );
    assert_eq!(
        s.get(&path, &s.admin).await.expect(200)["custom_fields"]["UF_COUNT"],
        12
    );

    // A template whose robots or conditions do not fit the fields is refused whole.
    let template = r#"format = 1
code = "counts"
version = "1.0.0"
packages = ["standard"]

[[fields]]
kind = "deal"
code = "UF_SEGMENT"
type = "text"

[[robots]]
pipeline = "general"
stage = "NEW"
plugin = "standard"
robot = "modify_fields"
properties = { fields = ["UF_UNKNOWN"], values = [1] }
condition = { compare = { field = "UF_COUNT", op = "eq", value = "four" } }
"#;
    let refused = s
        .raw(
            "POST",
            "/api/templates",
            &[
                ("authorization", &format!("Bearer {}", s.admin)),
                ("content-type", "application/toml"),
            ],
            template.into(),
        )
        .await
        .expect(422);
    let problems = refused.to_string();
    for says in [
        "custom field `UF_SEGMENT` of deal is declared in the portal as option; the template declares text",
        "property `fields` uses field `UF_UNKNOWN`, which is not a declared deal field",
        "the condition compares field `UF_COUNT` with `four`: expected integer: `four` is not a whole number",
    ] {
        assert!(problems.contains(says), "{says} is not among {problems}");
    }
    assert_eq!(
        s.get("/api/fields", &s.admin).await.expect(200),
        listed,
        "nothing of it was declared"
    );

    // A changed declaration keeps the values, and reports those that no longer fit.
    let changed = declare("deal", "UF_COUNT", json!({"type": "date"})).await.expect(200);
    assert_eq!(changed["misfits"]["count"], 1, "{changed}");
    assert_eq!(
        changed["misfits"]["examples"][0],
        json!({"entity": reference.to_string(), "field": "UF_COUNT", "problem": "expected date, got `12`"})
    );
    let all = s.get("/api/fields/misfits", &s.admin).await.expect(200);
    assert_eq!(all["count"], 1, "{all}");
    assert_eq!(
        s.get(&path, &s.admin).await.expect(200)["custom_fields"]["UF_COUNT"],
        12
    );
}

/// A reassignment file of 10,000 lines is planned whole in one request,
/// each line kept with why it cannot apply (no such entity here).
async fn a_large_reassignment_file_is_planned_whole(db: Db) {
    let s = server(db).await;
    s.json("PUT", "/api/users/7", &s.admin, json!({"id": 7, "name": "Olga"}))
        .await
        .expect(200);
    let file: String = (1..=10_000).map(|id| format!("company:{id},7\n")).collect();
    let headers = [
        ("authorization", format!("Bearer {}", s.admin)),
        ("content-type", "text/csv".to_owned()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let job = s
        .raw("POST", "/api/jobs/reassign", &headers, file.into())
        .await
        .expect(201);
    assert_eq!(job["progress"]["total"], 10_000, "{job}");
    assert_eq!(job["plan"]["unusable"], 10_000, "{job}");
    let last = s
        .get(&format!("/api/jobs/{}/rows?after=9999", job["id"]), &s.admin)
        .await
        .expect(200);
    assert_eq!(
        last,
        json!([{"line": 10_000, "entity": {"kind": "company", "id": 10_000}, "user": 7, "status": "failed",
        "error": "company:10000 does not exist", "deals": 0, "activities": 0, "tasks": 0}])
    );
}

robohost_tests::on_both!(
    a_large_reassignment_file_is_planned_whole,
    custom_fields_are_declared_and_every_write_is_checked,
    a_webhook_plugin_installs_over_http,
    a_deal_posted_through_the_api_is_assigned_by_its_robot,
    the_portal_settings_round_trip,
    every_route_checks_the_token_and_its_role,
    the_openapi_document_lists_every_route_and_its_roles,
    bad_input_gets_a_4xx_that_names_the_problem,
);

/// A token may expire, and may act for a CRM user: the changes made with
/// it record that author on the entity's timeline.
#[tokio::test]
async fn tokens_expire_and_changes_record_their_author() {
    let s = server(Db::Sqlite).await;
    s.general_pipeline().await;
    let olga = json!({"id": 7, "name": "Olga"});
    s.json("PUT", "/api/users/7", &s.admin, olga).await.expect(200);

    let bad_user = json!({"name": "crm", "role": "manager", "user": 99});
    s.json("POST", "/api/tokens", &s.admin, bad_user)
        .await
        .error(422, "invalid", Some("user"), "no user 99");
    let passed = json!({"name": "crm", "role": "manager", "expires_at": "2020-01-01T00:00:00Z"});
    s.json("POST", "/api/tokens", &s.admin, passed)
        .await
        .error(422, "invalid", Some("expires_at"), "has passed");

    // The clock stands at Wednesday; this token works until Thursday.
    let thursday = Timestamp(robohost_tests::fixtures::wednesday().0 + 86_400_000);
    let made = json!({"name": "olga's crm", "role": "manager", "user": 7, "expires_at": thursday.to_string()});
    let made = s.json("POST", "/api/tokens", &s.admin, made).await.expect(201);
    let token = made["token"].as_str().unwrap();
    let listed = s.get("/api/tokens", &s.admin).await.expect(200);
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == made["id"])
        .unwrap();
    assert_eq!(listed["user"], 7);
    assert_eq!(listed["expires_at"], thursday.to_string());

    let deal = json!({"kind": "deal", "pipeline": "general", "fields": {"TITLE": "Pumps"}});
    let deal = s.json("POST", "/api/entities", token, deal).await.expect(201);
    let path = format!("/api/entities/deal/{}", deal["id"]);
    s.json("PATCH", &path, token, json!({"fields": {"TITLE": "Gears"}}))
        .await
        .expect(200);
    s.json("POST", &format!("{path}/move"), &s.admin, json!({"stage": "WORK"}))
        .await
        .expect(200);
    let timeline = s.get(&format!("{path}/timeline"), &s.admin).await.expect(200);
    let by = |event: &str| -> Vec<Value> {
        let events = timeline["events"].as_array().unwrap();
        events
            .iter()
            .filter(|e| e["event"] == event)
            .map(|e| e["data"]["by"].clone())
            .collect()
    };
    let olgas = json!({"token": "olga's crm", "user": 7});
    assert_eq!(by("created"), std::slice::from_ref(&olgas));
    assert_eq!(by("updated"), std::slice::from_ref(&olgas));
    // Entered NEW with Olga's creation, WORK with the admin's move.
    assert_eq!(by("stage-entered"), [olgas, json!({"token": "root"})]);

    // Past its expiry, it is refused.
    s.clock.advance(chrono::Duration::days(1));
    s.get("/api/pipelines", token)
        .await
        .error(401, "unauthorized", None, "expired");
    s.get("/api/pipelines", &s.admin).await.expect(200);
}
