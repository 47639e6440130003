//! The board's pages: `cargo bench -p robohost-tests --bench board`.
//!
//! A pipeline of 30 stages and 200 robots rendered as the board
//! (`GET /board/CODE`, signed in), against the baseline of the same
//! pipeline's JSON (`GET /api/pipelines`) in the same run; and the run log
//! with 1,000,000 runs stored, its first page and a page deep in the log,
//! filtered by status, against the unfiltered first page of `GET /api/runs`.
//! One request at a time over a new connection each, alternating, on SQLite.

use std::time::{Duration, Instant};

use robohost::domain::Timestamp;
use robohost::storage::StoredAccount;
use robohost::web::session::{hash_password, session_hash};
use robohost_tests::db::Db;
use robohost_tests::http::{Server, server};
use serde_json::json;

const REQUESTS: usize = 100;
const STAGES: usize = 30;
const ROBOTS: usize = 200;
const RUNS: u64 = 1_000_000;

fn percentile(times: &mut [Duration], p: usize) -> Duration {
    times.sort_unstable();
    times[(times.len() * p / 100).min(times.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A signed-in session's cookie header, made in the store directly.
async fn signed_in(s: &Server) -> String {
    let store = s.engine.store();
    let account = StoredAccount {
        name: "bench".into(),
        role: "admin".into(),
        password: hash_password("bench password").unwrap(),
    };
    store.put_account(&account, Timestamp::now()).await.unwrap();
    let id = "b".repeat(64);
    let now = s.engine.now();
    let later = Timestamp(now.0 + 3_600_000);
    store
        .add_session(&session_hash(&id), "bench", "csrf", now, later)
        .await
        .unwrap();
    format!("robohost_session={id}")
}

/// Times `a` against `b`, alternating, `REQUESTS` each; both must answer 200.
async fn compare(s: &Server, cookie: &str, a: &str, b: &str) -> (Vec<Duration>, Vec<Duration>) {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let reply = s.raw("GET", a, &[("cookie", cookie)], Default::default()).await;
        first.push(started.elapsed());
        assert_eq!(reply.status, 200, "{a}");
        let started = Instant::now();
        let reply = s.get(b, &s.admin).await;
        second.push(started.elapsed());
        assert_eq!(reply.status, 200, "{b}");
    }
    (first, second)
}

fn report(what: &str, mut page: Vec<Duration>, baseline: &str, mut base: Vec<Duration>) {
    let (p50, base50) = (percentile(&mut page, 50), percentile(&mut base, 50));
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms; {baseline} (baseline) p50 {:.2} ms; ratio {:.2}",
        ms(p50),
        ms(percentile(&mut page, 99)),
        ms(base50),
        p50.as_secs_f64() / base50.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let s = server(Db::Sqlite).await;
    s.engine.install_standard().await.unwrap();
    let stages: Vec<_> = (0..STAGES)
        .map(|i| {
            json!({"code": format!("S{i:02}"), "names": {"en": format!("Stage {i}"), "ru": format!("Стадия {i}")},
            "semantic": "in-progress"})
        })
        .collect();
    let pipeline = json!({"kind": "deal", "names": {"en": "Big"}, "stages": stages});
    s.json("PUT", "/api/pipelines/big", &s.admin, pipeline)
        .await
        .expect(200);
    for i in 0..ROBOTS {
        let robot = json!({"plugin": "standard", "robot": "task", "title": format!("Robot {i}"), "recipient": "responsible",
            "timing": {"delay_seconds": 3600 * (i % 5), "working_time": i % 2 == 0},
            "condition": {"compare": {"field": "OPPORTUNITY", "op": "ge", "value": {"money": "1000.00 RUB"}}},
            "properties": {"title": "Call about {=Document.TITLE}"}});
        let path = format!("/api/pipelines/big/stages/S{:02}/robots", i % STAGES);
        s.json("POST", &path, &s.admin, robot).await.expect(201);
    }
    let cookie = signed_in(&s).await;
    let board = s
        .raw("GET", "/board/big", &[("cookie", cookie.as_str())], Default::default())
        .await;
    let html = String::from_utf8_lossy(&board.body);
    assert_eq!(html.matches("<article class=\"robot").count(), ROBOTS);
    let (page, base) = compare(&s, &cookie, "/board/big", "/api/pipelines").await;
    report(
        &format!("board of {STAGES} stages and {ROBOTS} robots"),
        page,
        "GET /api/pipelines",
        base,
    );

    s.engine.store().insert_finished_runs(RUNS, 1, 1000, 10).await.unwrap();
    for (what, path) in [
        ("run log, first page of dead runs", "/runs?status=dead".to_owned()),
        (
            "run log, dead runs deep in the log",
            format!("/runs?status=dead&before={}", RUNS / 2),
        ),
        ("run log, one deal's runs", "/runs?entity=deal:500".to_owned()),
    ] {
        let (page, base) = compare(&s, &cookie, &path, "/api/runs?order=newest&limit=50").await;
        report(
            &format!("{what} ({RUNS} runs stored)"),
            page,
            "GET /api/runs newest",
            base,
        );
    }
}
