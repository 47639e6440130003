//! Endpoints: where outside services post events (`POST /hooks/{id}`, no
//! token: the unguessable id, and the signature when the endpoint has a
//! secret, are the sender's credentials), the admin's routes that create
//! and remove them, and the record of every call.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::{Admin, AdminOrIntegrator, AnyRole, Auth};
use super::error::ApiError;
use super::extract::{JsonBody, PathParams, QueryParams};
use crate::domain::{
    CallRecord, CallStatus, Endpoint, EndpointSpec, FormSpec, IDEMPOTENCY_HEADER, InboundCall, Outcome, Unmatched,
};
use crate::engine::{Arrival, CatalogTrigger, Engine, new_secret};

/// The largest body an endpoint takes: far above any provider's
/// notification, small enough that calls cannot tie up memory.
pub const HOOK_BODY_LIMIT: usize = 256 * 1024;

/// A new endpoint.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct NewEndpoint {
    /// The trigger plugin that handles its calls; or `form`.
    #[serde(default)]
    plugin: Option<String>,
    /// A web form: `pipeline` (of leads), `fields` (form field → lead field
    /// code), `honeypot` (`website`), `redirect` (where a browser goes next).
    #[serde(default)]
    form: Option<FormSpec>,
    #[serde(default)]
    title: String,
    /// Whether calls must be signed (true for a plugin, false for a form,
    /// which browsers post): the host makes the secret and answers it once.
    #[serde(default)]
    signed: Option<bool>,
    /// The header carrying a sender's idempotency key (`idempotency-key`).
    #[serde(default)]
    idempotency_header: Option<String>,
    /// What a hit whose lookup finds no one does: `{"then": "ignore"}`
    /// (the default) or `{"then": "create-lead", "pipeline": "leads"}`.
    #[serde(default)]
    unmatched: Unmatched,
}

/// An endpoint as an admin sees it: never its secret, except in the answer
/// that made it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(super) struct EndpointInfo {
    id: String,
    /// Its address, relative to this server.
    #[schema(example = "/hooks/3f2a...")]
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    form: Option<FormSpec>,
    title: String,
    signed: bool,
    idempotency_header: String,
    unmatched: Unmatched,
    /// Only when the endpoint is created or its secret replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    created_at: crate::domain::Timestamp,
}

impl EndpointInfo {
    fn of(endpoint: Endpoint, show_secret: bool) -> EndpointInfo {
        EndpointInfo {
            url: format!("/hooks/{}", endpoint.id),
            id: endpoint.id,
            plugin: endpoint.spec.plugin,
            form: endpoint.spec.form,
            title: endpoint.spec.title,
            signed: endpoint.spec.secret.is_some(),
            idempotency_header: endpoint.spec.idempotency_header,
            unmatched: endpoint.spec.unmatched,
            secret: endpoint.spec.secret.filter(|_| show_secret),
            created_at: endpoint.created_at,
        }
    }
}

#[utoipa::path(
    post, path = "/api/endpoints", tag = "endpoints",
    request_body = NewEndpoint,
    responses((status = 201, description = "The endpoint, with its secret (shown this once)", body = EndpointInfo)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn add_endpoint(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    JsonBody(new): JsonBody<NewEndpoint>,
) -> Result<(StatusCode, Json<EndpointInfo>), ApiError> {
    let signed = new.signed.unwrap_or(new.form.is_none());
    let spec = EndpointSpec {
        plugin: new.plugin,
        form: new.form,
        title: new.title,
        secret: signed.then(new_secret).transpose()?,
        idempotency_header: new.idempotency_header.unwrap_or_else(|| IDEMPOTENCY_HEADER.into()),
        unmatched: new.unmatched,
    };
    let endpoint = engine.add_endpoint(spec).await?;
    Ok((StatusCode::CREATED, Json(EndpointInfo::of(endpoint, true))))
}

#[utoipa::path(
    get, path = "/api/endpoints", tag = "endpoints",
    responses((status = 200, description = "Every endpoint, oldest first", body = Vec<EndpointInfo>)),
    security(("bearer" = ["admin", "integrator"])),
)]
pub(super) async fn list_endpoints(
    _auth: Auth<AdminOrIntegrator>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<EndpointInfo>>, ApiError> {
    let endpoints = engine.store().endpoints().await?;
    Ok(Json(
        endpoints.into_iter().map(|e| EndpointInfo::of(e, false)).collect(),
    ))
}

#[utoipa::path(
    delete, path = "/api/endpoints/{id}", tag = "endpoints",
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed; its calls stay recorded, new ones are refused as to an unknown endpoint")),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn remove_endpoint(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<StatusCode, ApiError> {
    engine.remove_endpoint(path.text("id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/endpoints/{id}/secret", tag = "endpoints",
    params(("id" = String, Path)),
    responses((status = 200, description = "The endpoint with a new secret (shown this once); the old one no longer holds", body = EndpointInfo)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn replace_secret(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<EndpointInfo>, ApiError> {
    let id = path.text("id")?;
    let found = engine
        .store()
        .endpoint(id)
        .await?
        .ok_or_else(|| ApiError::not_found(None, format!("endpoint `{id}`")))?;
    let spec = EndpointSpec {
        secret: Some(new_secret()?),
        ..found.spec
    };
    let endpoint = engine.update_endpoint(id, spec).await?;
    Ok(Json(EndpointInfo::of(endpoint, true)))
}

#[utoipa::path(
    get, path = "/api/trigger-catalog", tag = "endpoints",
    responses((status = 200, description = "Every trigger code a stage may use: the host's own and those the installed trigger plugins describe, with names in several languages", body = Vec<CatalogTrigger>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn trigger_catalog(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Json<Vec<CatalogTrigger>> {
    Json(engine.trigger_catalog())
}

#[utoipa::path(
    get, path = "/api/calls", tag = "endpoints",
    params(
        ("endpoint" = Option<String>, Query, description = "Only calls to this endpoint id (known or not)"),
        ("status" = Option<String>, Query, description = "Only calls with this status, such as `bad-signature`"),
        ("limit" = Option<u32>, Query, description = "At most this many, 1 to 1000 (100)"),
    ),
    responses((status = 200, description = "Calls posted to /hooks/, newest first", body = Vec<CallRecord>)),
    security(("bearer" = ["admin", "integrator"])),
)]
pub(super) async fn list_calls(
    _auth: Auth<AdminOrIntegrator>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
) -> Result<Json<Vec<CallRecord>>, ApiError> {
    let query = query.allow(&["endpoint", "status", "limit"])?;
    let endpoint: Option<String> = query.parse("endpoint")?;
    let status = match query.parse::<String>("status")? {
        None => None,
        Some(text) => Some(
            serde_json::from_value::<CallStatus>(serde_json::Value::String(text.clone())).map_err(|_| {
                ApiError::BadQuery {
                    field: "status".into(),
                    message: format!(
                        "`{text}` is not a call status: handled, duplicate, unknown-endpoint, too-large, bad-signature, plugin-unavailable, plugin-failed, invalid or spam"
                    ),
                }
            })?,
        ),
    };
    let limit = query.limit()?;
    Ok(Json(engine.store().calls(endpoint.as_deref(), status, limit).await?))
}

#[utoipa::path(
    get, path = "/api/calls/{id}", tag = "endpoints",
    params(("id" = u64, Path)),
    responses((status = 200, description = "One call, with the plugin's handling and each hit's result", body = CallRecord)),
    security(("bearer" = ["admin", "integrator"])),
)]
pub(super) async fn get_call(
    _auth: Auth<AdminOrIntegrator>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<CallRecord>, ApiError> {
    let id = path.id("id")?;
    let call = engine.store().call(id).await?;
    Ok(Json(
        call.ok_or_else(|| ApiError::not_found(None, format!("call {id}")))?,
    ))
}

/// What a sender is told: the call's number and status, and why when it
/// changed nothing. What the hits moved is for the portal's admins only.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CallReceipt {
    call: u64,
    #[schema(value_type = String, example = "handled")]
    status: CallStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The HTTP status a call's end is answered with. A sender retries on
/// anything but 2xx: a duplicate is answered as a success, so it stops.
fn http_status(record: &CallRecord) -> StatusCode {
    match record.status {
        CallStatus::Handled | CallStatus::Duplicate => StatusCode::OK,
        CallStatus::UnknownEndpoint => StatusCode::NOT_FOUND,
        CallStatus::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        CallStatus::BadSignature => StatusCode::UNAUTHORIZED,
        CallStatus::PluginUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        CallStatus::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        // A bot is not told it was caught.
        CallStatus::Spam => StatusCode::OK,
        CallStatus::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        CallStatus::PluginFailed => match record.handling.as_ref().map(|h| &h.outcome) {
            // The plugin says the call itself is wrong: sending it again
            // will not help.
            Some(Outcome::RobotError { retryable: false, .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

#[utoipa::path(
    post, path = "/hooks/{id}", tag = "endpoints",
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("Robohost-Signature" = Option<String>, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the endpoint's secret>`; required when the endpoint is signed"),
        ("Idempotency-Key" = Option<String>, Header, description = "The sender's id of this event: a call repeating a handled one's key changes nothing (the endpoint may name another header)"),
    ),
    request_body(content = Vec<u8>, description = "Whatever the sender posts, up to 256 KiB; the endpoint's trigger plugin reads it"),
    responses(
        (status = 200, description = "Handled (its hits fired), or a duplicate of a handled call", body = CallReceipt),
        (status = 401, description = "The endpoint is signed and the signature is missing, malformed, stale or wrong", body = CallReceipt),
        (status = 404, description = "No endpoint has this id", body = CallReceipt),
        (status = 413, description = "The body is over 256 KiB", body = CallReceipt),
        (status = 303, description = "A form's submission taken: on to the page the form names"),
        (status = 422, description = "The plugin refused the call as malformed, or a form's submission fills none of its fields", body = CallReceipt),
        (status = 429, description = "More than 5 submissions to a form from one address in a minute", body = CallReceipt),
        (status = 500, description = "The plugin failed", body = CallReceipt),
        (status = 503, description = "The endpoint's plugin is not installed or does not load", body = CallReceipt),
    ),
)]
pub(super) async fn post_hook(
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    request: Request,
) -> Result<Response, ApiError> {
    let id = path.text("id")?.to_owned();
    let (parts, body) = request.into_parts();
    let arrival = match axum::body::to_bytes(Body::new(body), HOOK_BODY_LIMIT).await {
        Ok(body) => Arrival::Call(InboundCall {
            method: parts.method.to_string(),
            path: String::new(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        }),
        Err(e) => {
            let e = e.into_inner();
            if !e.is::<http_body_util::LengthLimitError>() {
                return Err(ApiError::invalid("body", format!("the body could not be read: {e}")));
            }
            Arrival::TooLarge {
                limit: HOOK_BODY_LIMIT as u64,
            }
        }
    };
    let from = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let record = engine.receive(&id, arrival, from).await?;
    // A browser that submitted a form goes on to the page the form names.
    if matches!(record.status, CallStatus::Handled | CallStatus::Spam)
        && let Some(endpoint) = engine.store().endpoint(&id).await?
        && let Some(next) = endpoint.spec.form.and_then(|f| f.redirect)
        && let Ok(location) = HeaderValue::from_str(&next)
    {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response());
    }
    let status = http_status(&record);
    let receipt = CallReceipt {
        // A spam submission is not told its record.
        call: if record.status == CallStatus::Spam {
            0
        } else {
            record.id
        },
        status: if record.status == CallStatus::Spam {
            CallStatus::Handled
        } else {
            record.status
        },
        reason: record.reason.filter(|_| record.status != CallStatus::Spam),
    };
    if record.status == CallStatus::RateLimited {
        return Ok((
            status,
            [(header::RETRY_AFTER, HeaderValue::from_static("60"))],
            Json(receipt),
        )
            .into_response());
    }
    Ok((status, Json(receipt)).into_response())
}
