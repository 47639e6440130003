//! The HTTP API: the only code that knows HTTP and JSON wire shapes.
//!
//! Routes live under `/api`, plus `/health`, `/openapi.json` and the
//! public `/hooks/{id}` (endpoints) and `/t/` (email tracking). Each
//! handler takes an [`auth::Auth`] naming the roles it admits, then its
//! path, query and body through the extractors of [`extract`], so bad input
//! of any kind becomes a 4xx [`ApiError`] with a stable code. The OpenAPI
//! document is generated from the handlers' `#[utoipa::path]` attributes by
//! the same router that serves them, so it cannot miss a route.
//!
//! This layer holds no state of its own and must not reach around the
//! engine to change the portal: every change goes through [`Engine`], which
//! keeps a change and the runs it causes in one transaction. Reads go to the
//! store directly, and so does the one write the engine has no part in:
//! storing an API token's hash.

pub mod auth;
mod automation;
mod directory;
mod endpoints;
mod entities;
pub mod error;
mod events;
mod extract;
mod fields;
mod jobs;
mod packages;
mod plugins;
mod role;
mod runs;
mod templates;
mod tracking;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Role, TokenError, create_token, create_token_for};
pub use entities::NewEntityRequest;
pub use error::ApiError;
pub use extract::CSV_BODY_LIMIT;

use crate::engine::Engine;

/// The largest JSON body: far above any settings or entity a person
/// writes, far below what would let one request tie up memory.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// The largest plugin upload. Our own plugins are well under 1 MiB; a
/// component written in a heavier language may reach a few MiB.
pub const PLUGIN_BODY_LIMIT: usize = 32 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "robohost",
        description = "Robots and triggers on a CRM's pipelines; robots are sandboxed WebAssembly components. \
            Authenticate with `Authorization: Bearer <token>`; each operation's security lists the roles it admits. \
            Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`.",
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Common),
)]
struct ApiDoc;

/// Adds the bearer scheme. (The error response every operation may give is
/// added by [`openapi`], once the routes have added their operations.)
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rh_<64 hex digits>")
                    .build(),
            ),
        );
    }
}

/// Every route, with its OpenAPI description.
fn routes() -> OpenApiRouter<Arc<Engine>> {
    // `routes!` mounts its method router at every path of its handlers, so
    // only handlers of one path share a call.
    let (schemas, paths, upload) = routes!(plugins::put_plugin, plugins::delete_plugin);
    let upload = (schemas, paths, upload.layer(DefaultBodyLimit::max(PLUGIN_BODY_LIMIT)));
    let (schemas, paths, packages) = routes!(packages::install_package, packages::list_packages);
    let packages = (schemas, paths, packages.layer(DefaultBodyLimit::max(PLUGIN_BODY_LIMIT)));
    let (schemas, paths, reassign) = routes!(jobs::plan_reassignment);
    let reassign = (
        schemas,
        paths,
        reassign.layer(DefaultBodyLimit::max(extract::CSV_BODY_LIMIT)),
    );
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics_text))
        .routes(routes!(openapi_json))
        .routes(routes!(entities::create_entity))
        .routes(routes!(entities::list_entities))
        .routes(routes!(entities::get_entity, entities::patch_entity))
        .routes(routes!(entities::move_entity))
        .routes(routes!(entities::timeline))
        .routes(routes!(automation::list_pipelines))
        .routes(routes!(automation::put_pipeline, automation::remove_pipeline))
        .routes(routes!(automation::remove_stage))
        .routes(routes!(automation::list_robots, automation::add_robot))
        .routes(routes!(automation::order_robots))
        .routes(routes!(automation::replace_robot, automation::remove_robot))
        .routes(routes!(automation::list_triggers, automation::add_trigger))
        .routes(routes!(automation::replace_trigger, automation::remove_trigger))
        .routes(routes!(directory::list_users))
        .routes(routes!(directory::put_user))
        .routes(routes!(directory::put_absence, directory::delete_absence))
        .routes(routes!(directory::list_departments))
        .routes(routes!(directory::put_department))
        .routes(routes!(directory::list_constants))
        .routes(routes!(directory::put_constant))
        .routes(routes!(directory::get_calendar, directory::put_calendar))
        .routes(routes!(fields::list_fields))
        .routes(routes!(fields::list_misfits))
        .routes(routes!(fields::put_field, fields::remove_field))
        .routes(reassign)
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::job_rows))
        .routes(routes!(jobs::start_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(plugins::list_plugins))
        .routes(routes!(plugins::put_webhook))
        .routes(upload)
        .routes(routes!(events::post_event))
        .routes(routes!(endpoints::add_endpoint, endpoints::list_endpoints))
        .routes(routes!(endpoints::remove_endpoint))
        .routes(routes!(endpoints::replace_secret))
        .routes(routes!(endpoints::trigger_catalog))
        .routes(routes!(endpoints::list_calls))
        .routes(routes!(endpoints::get_call))
        .routes(routes!(endpoints::post_hook))
        .routes(routes!(tracking::email_opened))
        .routes(routes!(tracking::link_clicked))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::retry_runs))
        .routes(routes!(events::list_outbox))
        .routes(routes!(events::list_notifications))
        .routes(packages)
        .routes(routes!(packages::rollback_package))
        .routes(routes!(packages::remove_package))
        .routes(routes!(packages::get_trust, packages::put_trust))
        .routes(routes!(templates::install_template, templates::list_templates))
        .routes(routes!(templates::export_template))
        .routes(routes!(auth::post_token, auth::list_tokens))
        .routes(routes!(auth::revoke_token))
}

/// The OpenAPI document of every route.
pub fn openapi() -> Document {
    let (_, mut doc) = routes().split_for_parts();
    let error = RefOr::T(
        ResponseBuilder::new()
            .description("An error: `{\"error\": {\"code\", \"message\", \"field\"}}`")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    );
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let responses = &mut operation.responses.responses;
            responses.entry("4XX".into()).or_insert_with(|| error.clone());
        }
    }
    doc
}

/// The application's routes over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .merge(crate::web::router())
        .route_layer(middleware::from_fn(count_request))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(catch_panic))
        .with_state(engine)
}

/// Serves the API on `listener` until `shutdown`, then finishes the requests
/// in flight.
pub async fn run(listener: TcpListener, engine: Arc<Engine>, shutdown: CancellationToken) -> std::io::Result<()> {
    // Each request knows its peer's address: a form limits submissions per
    // address.
    let app = router(engine).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Answers a panicking handler with a logged 500, where the connection
/// would otherwise just drop: the client learns it was us, and the log
/// says where.
async fn catch_panic(request: Request, next: Next) -> Response {
    let mut handling = Box::pin(next.run(request));
    std::future::poll_fn(move |cx| {
        std::panic::catch_unwind(AssertUnwindSafe(|| handling.as_mut().poll(cx))).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // The panicked future is dropped, never polled again.
            Poll::Ready(ApiError::internal("a handler panicked", message).into_response())
        })
    })
    .await
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: extract::shorten(uri.path()),
    }
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    #[schema(example = "ok")]
    status: &'static str,
    /// Worker loops running in this process (`/health/ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    /// Why the host is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

#[utoipa::path(
    get, path = "/health/live", tag = "meta",
    responses((status = 200, description = "The process answers", body = Health)),
)]
async fn live() -> Json<Health> {
    Json(Health {
        status: "ok",
        workers: None,
        problem: None,
    })
}

/// Whether the host can do its work: the database answers and has every
/// migration, and its workers run.
async fn readiness(engine: &Engine) -> (StatusCode, Json<Health>) {
    let workers = engine.workers();
    let problem = match engine.readiness().await {
        Err(problem) => Some(problem),
        Ok(()) if workers == 0 => Some("no worker is running: nothing takes the runs".to_owned()),
        Ok(()) => None,
    };
    let status = if problem.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let health = Health {
        status: if problem.is_some() { "unavailable" } else { "ok" },
        workers: Some(workers),
        problem,
    };
    (status, Json(health))
}

#[utoipa::path(
    get, path = "/health/ready", tag = "meta",
    responses(
        (status = 200, description = "Ready: the database answers with every migration, and workers run", body = Health),
        (status = 503, description = "Not ready, and why", body = Health),
    ),
)]
async fn ready(State(engine): State<Arc<Engine>>) -> (StatusCode, Json<Health>) {
    readiness(&engine).await
}

#[utoipa::path(
    get, path = "/health", tag = "meta",
    responses(
        (status = 200, description = "Ready, as `/health/ready`", body = Health),
        (status = 503, description = "Not ready, and why", body = Health),
    ),
)]
async fn health(State(engine): State<Arc<Engine>>) -> (StatusCode, Json<Health>) {
    readiness(&engine).await
}

#[utoipa::path(
    get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "The host's metrics in Prometheus's text format", content_type = "text/plain", body = String)),
)]
async fn metrics_text(State(engine): State<Arc<Engine>>) -> Response {
    let metrics = crate::metrics::metrics();
    match engine.queue().await {
        Ok((depth, lag_ms)) => {
            metrics.queue_depth.set(depth as i64);
            metrics.queue_lag_seconds.set(lag_ms as f64 / 1000.0);
        }
        Err(error) => tracing::warn!(%error, "the queue could not be read for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(),
    )
        .into_response()
}

/// Counts each answered request by its route's template and status.
async fn count_request(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = crate::metrics::HttpLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    crate::metrics::metrics().http_requests.get_or_create(&labels).inc();
    response
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", body = Object)),
)]
async fn openapi_json() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let text = DOCUMENT.get_or_init(|| {
        openapi()
            .to_json()
            // Serialising a tree of strings and maps cannot fail.
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    });
    ([(header::CONTENT_TYPE, "application/json")], text.as_str())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use axum::routing::get;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_gets_a_logged_500_in_the_error_shape() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new()
            .route("/", get(boom))
            .layer(middleware::from_fn(catch_panic));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let reply = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            reply
        })
        .await
        .unwrap();
        assert!(reply.starts_with("HTTP/1.1 500"), "{reply}");
        assert!(
            reply.ends_with(r#"{"error":{"code":"internal","message":"internal error"}}"#),
            "{reply}"
        );
    }
}
