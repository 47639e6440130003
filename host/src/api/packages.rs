//! Plugin packages and the publishers trusted to sign them (admins only).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::auth::{Admin, Auth};
use super::error::ApiError;
use super::extract::{JsonBody, PackageBody, PathParams, QueryParams};
use crate::domain::Permission;
use crate::engine::{Engine, PackageReport};
use crate::package::TrustSpec;

/// An installed package's active version.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PackageInfo {
    name: String,
    version: String,
    publisher: String,
    signed: bool,
    #[schema(value_type = Vec<String>)]
    approved: Vec<Permission>,
}

#[utoipa::path(
    post, path = "/api/packages", tag = "packages",
    params(("approve" = Option<String>, Query, description = "The permissions approved, comma-separated (`crm-read,read:deal,field:UF_X`); all the package requests must be")),
    request_body(content(("application/gzip"), ("application/octet-stream")), description = "The package archive, up to 32 MiB"),
    responses((status = 200, description = "Installed or upgraded: the capabilities granted, added and dropped", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn install_package(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
    PackageBody(archive): PackageBody,
) -> Result<Json<PackageReport>, ApiError> {
    let query = query.allow(&["approve"])?;
    let approved: Vec<Permission> =
        super::plugins::grants(query.parse::<String>("approve")?.as_deref().unwrap_or(""), "approve")?;
    let handle = tokio::runtime::Handle::current();
    // Compiling components takes seconds of CPU: off the runtime's threads.
    let installer = engine.clone();
    let report =
        tokio::task::spawn_blocking(move || handle.block_on(installer.install_package_trusted(&archive, &approved)))
            .await
            .map_err(|e| ApiError::internal("installing a package panicked", e))??;
    Ok(Json(report))
}

#[utoipa::path(
    get, path = "/api/packages", tag = "packages",
    responses((status = 200, description = "Installed packages, by name", body = Vec<PackageInfo>)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn list_packages(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<PackageInfo>>, ApiError> {
    let packages = engine.store().packages().await?;
    Ok(Json(
        packages
            .into_iter()
            .map(|p| PackageInfo {
                name: p.name,
                version: p.version,
                publisher: p.publisher,
                signed: p.signed,
                approved: p.approved,
            })
            .collect(),
    ))
}

#[utoipa::path(
    post, path = "/api/packages/{name}/rollback", tag = "packages",
    params(("name" = String, Path)),
    responses((status = 200, description = "Back at the version installed before", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn rollback_package(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<PackageReport>, ApiError> {
    Ok(Json(engine.rollback_package(path.text("name")?).await?))
}

/// The robots a forced removal disabled.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Removed {
    disabled_robots: Vec<u64>,
}

#[utoipa::path(
    delete, path = "/api/packages/{name}", tag = "packages",
    params(
        ("name" = String, Path),
        ("force" = Option<bool>, Query, description = "Remove it even while robots use it, disabling them"),
    ),
    responses((status = 200, description = "Removed", body = Removed)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn remove_package(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    query: QueryParams,
) -> Result<Json<Removed>, ApiError> {
    let query = query.allow(&["force"])?;
    let force = query.parse::<bool>("force")?.unwrap_or(false);
    let disabled_robots = engine.remove_package(path.text("name")?, force).await?;
    Ok(Json(Removed { disabled_robots }))
}

#[utoipa::path(
    get, path = "/api/trust", tag = "packages",
    responses((status = 200, description = "Trusted publishers (name → ed25519 public key in hex) and whether unsigned packages install", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn get_trust(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<TrustSpec>, ApiError> {
    Ok(Json(engine.trust().await?))
}

#[utoipa::path(
    put, path = "/api/trust", tag = "packages",
    request_body(content = Object, description = "`publishers`: name → ed25519 public key in hex; `allow_unsigned` (false)"),
    responses((status = 200, description = "The trust as stored", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_trust(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    JsonBody(spec): JsonBody<TrustSpec>,
) -> Result<Json<TrustSpec>, ApiError> {
    engine.set_trust(&spec).await?;
    Ok(Json(engine.trust().await?))
}
