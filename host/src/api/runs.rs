//! The runs robots made: listed with filters and paged, read one by one, and
//! dead ones put back in the queue.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::auth::{Admin, AnyRole, Auth};
use super::error::ApiError;
use super::extract::{JsonBody, PathParams, QueryParams};
use crate::domain::{EntityRef, Run, RunStatus};
use crate::engine::Engine;
use crate::storage::RunFilter;

#[utoipa::path(
    get, path = "/api/runs", tag = "runs",
    params(
        ("entity" = Option<String>, Query, description = "Only runs on this entity, such as `deal:42`"),
        ("status" = Option<String>, Query, description = "Only runs in this status, such as `dead`"),
        ("robot" = Option<u64>, Query, description = "Only runs of this robot binding"),
        ("plugin" = Option<String>, Query, description = "Only runs of the robots placed from this plugin"),
        ("since" = Option<String>, Query, description = "Only runs created at or after this moment (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Only runs created before this moment (RFC 3339)"),
        ("order" = Option<String>, Query, description = "`oldest` first (the default) or `newest` first"),
        ("before" = Option<u64>, Query, description = "Only runs numbered below this: the next page newest first"),
        ("after" = Option<u64>, Query, description = "Only runs numbered above this: the next page oldest first"),
        ("limit" = Option<u32>, Query, description = "At most this many, 1 to 1000 (100)"),
    ),
    responses((status = 200, description = "Runs, each with its report", body = Vec<Run>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_runs(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
) -> Result<Json<Vec<Run>>, ApiError> {
    let query = query.allow(&[
        "entity", "status", "robot", "plugin", "since", "until", "order", "before", "after", "limit",
    ])?;
    let newest_first = match query.text("order") {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(ApiError::BadQuery {
                field: "order".into(),
                message: format!("`order` is `oldest` or `newest`, not `{other}`"),
            });
        }
    };
    let mut robots: Vec<u64> = query.parse("robot")?.into_iter().collect();
    if let Some(plugin) = query.text("plugin") {
        let placed = engine.placed_robots(plugin);
        robots = match robots.is_empty() {
            true => placed,
            false => robots.into_iter().filter(|r| placed.contains(r)).collect(),
        };
        if robots.is_empty() {
            // No robot of it is placed: no run can match.
            return Ok(Json(Vec::new()));
        }
    }
    let filter = RunFilter {
        entity: query.parse::<EntityRef>("entity")?,
        status: query.parse::<RunStatus>("status")?,
        robots,
        since: query.parse("since")?,
        until: query.parse("until")?,
        before: query.parse("before")?,
        after: query.parse("after")?,
        newest_first,
    };
    Ok(Json(engine.store().runs_where(&filter, query.limit()?).await?))
}

#[utoipa::path(
    get, path = "/api/runs/{id}", tag = "runs",
    params(("id" = u64, Path)),
    responses((status = 200, description = "The run: status, cause, attempts and the last attempt's report", body = Run)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn get_run(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Run>, ApiError> {
    let id = path.id("id")?;
    let run = engine.store().run(id).await?;
    run.map(Json)
        .ok_or_else(|| ApiError::not_found(Some("id"), format!("run {id}")))
}

/// Dead runs to run again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RetryRequest {
    ids: Vec<u64>,
}

/// What became of each run named.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Retried {
    /// Back in the queue, due now, with their attempts anew.
    retried: Vec<u64>,
    /// Not dead (running, done, waiting) or not found: left as they are.
    not_dead: Vec<u64>,
}

/// The most runs one request retries.
const MAX_RETRY: usize = 1000;

#[utoipa::path(
    post, path = "/api/runs/retry", tag = "runs",
    request_body = RetryRequest,
    responses((status = 200, description = "The dead runs put back in the queue, and those that were not dead", body = Retried)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn retry_runs(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    JsonBody(request): JsonBody<RetryRequest>,
) -> Result<Json<Retried>, ApiError> {
    if request.ids.is_empty() || request.ids.len() > MAX_RETRY {
        return Err(ApiError::invalid("ids", format!("name 1 to {MAX_RETRY} runs")));
    }
    let (retried, not_dead) = engine.retry_dead(&request.ids).await?;
    Ok(Json(Retried { retried, not_dead }))
}
