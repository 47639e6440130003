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
use robohost::domain::Timestamp;
use robohost::engine::{Engine, EngineConfig, ManualClock};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::db::{Db, engine};
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

/// Wednesday 2026-11-25, 10:00 in Moscow.
pub fn wednesday() -> Timestamp {
    "2026-11-25T10:00:00+03:00".parse().unwrap()
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

    /// Puts the deal pipeline `general`, NEW → WORK → WON / LOST, as an
    /// admin; returns it as stored.
    pub async fn general_pipeline(&self) -> Value {
        let pipeline = json!({"kind": "deal", "names": {"en": "General"}, "stages": [
            {"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"},
            {"code": "WORK", "names": {"en": "In work"}, "semantic": "in-progress"},
            {"code": "WON", "names": {"en": "Won"}, "semantic": "success"},
            {"code": "LOST", "names": {"en": "Lost"}, "semantic": "failure"}]});
        self.json("PUT", "/api/pipelines/general", &self.admin, pipeline)
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
