//! Custom fields: declared per entity kind; every write of a `UF_` field is
//! checked against its declaration. Every token may read them; only admins
//! declare, change and remove them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value as JsonValue, json};

use super::auth::{Admin, AnyRole, Auth};
use super::automation::with_path_key;
use super::error::ApiError;
use super::extract::{JsonBody, JsonObject, PathParams};
use crate::domain::FieldDecl;
use crate::engine::{Engine, Misfits};

#[utoipa::path(
    get, path = "/api/fields", tag = "fields",
    responses((status = 200, description = "Every declared custom field, by kind and code", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_fields(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<FieldDecl>>, ApiError> {
    Ok(Json(engine.store().custom_fields().await?))
}

#[utoipa::path(
    put, path = "/api/fields/{kind}/{code}", tag = "fields",
    params(("kind" = String, Path, description = "lead, deal, contact, company, task or activity"),
        ("code" = String, Path, description = "Such as `UF_SEGMENT`")),
    request_body(content = Object, description = "`type` (text, integer, decimal, money, boolean, date, datetime, \
        user, entity, option, file); optional `names` ({\"en\": ...}), `options` ([{\"code\", \"names\"}], an \
        option field's), `multiple`, `required` (false)"),
    responses((status = 200, description = "`field` as declared, and `misfits`: stored values that no longer fit it \
        (`count`, `examples`); they stay as they are", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_field(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<Json<JsonValue>, ApiError> {
    let body = with_path_key(body, "kind", JsonValue::from(path.kind()?.as_str()))?;
    let field: FieldDecl = with_path_key(body, "code", JsonValue::from(path.text("code")?))?;
    let misfits = engine.declare_field(&field).await?;
    Ok(Json(json!({ "field": field, "misfits": misfits })))
}

#[utoipa::path(
    delete, path = "/api/fields/{kind}/{code}", tag = "fields",
    params(("kind" = String, Path), ("code" = String, Path)),
    responses((status = 200, description = "The values stored under it, which stay and no longer fit \
        (`count`, `examples`)", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn remove_field(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Misfits>, ApiError> {
    Ok(Json(engine.remove_field(path.kind()?, path.text("code")?).await?))
}

#[utoipa::path(
    get, path = "/api/fields/misfits", tag = "fields",
    responses((status = 200, description = "Stored values that do not fit their field's declaration, and required \
        fields left empty: `count` and the first `examples` (`entity`, `field`, `problem`)", body = Object)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_misfits(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Misfits>, ApiError> {
    Ok(Json(engine.field_misfits(None, None).await?))
}
