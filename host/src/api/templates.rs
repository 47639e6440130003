//! Installing and exporting templates over HTTP (admins only).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::auth::{Admin, Auth};
use super::error::ApiError;
use super::extract::{QueryParams, TomlBody};
use crate::engine::{Engine, InstallReport};

#[utoipa::path(
    post, path = "/api/templates", tag = "templates",
    request_body(
        content(("application/toml"), ("text/plain")),
        description = "A template file (format 1): pipelines, custom fields, constants, robots and triggers",
    ),
    responses((
        status = 200,
        description = "What was installed, what was kept as the portal had it, and the constants still to bind",
        body = Object,
    )),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn install_template(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    TomlBody(text): TomlBody,
) -> Result<Json<InstallReport>, ApiError> {
    Ok(Json(engine.install_template(&text).await?))
}

#[utoipa::path(
    get, path = "/api/templates/export", tag = "templates",
    params(
        ("code" = Option<String>, Query, description = "The template's code (`portal`)"),
        ("version" = Option<String>, Query, description = "The template's version (`1.0.0`)"),
    ),
    responses((status = 200, description = "The portal's automation as a template (TOML)", content_type = "application/toml", body = String)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn export_template(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    let query = query.allow(&["code", "version"])?;
    let code = query.parse::<String>("code")?.unwrap_or_else(|| "portal".into());
    let version = query.parse::<String>("version")?.unwrap_or_else(|| "1.0.0".into());
    let text = engine.export_template(&code, &version).await?;
    Ok(([(header::CONTENT_TYPE, "application/toml; charset=utf-8")], text))
}
