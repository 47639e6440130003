//! Real host processes for the durability tests: starting, signalling and
//! killing `robohost serve`, a portal whose every robot execution leaves a
//! comment, producers that work it over HTTP, and the checks that no run
//! was lost or applied twice.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use robohost::api::NewEntityRequest;
use robohost::domain::{Capability, EntityKind, EntityRef, Pipeline, RobotBinding, RunStatus, Timestamp};
use robohost::engine::{Engine, EngineConfig, ManualClock};
use robohost::storage::Store;
use robohost_tests::db::shared_sandbox;
use robohost_tests::plugin_path;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Statuses a run is left in only while work is unfinished.
pub const UNFINISHED: [RunStatus; 5] = [
    RunStatus::Queued,
    RunStatus::Leased,
    RunStatus::Waiting,
    RunStatus::Awaiting,
    RunStatus::Dead,
];

/// One `robohost serve` process: its pid, address and log.
pub struct Host {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Host {
    /// Starts a host and waits until it serves.
    pub fn start(url: &str, config: &std::path::Path) -> Host {
        let mut child = Command::new(env!("CARGO_BIN_EXE_robohost"))
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting robohost serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut lines = Vec::new();
        let addr = loop {
            line.clear();
            assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "the host ended before serving");
            lines.push(line.trim_end().to_owned());
            if let Some(rest) = line.split("serving on http://").nth(1) {
                break rest.split(';').next().unwrap().trim().parse().unwrap();
            }
        };
        let log = Arc::new(Mutex::new(lines));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Host { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The prefix of this process's engines' lease owner names.
    pub fn owner(&self) -> String {
        format!("{}-", self.pid())
    }

    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    pub fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// How many lines of the log so far contain `text`.
    pub fn lines(&self, text: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(text)).count()
    }
}

/// A configuration file: short leases, quick polling, and `extra`.
pub fn config_file(name: &str, extra: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("robohost-{name}-{}.toml", std::process::id()));
    let cache = std::env::temp_dir().join(format!("robohost-{name}-cache-{}", std::process::id()));
    let text = format!(
        "[engine]\nlease-ms = 1000\npoll-ms = 50\n{extra}\n\n[sandbox]\ncache-dir = {:?}\nwall-time-ms = 30000\n",
        cache.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The engine the test reads the portal through (and sets it up with).
pub async fn reader(url: &str) -> Arc<Engine> {
    let store = Store::open(url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    Engine::new(store, shared_sandbox(), clock, EngineConfig::default())
        .await
        .unwrap()
}

/// A pipeline `general` with stages NEW and WORK, user 1, and the standard
/// and bench robots installed.
pub async fn portal(url: &str) -> Arc<Engine> {
    let engine = reader(url).await;
    engine.install_standard().await.unwrap();
    let wasm = std::fs::read(plugin_path("bench")).unwrap();
    engine
        .install_plugin("bench", wasm, Capability::ALL.to_vec())
        .await
        .unwrap();
    let pipeline: Pipeline = serde_json::from_value(json!({
        "code": "general", "kind": "deal", "names": {},
        "stages": [
            {"code": "NEW", "names": {}, "semantic": "in-progress"},
            {"code": "WORK", "names": {}, "semantic": "in-progress"},
        ],
    }))
    .unwrap();
    engine.put_pipeline(&pipeline).await.unwrap();
    let user = serde_json::from_value(json!({"id": 1, "name": "Olga"})).unwrap();
    engine.put_user(&user).await.unwrap();
    engine
}

pub async fn place(engine: &Engine, stage: &str, robot: Value) {
    let mut robot = robot;
    robot["id"] = json!(0);
    robot["pipeline"] = json!("general");
    robot["stage"] = json!(stage);
    let robot: RobotBinding = serde_json::from_value(robot).unwrap();
    engine.add_robot(&robot).await.unwrap();
}

pub fn comment(text: &str) -> Value {
    json!({"plugin": "standard", "robot": "comment", "properties": {"text": text}})
}

pub fn crunch(rounds: i64, fuel: u64) -> Value {
    json!({"plugin": "bench", "robot": "crunch", "properties": {"rounds": rounds}, "fuel": fuel})
}

pub async fn create_deal(engine: &Engine, title: &str) -> EntityRef {
    let request: NewEntityRequest = serde_json::from_value(json!({
        "kind": "deal", "pipeline": "general", "responsible": 1, "fields": {"TITLE": title},
    }))
    .unwrap();
    let (draft, links) = request.into_entity().unwrap();
    engine.create_entity(draft, links).await.unwrap().reference()
}

/// One HTTP request to a host that may be gone: the status and JSON body,
/// or why there is none.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
        .unwrap();
    let answer = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    let body = answer
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// Polls `check` every 10 ms until it holds or `limit` passes.
pub async fn until<F: AsyncFn() -> bool>(limit: Duration, what: &str, check: F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn count(store: &Store, status: RunStatus) -> u64 {
    store.count_runs(status).await.unwrap()
}

pub async fn all_runs(store: &Store) -> u64 {
    let mut total = 0;
    for status in RunStatus::ALL {
        total += count(store, status).await;
    }
    total
}

/// Comments on `deal` whose text starts with `prefix`.
pub async fn comments(store: &Store, deal: EntityRef, prefix: &str) -> usize {
    let all = store.comments(deal).await.unwrap();
    all.iter().filter(|(_, text, _)| text.starts_with(prefix)).count()
}

/// How many times `deal` entered `stage`.
pub async fn entries(store: &Store, deal: EntityRef, stage: &str) -> usize {
    let events = store.events(deal).await.unwrap();
    events
        .iter()
        .filter(|(_, e, data)| e == "stage-entered" && data["stage"] == stage)
        .count()
}

/// Producers working the portal over HTTP through whichever host serves:
/// deals created, their tasks completed, deals whose chain is done moved on.
/// A request that fails (its host was killed) may or may not have happened;
/// the test's checks are per deal that exists, so either is fine.
pub struct Producers {
    addr: Arc<Mutex<SocketAddr>>,
    stop: CancellationToken,
    created: Arc<Mutex<u64>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Producers {
    pub fn start(engine: Arc<Engine>, addr: SocketAddr, token: String) -> Producers {
        let addr = Arc::new(Mutex::new(addr));
        let stop = CancellationToken::new();
        let created: Arc<Mutex<u64>> = Arc::default();
        let at = |addr: &Arc<Mutex<SocketAddr>>| *addr.lock().unwrap();
        let mut tasks = Vec::new();
        // Deals, one every 15 ms.
        tasks.push(tokio::spawn({
            let (addr, stop, token, created) = (addr.clone(), stop.clone(), token.clone(), created.clone());
            async move {
                let mut n = 0;
                while !stop.is_cancelled() {
                    n += 1;
                    let deal = json!({"kind": "deal", "pipeline": "general", "responsible": 1, "fields": {"TITLE": format!("d{n}")}});
                    if let Ok((201, _)) = call(at(&addr), "POST", "/api/entities", &token, Some(deal)).await {
                        *created.lock().unwrap() += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }
        }));
        // Tasks completed as they appear.
        tasks.push(tokio::spawn({
            let (addr, stop, token, engine) = (addr.clone(), stop.clone(), token.clone(), engine.clone());
            async move {
                while !stop.is_cancelled() {
                    complete_tasks(&engine, at(&addr), &token).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
        // Deals whose chain on NEW is done, moved to WORK.
        tasks.push(tokio::spawn({
            let (addr, stop, token) = (addr.clone(), stop.clone(), token.clone());
            async move {
                let mut moved = std::collections::HashSet::new();
                while !stop.is_cancelled() {
                    // The database may be away (restarted): try again later.
                    let deals = engine.store().entities(EntityKind::Deal, 0, 100_000).await;
                    for deal in deals.unwrap_or_default() {
                        let r = deal.reference();
                        if deal.id % 2 == 0 || moved.contains(&r) {
                            continue;
                        }
                        let Ok(said) = engine.store().comments(r).await else {
                            break;
                        };
                        if !said.iter().any(|(_, text, _)| text.starts_with("B:")) {
                            continue;
                        }
                        let path = format!("/api/entities/deal/{}/move", deal.id);
                        if let Ok((200, _)) =
                            call(at(&addr), "POST", &path, &token, Some(json!({"stage": "WORK"}))).await
                        {
                            moved.insert(r);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
        Producers {
            addr,
            stop,
            created,
            tasks,
        }
    }

    pub fn serve_at(&self, addr: SocketAddr) {
        *self.addr.lock().unwrap() = addr;
    }

    pub async fn stop(self) -> u64 {
        self.stop.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
        *self.created.lock().unwrap()
    }
}

/// Completes, over HTTP, every task not completed yet.
pub async fn complete_tasks(engine: &Engine, addr: SocketAddr, token: &str) {
    // The database may be away (restarted): the next round completes them.
    let tasks = engine.store().entities(EntityKind::Task, 0, 100_000).await;
    for task in tasks.unwrap_or_default() {
        if task.field("STATUS").is_some_and(|s| s.to_string() == "completed") {
            continue;
        }
        let path = format!("/api/entities/task/{}", task.id);
        let done = json!({"fields": {"STATUS": {"option": "completed"}}});
        let _ = call(addr, "PATCH", &path, token, Some(done)).await;
    }
}

/// After the faults: one host finishes everything (the tasks completed as
/// they come), then nothing changes for a quiet second.
pub async fn quiesce(engine: &Engine, host: &Host, token: &str) {
    let store = engine.store();
    let start = Instant::now();
    let mut settled_at: Option<(Instant, u64)> = None;
    loop {
        complete_tasks(engine, host.addr, token).await;
        let mut left = Vec::new();
        for status in UNFINISHED {
            left.push((status, count(store, status).await));
        }
        let busy: u64 = left.iter().map(|(_, n)| n).sum();
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the portal did not settle: runs left {left:?}"
        );
        let total = all_runs(store).await;
        match settled_at {
            _ if busy > 0 => settled_at = None,
            Some((since, seen)) if seen == total && since.elapsed() > Duration::from_secs(1) => return,
            Some((_, seen)) if seen == total => {}
            _ => settled_at = Some((Instant::now(), total)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every deal entered NEW once and ran its chain exactly once (A, then B
/// after its task was completed), and ran W once for each entry into WORK;
/// every robot run ended succeeded; each deal has one task.
pub async fn assert_exactly_once(engine: &Engine) -> usize {
    let store = engine.store();
    for status in UNFINISHED.into_iter().chain([RunStatus::Cancelled, RunStatus::Skipped]) {
        assert_eq!(count(store, status).await, 0, "runs left {status:?}");
    }
    let deals = store.entities(EntityKind::Deal, 0, 100_000).await.unwrap();
    for deal in &deals {
        let r = deal.reference();
        assert_eq!(entries(store, r, "NEW").await, 1, "{r}");
        for prefix in ["A:", "B:"] {
            assert_eq!(comments(store, r, prefix).await, 1, "{r}: comments {prefix}");
        }
        let work = entries(store, r, "WORK").await;
        assert_eq!(comments(store, r, "W:").await, work, "{r}: one W per entry into WORK");
    }
    let tasks = store.entities(EntityKind::Task, 0, 100_000).await.unwrap();
    assert_eq!(tasks.len(), deals.len(), "one task per deal");
    deals.len()
}

/// The robots of the crash tests: on NEW a comment, a slow computation, a
/// task awaited, and a comment after it; on WORK a comment.
pub async fn chain(engine: &Engine, rounds: i64) {
    place(engine, "NEW", comment("A: {=Document.TITLE}")).await;
    place(engine, "NEW", crunch(rounds, 5_000_000_000)).await;
    let task = json!({"plugin": "standard", "robot": "task", "recipient": "responsible",
        "properties": {"title": "Call about {=Document.TITLE}", "wait": true}});
    place(engine, "NEW", task).await;
    let mut after = comment("B: {=Document.TITLE}");
    after["timing"] = json!({"after_previous": true});
    place(engine, "NEW", after).await;
    place(engine, "WORK", comment("W: {=Document.TITLE}")).await;
}
