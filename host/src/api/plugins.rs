//! Plugins: uploading a component with its grants, and listing what is
//! installed.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::auth::{Admin, AdminOrIntegrator, Auth};
use super::error::ApiError;
use super::extract::{JsonBody, JsonObject, PathParams, QueryParams, WasmBody, from_object};
use crate::domain::{Capability, Digest, Permission};
use crate::engine::Engine;

/// An installed plugin.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct PluginInfo {
    name: String,
    /// `sha256:<hex>` of the component's bytes.
    #[schema(value_type = String, example = "sha256:9f86d081884c7d65...")]
    digest: Digest,
    /// What the admin granted: capabilities, and the kinds and fields
    /// they reach (`*`: any).
    #[schema(value_type = Vec<String>, example = json!(["crm-read", "set-fields", "read:*", "write:deal", "field:UF_SEGMENT"]))]
    grants: Vec<Permission>,
    /// For a webhook plugin, the URL each run is posted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    /// The codes of the robots it describes (none for a webhook, or when
    /// it does not load).
    robots: Vec<String>,
    /// For a trigger plugin, the codes of the triggers it describes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    triggers: Vec<String>,
    /// Why the installed plugin does not load, when it does not: its
    /// robots fail until it is replaced or removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    broken: Option<String>,
}

fn robot_codes(engine: &Engine, name: &str) -> Vec<String> {
    engine.plugin_robots(name).into_iter().map(|r| r.code).collect()
}

#[utoipa::path(
    put, path = "/api/plugins/{name}", tag = "plugins",
    params(
        ("name" = String, Path, description = "Letters, digits, `_` and `-`"),
        ("grant" = Option<String>, Query, description = "Capabilities granted, comma-separated, such as `crm-read,set-fields`"),
    ),
    request_body(
        content(("application/wasm"), ("application/octet-stream")),
        description = "The binary WebAssembly component, up to 32 MiB",
    ),
    responses((status = 200, description = "The plugin installed (or replaced)", body = PluginInfo)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_plugin(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    query: QueryParams,
    WasmBody(wasm): WasmBody,
) -> Result<Json<PluginInfo>, ApiError> {
    let name = path.text("name")?.to_owned();
    let query = query.allow(&["grant"])?;
    let grants: Vec<Capability> = grants(query.parse::<String>("grant")?.as_deref().unwrap_or(""), "grant")?;
    let digest = Digest::of(&wasm);
    let (installing, granting) = (name.clone(), grants.clone());
    let handle = tokio::runtime::Handle::current();
    // Installing compiles the component with Cranelift: seconds of CPU that
    // must not stall the runtime's few worker threads (two on a small host).
    let installer = engine.clone();
    tokio::task::spawn_blocking(move || {
        handle.block_on(installer.install_plugin(&installing, Vec::from(wasm), granting))
    })
    .await
    .map_err(|e| ApiError::internal("installing a plugin panicked", e))??;
    let robots = robot_codes(&engine, &name);
    Ok(Json(PluginInfo {
        name,
        digest,
        grants: Permission::unscoped(grants),
        webhook: None,
        robots,
        triggers: Vec::new(),
        broken: None,
    }))
}

/// `crm-read,set-fields`, the query parameter `field`, as capabilities;
/// each named once.
/// A comma-separated list of capabilities or permissions, without repeats.
pub(super) fn grants<T>(list: &str, field: &str) -> Result<Vec<T>, ApiError>
where
    T: std::str::FromStr<Err = crate::domain::ValueError> + PartialEq,
{
    let mut grants = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let grant: T = item
            .parse()
            .map_err(|e: crate::domain::ValueError| ApiError::BadQuery {
                field: field.into(),
                message: format!("`{field}`: {e}"),
            })?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    Ok(grants)
}

#[utoipa::path(
    get, path = "/api/plugins", tag = "plugins",
    responses((status = 200, description = "Installed plugins, by name", body = Vec<PluginInfo>)),
    security(("bearer" = ["admin", "integrator"])),
)]
pub(super) async fn list_plugins(
    _auth: Auth<AdminOrIntegrator>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<PluginInfo>>, ApiError> {
    let plugins = engine.store().plugins().await?;
    Ok(Json(
        plugins
            .into_iter()
            .map(|p| PluginInfo {
                robots: robot_codes(&engine, &p.name),
                triggers: engine.plugin_triggers(&p.name).into_iter().map(|t| t.code).collect(),
                broken: engine.broken(&p.name).map(|b| b.reason),
                name: p.name,
                digest: p.digest,
                grants: p.grants,
                webhook: p.webhook,
            })
            .collect(),
    ))
}

/// A webhook plugin: its robots run by posting to `url`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSpec {
    url: String,
    #[serde(default)]
    grants: Vec<Capability>,
}

#[utoipa::path(
    put, path = "/api/webhooks/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Letters, digits, `_` and `-`")),
    request_body(content = Object, description = "`url` (plain `http://`, such as a handler on the local network) \
        and `grants`, the capabilities granted (`[\"set-fields\"]`)"),
    responses((status = 200, description = "The webhook plugin installed (or replaced)", body = PluginInfo)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_webhook(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<Json<PluginInfo>, ApiError> {
    let name = path.text("name")?.to_owned();
    let spec: WebhookSpec = from_object(body)?;
    engine.install_webhook(&name, &spec.url, spec.grants.clone()).await?;
    Ok(Json(PluginInfo {
        name,
        digest: Digest::of(spec.url.as_bytes()),
        grants: Permission::unscoped(spec.grants),
        webhook: Some(spec.url),
        robots: Vec::new(),
        triggers: Vec::new(),
        broken: None,
    }))
}

/// What a removal disabled.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RemovedPlugin {
    /// The robots that used the plugin, now disabled (only with `force`).
    disabled_robots: Vec<u64>,
}

#[utoipa::path(
    delete, path = "/api/plugins/{name}", tag = "plugins",
    params(
        ("name" = String, Path, description = "A plugin installed on its own (a package's plugins go with `DELETE /api/packages/{name}`)"),
        ("force" = Option<bool>, Query, description = "Disable the robots that use it instead of refusing"),
    ),
    responses((status = 200, description = "Removed, even when it did not load", body = RemovedPlugin)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn delete_plugin(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    query: QueryParams,
) -> Result<Json<RemovedPlugin>, ApiError> {
    let query = query.allow(&["force"])?;
    let force = query.parse::<bool>("force")?.unwrap_or(false);
    let disabled_robots = engine.remove_plugin(path.text("name")?, force).await?;
    Ok(Json(RemovedPlugin { disabled_robots }))
}
