//! The portal's people and settings: users, departments, constants and the
//! working-time calendar. Every token may read them; only admins change them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value as JsonValue;

use super::auth::{Admin, AnyRole, Auth};
use super::automation::with_path_key;
use super::error::ApiError;
use super::extract::{JsonBody, JsonObject, PathParams};
use crate::domain::{Absence, Calendar, Constants, Department, FieldValue, User};
use crate::engine::Engine;

#[utoipa::path(
    get, path = "/api/users", tag = "directory",
    responses((status = 200, description = "Every user, by id", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_users(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(engine.store().directory().await?.users))
}

#[utoipa::path(
    put, path = "/api/users/{id}", tag = "directory",
    params(("id" = u64, Path)),
    request_body(content = Object, description = "`name`; optional `department`, `active` (true), \
        `away` (`{\"from\": \"2026-12-01\", \"until\": \"2026-12-14\"}`, days included, `from` optional), \
        `hours` (their own `time_zone`, `work_start`, `work_end`, `weekend`; the portal's for what is left out); \
        `id` may be left out, else it must equal the path's"),
    responses((status = 200, description = "The user as stored", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_user(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<Json<User>, ApiError> {
    let user: User = with_path_key(body, "id", JsonValue::from(path.id("id")?))?;
    engine.put_user(&user).await?;
    Ok(Json(user))
}

#[utoipa::path(
    put, path = "/api/users/{id}/away", tag = "directory",
    params(("id" = u64, Path)),
    request_body(content = Object, description = "`until` (a date, included); optional `from` (a date, included; \
        else from now). Distribution among those present skips the user on these days, in their time zone"),
    responses(
        (status = 200, description = "The user as stored", body = Object),
        (status = 404, description = "No such user", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_absence(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(away): JsonBody<Absence>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(engine.set_absence(path.id("id")?, Some(away)).await?))
}

#[utoipa::path(
    delete, path = "/api/users/{id}/away", tag = "directory",
    params(("id" = u64, Path)),
    responses(
        (status = 200, description = "The user as stored, present", body = Object),
        (status = 404, description = "No such user", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn delete_absence(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<User>, ApiError> {
    Ok(Json(engine.set_absence(path.id("id")?, None).await?))
}

#[utoipa::path(
    get, path = "/api/departments", tag = "directory",
    responses((status = 200, description = "Every department, by id", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_departments(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<Department>>, ApiError> {
    Ok(Json(engine.store().directory().await?.departments))
}

#[utoipa::path(
    put, path = "/api/departments/{id}", tag = "directory",
    params(("id" = u64, Path)),
    request_body(content = Object, description = "`name`; optional `head` (a user id), `parent` (a department id); \
        `id` may be left out, else it must equal the path's"),
    responses((status = 200, description = "The department as stored", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_department(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<Json<Department>, ApiError> {
    let department: Department = with_path_key(body, "id", JsonValue::from(path.id("id")?))?;
    engine.put_department(&department).await?;
    Ok(Json(department))
}

#[utoipa::path(
    get, path = "/api/constants", tag = "directory",
    responses((status = 200, description = "Every constant: code to value, in the values' JSON form", body = Object)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_constants(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Constants>, ApiError> {
    Ok(Json(engine.store().constants().await?))
}

/// A constant's new value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConstantValue {
    /// In the values' JSON form: `"text"`, `42`, `{"user": 7}`, `null`...
    #[schema(value_type = Object)]
    value: FieldValue,
}

#[utoipa::path(
    put, path = "/api/constants/{code}", tag = "directory",
    params(("code" = String, Path, description = "Such as `Clerk`")),
    request_body = ConstantValue,
    responses((status = 200, description = "Every constant after the change", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_constant(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonBody<ConstantValue>,
) -> Result<Json<Constants>, ApiError> {
    let code = path.text("code")?;
    engine.set_constant(code, &body.value).await?;
    Ok(Json(engine.store().constants().await?))
}

#[utoipa::path(
    get, path = "/api/calendar", tag = "directory",
    responses((status = 200, description = "The working-time calendar", body = Object)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn get_calendar(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Calendar>, ApiError> {
    Ok(Json(engine.store().calendar().await?))
}

#[utoipa::path(
    put, path = "/api/calendar", tag = "directory",
    request_body(content = Object, description = "Optional `time_zone` (IANA, UTC), `work_start` (09:00:00), \
        `work_end` (18:00:00), `weekend` ([\"Sat\", \"Sun\"]), `holidays` ([\"2026-11-30\", \"2026-12-31..2027-01-08\"]: days or ranges)"),
    responses((status = 200, description = "The calendar as stored", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_calendar(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    JsonBody(calendar): JsonBody<Calendar>,
) -> Result<Json<Calendar>, ApiError> {
    engine.set_calendar(&calendar).await?;
    Ok(Json(calendar))
}
