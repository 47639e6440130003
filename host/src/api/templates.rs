//! Installing and exporting templates over HTTP (admins only).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::auth::{Admin, Auth};
use super::error::ApiError;
use super::extract::{QueryParams, TomlBody};
use crate::domain::InstalledTemplate;
use crate::engine::{Engine, InstallReport};

/// An installed template as listed: its version, when it was installed,
/// the versions before, and what it declared.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TemplateListing {
    code: String,
    version: String,
    /// Milliseconds since 1970.
    installed_at: i64,
    #[schema(value_type = Object)]
    names: crate::domain::Localized,
    /// Earlier versions installed, oldest first, with when.
    #[schema(value_type = Vec<Object>)]
    history: Vec<crate::domain::InstalledVersion>,
    pipelines: Vec<String>,
    /// `kind.CODE` of each custom field.
    fields: Vec<String>,
    constants: Vec<String>,
    /// The robots it placed, by key (its `id`, else its place): the id each has here.
    robots: std::collections::BTreeMap<String, u64>,
    triggers: std::collections::BTreeMap<String, u64>,
}

impl From<InstalledTemplate> for TemplateListing {
    fn from(t: InstalledTemplate) -> Self {
        let placed = |id: u64| id != 0;
        TemplateListing {
            pipelines: (t.pipelines.iter())
                .filter(|p| !t.foreign.contains(&p.code))
                .map(|p| p.code.clone())
                .collect(),
            fields: t
                .fields
                .iter()
                .map(|f| format!("{}.{}", f.kind.as_str(), f.code))
                .collect(),
            constants: t.constants.iter().map(|c| c.code.clone()).collect(),
            robots: (t.robots.iter())
                .filter(|(_, r)| placed(r.id))
                .map(|(k, r)| (k.clone(), r.id))
                .collect(),
            triggers: (t.triggers.iter())
                .filter(|(_, r)| placed(r.id))
                .map(|(k, r)| (k.clone(), r.id))
                .collect(),
            code: t.code,
            version: t.version,
            installed_at: t.installed_at.0,
            names: t.names,
            history: t.history,
        }
    }
}

#[utoipa::path(
    get, path = "/api/templates", tag = "templates",
    responses((status = 200, description = "The installed templates, each with its version and what it added", body = Vec<TemplateListing>)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn list_templates(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<TemplateListing>>, ApiError> {
    let templates = engine.installed_templates().await?;
    Ok(Json(templates.into_iter().map(TemplateListing::from).collect()))
}

#[utoipa::path(
    post, path = "/api/templates", tag = "templates",
    request_body(
        content(("application/toml"), ("text/plain")),
        description = "A template file (format 1): pipelines, custom fields, constants, robots and triggers",
    ),
    responses((
        status = 200,
        description = "What was installed (added, updated), what was kept as the portal or the admin has it, \
            what the new version no longer has, and the constants still to bind; `unchanged` says why nothing was \
            done when this version is installed already. An older version than the one installed is refused (422).",
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
