//! Webhook robots, the way Bitrix24 app robots work: the host posts the run
//! to an HTTP handler, which answers with the effects and returned values.
//! They get the same run record, capability checks and effect application
//! as sandboxed robots; what they cannot get is the sandbox's isolation and
//! speed, which is why the engine's benchmark measures them side by side.
//!
//! Request: `{"robot", "entity", "properties", "cause", "run_id", "attempt",
//! "idempotency_key", "now"}`. Answer: `200 {"effects": [...], "returns":
//! {...}}`, or `{"error": {"code", "message", "retryable"}}`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::CONTENT_TYPE;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::json;

use crate::domain::{Cause, Digest, Effect, Entity, Fields, Timestamp};
use crate::runtime::{AttemptReport, Denial, Grants, Outcome};

/// The most a handler may answer, in bytes.
const ANSWER_LIMIT: usize = 1024 * 1024;

/// A keep-alive HTTP client shared by the engine's webhook runs.
pub(super) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(super) fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    #[serde(default)]
    effects: Vec<Effect>,
    #[serde(default)]
    returns: Fields,
    #[serde(default)]
    error: Option<AnswerError>,
}

#[derive(Deserialize)]
struct AnswerError {
    code: String,
    message: String,
    #[serde(default)]
    retryable: bool,
}

/// One webhook run.
pub(super) struct Call<'a> {
    pub url: &'a str,
    pub digest: Digest,
    pub robot: &'a str,
    pub entity: &'a Entity,
    pub properties: &'a Fields,
    pub cause: &'a Cause,
    pub run_id: u64,
    pub attempt: u32,
    pub now: Timestamp,
    pub grants: Grants,
    pub timeout: Duration,
}

pub(super) async fn run(client: &HttpClient, call: Call<'_>) -> AttemptReport {
    let started = Instant::now();
    let (outcome, effects, returns, denials) = match tokio::time::timeout(call.timeout, ask(client, &call)).await {
        Err(_) => (
            external(format!("{} did not answer within {:?}", call.url, call.timeout)),
            vec![],
            Fields::new(),
            vec![],
        ),
        Ok(Err(message)) => (external(message), vec![], Fields::new(), vec![]),
        Ok(Ok(Answer { error: Some(e), .. })) => {
            let outcome = Outcome::RobotError {
                code: e.code,
                message: e.message,
                retryable: e.retryable,
            };
            (outcome, vec![], Fields::new(), vec![])
        }
        Ok(Ok(Answer {
            effects,
            returns,
            error: None,
        })) => {
            let denials: Vec<Denial> = effects
                .iter()
                .filter_map(|effect| call.grants.allows(effect).err())
                .map(|denied| Denial {
                    denied,
                    call: "webhook effects".into(),
                })
                .collect();
            match denials.first() {
                Some(d) => {
                    let outcome = Outcome::CapabilityDenied {
                        denied: d.denied.clone(),
                        call: d.call.to_string(),
                    };
                    (outcome, vec![], Fields::new(), denials)
                }
                None => (Outcome::Success, effects, returns, denials),
            }
        }
    };
    AttemptReport {
        plugin: call.digest,
        robot: call.robot.to_owned(),
        blame: outcome.blame(),
        outcome,
        effects,
        returns,
        logs: Vec::new(),
        denials,
        fuel_used: 0,
        duration: started.elapsed(),
    }
}

fn external(message: String) -> Outcome {
    Outcome::ExternalError { message }
}

async fn ask(client: &HttpClient, call: &Call<'_>) -> Result<Answer, String> {
    let body = json!({
        "robot": call.robot,
        "entity": call.entity,
        "properties": call.properties,
        "cause": call.cause,
        "run_id": call.run_id,
        "attempt": call.attempt,
        "idempotency_key": format!("run-{}", call.run_id),
        "now": call.now,
    });
    let request = Request::post(call.url)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("{} is not a usable URL: {e}", call.url))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("calling {}: {e}", call.url))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), ANSWER_LIMIT)
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {}: {e}", call.url))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("{} answered {status}", call.url));
    }
    serde_json::from_slice(&body).map_err(|e| format!("the answer of {} is not valid: {e}", call.url))
}
