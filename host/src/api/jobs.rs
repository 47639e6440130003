//! Bulk jobs: a reassignment file is planned (what it will do, and the rows
//! it cannot apply with why), then started, watched and perhaps cancelled.
//! Admins make and steer them; every role may watch.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::{Admin, AnyRole, Auth};
use super::error::ApiError;
use super::extract::{CsvBody, PathParams, QueryParams};
use crate::domain::{EntityKind, Job, JobRow, ReassignSpec, RowStatus};
use crate::engine::Engine;

/// A yes/no query parameter; `default` when absent.
fn flag(query: &QueryParams, name: &str, default: bool) -> Result<bool, ApiError> {
    match query.text(name) {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ApiError::BadQuery {
            field: name.into(),
            message: format!("`{name}` is true or false, not `{other}`"),
        }),
    }
}

#[utoipa::path(
    post, path = "/api/jobs/reassign", tag = "jobs",
    params(
        ("kind" = Option<String>, Query, description = "The kind of entities a line names by number alone: lead, contact, company or deal"),
        ("deals" = Option<bool>, Query, description = "Also give the entity's open deals of the same responsible (true)"),
        ("activities" = Option<bool>, Query, description = "Also its activities not completed (true)"),
        ("tasks" = Option<bool>, Query, description = "Also its tasks not completed (true)"),
        ("batch" = Option<u32>, Query, description = "Rows per transaction (100)"),
        ("pause_ms" = Option<u64>, Query, description = "The pause after each batch (50)"),
        ("start" = Option<bool>, Query, description = "Start at once rather than only plan (false)"),
    ),
    request_body(content(("text/csv"), ("text/plain")), description = "Lines of `id, new responsible`: the id as \
        `42` or `company:42`, the responsible as a user's number or name; a first line naming the columns is skipped"),
    responses((status = 201, description = "The job, planned (or running with `start`): `plan` counts what it will \
        change and the rows it cannot apply, which `GET /api/jobs/{id}/rows?status=failed` lists with why", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn plan_reassignment(
    auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
    CsvBody(file): CsvBody,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let query = query.allow(&["kind", "deals", "activities", "tasks", "batch", "pause_ms", "start"])?;
    let defaults = ReassignSpec::default();
    let spec = ReassignSpec {
        kind: query.parse::<EntityKind>("kind")?,
        deals: flag(&query, "deals", defaults.deals)?,
        activities: flag(&query, "activities", defaults.activities)?,
        tasks: flag(&query, "tasks", defaults.tasks)?,
        batch: query.parse("batch")?.unwrap_or(defaults.batch),
        pause_ms: query.parse("pause_ms")?.unwrap_or(defaults.pause_ms),
    };
    let mut job = engine.plan_reassignment(&file, spec, Some(&auth.author)).await?;
    if flag(&query, "start", false)? {
        job = engine.start_job(job.id).await?;
    }
    Ok((StatusCode::CREATED, Json(job)))
}

#[utoipa::path(
    get, path = "/api/jobs", tag = "jobs",
    params(("limit" = Option<u32>, Query, description = "How many, newest first (100)")),
    responses((status = 200, description = "The newest jobs, with their progress", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_jobs(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
) -> Result<Json<Vec<Job>>, ApiError> {
    let query = query.allow(&["limit"])?;
    Ok(Json(engine.store().jobs(query.limit()?).await?))
}

#[utoipa::path(
    get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = u64, Path)),
    responses((status = 200, description = "The job: `status`, `plan`, and `progress` (rows total, pending, applied, \
        failed, what they cascaded to, `percent`)", body = Object)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn get_job(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(engine.job(path.id("id")?).await?))
}

#[utoipa::path(
    get, path = "/api/jobs/{id}/rows", tag = "jobs",
    params(("id" = u64, Path),
        ("status" = Option<String>, Query, description = "pending, applied or failed"),
        ("after" = Option<u64>, Query, description = "Rows after this line (the next page)"),
        ("limit" = Option<u32>, Query, description = "How many (100)")),
    responses((status = 200, description = "The job's rows in line order: `line`, `entity`, `user`, `status`, \
        `error` (why a row failed; its entity is unchanged), and what it cascaded to", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn job_rows(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    query: QueryParams,
) -> Result<Json<Vec<JobRow>>, ApiError> {
    let query = query.allow(&["status", "after", "limit"])?;
    let id = path.id("id")?;
    let status = match query.text("status") {
        None => None,
        Some(text) => Some(RowStatus::parse(text).ok_or_else(|| ApiError::BadQuery {
            field: "status".into(),
            message: format!("`status` is pending, applied or failed, not `{text}`"),
        })?),
    };
    engine.job(id).await?;
    let rows = engine
        .store()
        .job_rows(id, status, query.number("after")?, query.limit()?)
        .await?;
    Ok(Json(rows))
}

#[utoipa::path(
    post, path = "/api/jobs/{id}/start", tag = "jobs",
    params(("id" = u64, Path)),
    responses((status = 200, description = "The job, running: a host applies it in batches", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn start_job(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(engine.start_job(path.id("id")?).await?))
}

#[utoipa::path(
    post, path = "/api/jobs/{id}/cancel", tag = "jobs",
    params(("id" = u64, Path)),
    responses((status = 200, description = "The job, cancelled: rows applied stay so, the rest stay pending", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn cancel_job(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(engine.cancel_job(path.id("id")?).await?))
}
