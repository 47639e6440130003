//! The API fuzz pass: hundreds of random and mutated requests over every
//! route, with random tokens, content types, paths and queries, against a
//! real server on SQLite and on PostgreSQL. None may get a 5xx, and every
//! refusal has the API's error shape. `ROBOHOST_API_FUZZ_SEED` explores
//! other requests than the fixed seed's.

use hyper::body::Bytes;
use robohost_tests::db::Db;
use robohost_tests::http::server;
use serde_json::{Value, json};

/// xorshift64*: a fixed seed gives the same requests on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Field names the API knows, so random bodies sometimes get past the
/// unknown-field check and reach deeper code.
const NAMES: &[&str] = &[
    "kind",
    "pipeline",
    "stage",
    "responsible",
    "fields",
    "custom_fields",
    "links",
    "trigger",
    "entity",
    "lookup",
    "data",
    "value",
    "name",
    "role",
    "code",
    "names",
    "stages",
    "semantic",
    "plugin",
    "robot",
    "title",
    "properties",
    "recipient",
    "timing",
    "condition",
    "time_zone",
    "weekend",
    "holidays",
    "work_start",
    "work_end",
    "department",
    "active",
    "head",
    "parent",
    "allow_backwards",
    "TITLE",
    "OPPORTUNITY",
    "PHONE",
    "id",
    "delay_seconds",
    "all",
    "compare",
];

/// Values that mean something somewhere.
const WORDS: &[&str] = &[
    "deal",
    "contact",
    "lead",
    "general",
    "NEW",
    "WORK",
    "WON",
    "in-progress",
    "success",
    "deal:1",
    "deal:2",
    "contact:1",
    "incoming_call",
    "admin",
    "manager",
    "Europe/Moscow",
    "2026-11-30",
    "09:00:00",
    "Sat",
    "assign_by_amount",
    "responsible",
    "",
    "\u{0}",
    "ü",
    "%",
    "{=Document.TITLE}",
    "x",
];

fn random_json(rng: &mut Rng, depth: u32) -> Value {
    let leaf = depth >= 4 || rng.chance(40);
    if leaf {
        return match rng.below(10) {
            0 => Value::Null,
            9 => json!(random_text(rng, 3000)),
            1 => json!(rng.chance(50)),
            2 => json!(rng.next() as i64 >> rng.below(64)),
            3 => json!(rng.below(10)),
            4 => json!((rng.next() % 10_000) as f64 / 7.0),
            5 => json!({"money": "100.50 RUB"}),
            6 => json!({"user": rng.below(10)}),
            _ => json!(*rng.pick(WORDS)),
        };
    }
    if rng.chance(35) {
        let n = rng.below(4);
        Value::Array((0..n).map(|_| random_json(rng, depth + 1)).collect())
    } else {
        let n = rng.below(5);
        let mut map = serde_json::Map::new();
        for _ in 0..n {
            let key = if rng.chance(80) {
                rng.pick(NAMES).to_owned()
            } else {
                format!("k{}", rng.below(100))
            };
            map.insert(key, random_json(rng, depth + 1));
        }
        Value::Object(map)
    }
}

/// Up to `max` random letters and digits: long enough to pass a key-size
/// limit, and not compressible below it.
fn random_text(rng: &mut Rng, max: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let len = rng.below(max) + 1;
    (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())] as char).collect()
}

/// A path segment: usually meaningful, sometimes hostile.
fn random_segment(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=4 => rng
            .pick(&[
                "deal",
                "1",
                "2",
                "general",
                "NEW",
                "WORK",
                "Clerk",
                "assign_by_amount",
                "lead",
            ])
            .to_owned(),
        5 => rng
            .pick(&[
                "%00",
                "%FF",
                "%2F",
                "%C3%BC",
                "..",
                "%25",
                "-1",
                "18446744073709551616",
                "a%20b",
            ])
            .to_owned(),
        6 => "9".repeat(rng.below(40) + 1),
        7 => random_text(rng, 260),
        _ => format!("{}", rng.next()),
    }
}

/// Every route: its path with `{}` for each segment, the methods it takes,
/// and a valid body to mutate.
fn routes() -> Vec<(&'static str, &'static [&'static str], Value)> {
    let none = Value::Null;
    vec![
        ("/health", &["GET"], none.clone()),
        ("/health/live", &["GET"], none.clone()),
        ("/health/ready", &["GET"], none.clone()),
        ("/metrics", &["GET"], none.clone()),
        ("/openapi.json", &["GET"], none.clone()),
        (
            "/api/entities",
            &["POST"],
            json!({"kind": "deal", "pipeline": "general", "stage": "NEW", "responsible": 1,
                "fields": {"TITLE": "Pumps", "OPPORTUNITY": {"money": "250000 RUB"}},
                "custom_fields": {"UF_X": [1, 2]}, "links": [{"kind": "contact", "id": 1}]}),
        ),
        ("/api/entities/{}", &["GET"], none.clone()),
        (
            "/api/entities/{}/{}",
            &["GET", "PATCH"],
            json!({"fields": {"TITLE": "y", "OLD": null}, "custom_fields": {"UF_D": {"date": "2026-11-30"}}, "responsible": 2}),
        ),
        (
            "/api/entities/{}/{}/move",
            &["POST"],
            json!({"pipeline": "general", "stage": "WORK"}),
        ),
        ("/api/entities/{}/{}/timeline", &["GET"], none.clone()),
        ("/api/pipelines", &["GET"], none.clone()),
        (
            "/api/pipelines/{}",
            &["PUT"],
            json!({"kind": "deal", "names": {"en": "Other"}, "stages": [
                {"code": "A", "names": {"en": "A"}, "semantic": "in-progress"},
                {"code": "B", "names": {}, "semantic": "failure"}]}),
        ),
        (
            "/api/pipelines/{}/stages/{}/robots",
            &["GET", "POST"],
            json!({"plugin": "assign_by_amount", "robot": "assign_by_amount", "title": "t",
                "properties": {"bounds": [{"decimal": "100000"}], "users": [{"user": 7}, {"user": 8}]},
                "recipient": "responsible", "timing": {"delay_seconds": 60, "working_time": true},
                "condition": {"compare": {"field": "OPPORTUNITY", "op": "gt", "value": {"money": "1 RUB"}}}}),
        ),
        (
            "/api/pipelines/{}/stages/{}/triggers",
            &["GET", "POST"],
            json!({"code": "incoming_call", "allow_backwards": true, "schedule": "0 0 9 * * Mon-Fri",
                "condition": {"all": [{"compare": {"field": "TITLE", "op": "not-empty", "value": null}}]}}),
        ),
        ("/api/users", &["GET"], none.clone()),
        (
            "/api/users/{}",
            &["PUT"],
            json!({"name": "Olga", "department": 2, "active": true}),
        ),
        ("/api/departments", &["GET"], none.clone()),
        (
            "/api/departments/{}",
            &["PUT"],
            json!({"name": "Sales", "head": 7, "parent": 1}),
        ),
        ("/api/constants", &["GET"], none.clone()),
        ("/api/constants/{}", &["PUT"], json!({"value": {"user": 7}})),
        (
            "/api/calendar",
            &["GET", "PUT"],
            json!({"time_zone": "Europe/Moscow", "work_start": "09:00:00", "work_end": "18:00:00",
                "weekend": ["Sat", "Sun"], "holidays": ["2026-11-30"]}),
        ),
        ("/api/plugins", &["GET"], none.clone()),
        ("/api/plugins/{}", &["PUT"], none.clone()),
        (
            "/api/events",
            &["POST"],
            json!({"trigger": "incoming_call", "lookup": {"kind": "deal", "code": "TITLE", "value": "Pumps"},
                "data": {"DURATION": 125}}),
        ),
        ("/api/runs", &["GET"], none.clone()),
        ("/api/runs/{}", &["GET"], none.clone()),
        ("/api/tokens", &["POST"], json!({"name": "n", "role": "manager"})),
        ("/api/{}", &["GET"], none.clone()),
        ("/{}", &["GET"], none),
    ]
}

/// A small change to a valid body: one value replaced, a key dropped, or
/// a key added, somewhere in it.
fn mutate(rng: &mut Rng, value: &mut Value) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.chance(75) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            match rng.below(4) {
                0 => {
                    map.remove(key);
                }
                1 => {
                    map.insert(rng.pick(NAMES).to_owned(), random_json(rng, 2));
                }
                _ => mutate(rng, map.get_mut(key).expect("a key of the map")),
            }
        }
        Value::Array(items) if !items.is_empty() && rng.chance(75) => {
            let i = rng.below(items.len());
            mutate(rng, &mut items[i]);
        }
        other => *other = random_json(rng, 2),
    }
}

fn random_query(rng: &mut Rng) -> String {
    if rng.chance(60) {
        return String::new();
    }
    let n = rng.below(3) + 1;
    let pairs: Vec<String> = (0..n)
        .map(|_| {
            let name = rng.pick(&["after", "limit", "entity", "grant", "colour", "", "%00"]);
            let value = rng.pick(&[
                "1",
                "0",
                "100",
                "1001",
                "-5",
                "deal:1",
                "deal",
                "crm-read,set-fields",
                "fly",
                "",
                "%FF",
                "18446744073709551616",
            ]);
            format!("{name}={value}")
        })
        .collect();
    format!("?{}", pairs.join("&"))
}

async fn random_requests_over_every_route_never_get_a_5xx(db: Db) {
    let s = server(db).await;
    // A worker, as a serving host has: without one the host is rightly not
    // ready, and `/health` would answer 503.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(s.engine.clone().run(shutdown));
    while s.engine.workers() == 0 {
        tokio::task::yield_now().await;
    }
    s.assign_portal().await;
    let robot = json!({"plugin": "assign_by_amount", "robot": "assign_by_amount",
        "properties": {"bounds": [{"decimal": "100000"}], "users": [{"user": 7}, {"user": 8}]}});
    s.json("POST", "/api/pipelines/general/stages/NEW/robots", &s.admin, robot)
        .await
        .expect(201);
    s.json(
        "POST",
        "/api/pipelines/general/stages/WORK/triggers",
        &s.admin,
        json!({"code": "incoming_call"}),
    )
    .await
    .expect(201);
    s.json(
        "POST",
        "/api/entities",
        &s.admin,
        json!({"kind": "deal", "pipeline": "general"}),
    )
    .await
    .expect(201);
    let manager = s.token("manager").await;
    let integrator = s.token("integrator").await;

    let started = std::time::Instant::now();
    // A fixed seed by default; another seed explores further (a failure
    // names the request, and the seed reproduces it).
    let seed = std::env::var("ROBOHOST_API_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_FA11_u64);
    let mut rng = Rng(seed | 1);
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    let routes = routes();
    for i in 0..600 {
        let (template, methods, sample) = &routes[rng.below(routes.len())];
        let mut path = String::new();
        for (j, part) in template.split("{}").enumerate() {
            if j > 0 {
                path.push_str(&random_segment(&mut rng));
            }
            path.push_str(part);
        }
        path.push_str(&random_query(&mut rng));
        let method = if rng.chance(85) {
            rng.pick(methods)
        } else {
            rng.pick(&["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        };
        let token = match rng.below(10) {
            0 => None,
            1 => Some("rh_nope"),
            2 => Some(manager.as_str()),
            3 => Some(integrator.as_str()),
            _ => Some(s.admin.as_str()),
        };
        let content_type = match rng.below(10) {
            0 => None,
            1 => Some("text/plain"),
            2 => Some("application/wasm"),
            _ => Some("application/json"),
        };
        let body = match rng.below(10) {
            0 => Bytes::new(),
            1 => {
                let text = random_json(&mut rng, 0).to_string();
                let cut = rng.below(text.len() + 1);
                Bytes::copy_from_slice(&text.as_bytes()[..cut])
            }
            2 => Bytes::from((0..rng.below(64)).map(|_| rng.next() as u8).collect::<Vec<u8>>()),
            3 | 4 => Bytes::from(random_json(&mut rng, 0).to_string()),
            5 => Bytes::from(sample.to_string()),
            _ => {
                let mut body = sample.clone();
                for _ in 0..rng.below(3) + 1 {
                    mutate(&mut rng, &mut body);
                }
                Bytes::from(body.to_string())
            }
        };
        let content_type = if template.starts_with("/api/plugins/") && rng.chance(70) {
            Some("application/wasm")
        } else {
            content_type
        };
        let shown = String::from_utf8_lossy(&body).chars().take(300).collect::<String>();
        let reply = s.send(method, &path, token, content_type, body).await;
        *statuses.entry(reply.status).or_default() += 1;
        assert!(
            reply.status < 500,
            "request {i}: {method} {path} with {shown}: {reply:?}"
        );
        if reply.status >= 400 {
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
                panic!(
                    "request {i}: {method} {path}: the {} body is not JSON ({e}): {reply:?}",
                    reply.status
                )
            });
            let error = &body["error"];
            assert!(
                error["code"].as_str().is_some_and(|c| !c.is_empty())
                    && error["message"].as_str().is_some_and(|m| !m.is_empty())
                    && (error["field"].is_null() || error["field"].is_string()),
                "request {i}: {method} {path}: not the error shape: {body}"
            );
        }
        if i % 50 == 0 {
            // Runs queued by random entities run too, so their reports are read back.
            s.engine.run_until_idle().await.unwrap();
        }
    }
    eprintln!("statuses of the random requests: {statuses:?}");
    assert!(statuses.keys().any(|s| (200..300).contains(s)), "{statuses:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

robohost_tests::on_both!(random_requests_over_every_route_never_get_a_5xx);
