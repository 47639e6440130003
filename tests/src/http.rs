//! The HTTP API's test harness: a real server on 127.0.0.1:0 over an engine
//! on a fresh database, spoken to by a plain HTTP/1 client. The engine and
//! its manual clock stay in the test's hands: moving time and running the
//! worker are not things a user does over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use robohost::api::{self, Role, create_token};
use robohost::domain::{EntityKind, EntityRef};
use robohost::engine::{Engine, EngineConfig, ManualClock};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::db::{Db, engine};
use crate::fixtures::{general, wednesday};
use crate::plugin_path;

/// A server on its own fresh database of kind `db`, with an admin token made the way
/// the command line makes the first one.
pub struct Server {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    /// The engine's clock, standing at [`wednesday`] until the test moves it.
    pub clock: Arc<ManualClock>,
    pub admin: String,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: the body of a {} is not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        self.json()
    }

    /// Asserts an error reply: its status, code, field, and a piece of its
    /// message.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str, field: Option<&str>, says: &str) {
        let body = self.expect(status);
        let error = &body["error"];
        assert_eq!(error["code"], code, "{body}");
        assert_eq!(error["field"].as_str(), field, "{body}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "`{message}` does not say `{says}`");
    }
}

pub async fn server(db: Db) -> Server {
    let (engine, clock) = engine(db, wednesday(), EngineConfig::default()).await;
    let admin = create_token(engine.store(), "root", Role::Admin).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(api::run(listener, engine.clone(), shutdown.clone()));
    Server {
        addr,
        engine,
        clock,
        admin,
        shutdown,
    }
}

impl Server {
    /// One request on a new connection, with a bearer token and a content
    /// type when given.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Reply {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(value) = &authorization {
            headers.push(("authorization", value.as_str()));
        }
        if let Some(value) = content_type {
            headers.push(("content-type", value));
        }
        self.raw(method, path, &headers, body.into()).await
    }

    /// One request on a new connection, with exactly these headers.
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Bytes) -> Reply {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let response = sender
            .send_request(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(token), None, Bytes::new()).await
    }

    pub async fn json(&self, method: &str, path: &str, token: &str, body: Value) -> Reply {
        self.send(method, path, Some(token), Some("application/json"), body.to_string())
            .await
    }

    /// A token with `role`, made through the API.
    pub async fn token(&self, role: &str) -> String {
        let reply = self
            .json(
                "POST",
                "/api/tokens",
                &self.admin,
                json!({"name": format!("a {role}"), "role": role}),
            )
            .await;
        let token = reply.expect(201)["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("rh_") && token.len() == 67, "{token}");
        token
    }

    /// Puts the deal pipeline [`general`] as an admin; returns it as stored.
    pub async fn general_pipeline(&self) -> Value {
        let pipeline = serde_json::to_value(general()).unwrap();
        self.json("PUT", "/api/pipelines/general", &self.admin, pipeline)
            .await
            .expect(200)
    }

    /// The API's portal: the pipeline [`general`] and the
    /// `assign_by_amount` plugin granted `crm-read`, `change-responsible`
    /// and `add-comment`, set up as an admin and checked as listed.
    pub async fn assign_portal(&self) {
        let stored = self.general_pipeline().await;
        assert_eq!(stored["code"], "general");
        let installed = self
            .install("assign_by_amount", "crm-read,change-responsible,add-comment")
            .await;
        assert!(installed["digest"].as_str().unwrap().starts_with("sha256:"));
        let grants = [
            "crm-read",
            "change-responsible",
            "add-comment",
            "read:*",
            "write:*",
            "field:*",
        ];
        assert_eq!(installed["grants"], json!(grants));
        let listed = self.get("/api/plugins", &self.admin).await.expect(200);
        assert_eq!(listed[0]["name"], "assign_by_amount");
        assert_eq!(listed[0]["digest"], installed["digest"]);
        assert_eq!(listed[0]["robots"], json!(["assign_by_amount"]));
    }

    /// Posts [`crate::fixtures::deal`] as an admin and checks it entered
    /// `stage`; returns it.
    pub async fn deal(&self, stage: &str, amount: &str) -> EntityRef {
        let deal = crate::fixtures::deal(stage, amount);
        let created = self.json("POST", "/api/entities", &self.admin, deal).await.expect(201);
        assert_eq!(created["stage"], stage, "{created}");
        EntityRef {
            kind: EntityKind::Deal,
            id: created["id"].as_u64().unwrap(),
        }
    }

    /// An entity as the API shows it to an admin.
    pub async fn entity(&self, r: EntityRef) -> Value {
        self.get(&format!("/api/entities/{}/{}", r.kind.as_str(), r.id), &self.admin)
            .await
            .expect(200)
    }

    /// Moves an entity to `stage` as an admin; returns it as moved.
    pub async fn move_to(&self, r: EntityRef, stage: &str) -> Value {
        let path = format!("/api/entities/{}/{}/move", r.kind.as_str(), r.id);
        self.json("POST", &path, &self.admin, json!({"stage": stage}))
            .await
            .expect(200)
    }

    /// The runs on an entity, as listed to an admin.
    pub async fn runs(&self, r: EntityRef) -> Vec<Value> {
        let runs = self
            .get(&format!("/api/runs?entity={r}"), &self.admin)
            .await
            .expect(200);
        runs.as_array().unwrap().clone()
    }

    /// Installs [`crate::fixtures::trigger_package`] as an admin, trusting
    /// its publisher; returns the package report.
    pub async fn install_triggers(&self, name: &str, plugin: &str, codes: &str) -> Value {
        let key = hex::encode(crate::fixtures::publisher().verifying_key().to_bytes());
        self.json("PUT", "/api/trust", &self.admin, json!({"publishers": {"acme": key}}))
            .await
            .expect(200);
        let archive = crate::fixtures::trigger_package(name, plugin, codes);
        self.send(
            "POST",
            "/api/packages",
            Some(&self.admin),
            Some("application/gzip"),
            archive,
        )
        .await
        .expect(200)
    }

    /// Uploads the compiled plugin `name` as an admin, granting `grants`
    /// (comma-separated); returns the plugin as installed.
    pub async fn install(&self, name: &str, grants: &str) -> Value {
        let wasm = std::fs::read(plugin_path(name)).unwrap_or_else(|e| panic!("reading plugin {name}: {e}"));
        self.send(
            "PUT",
            &format!("/api/plugins/{name}?grant={grants}"),
            Some(&self.admin),
            Some("application/wasm"),
            wasm,
        )
        .await
        .expect(200)
    }
}
