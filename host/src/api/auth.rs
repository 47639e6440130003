//! API tokens and roles.
//!
//! A token is 32 random bytes shown once as `rh_<hex>`; only its SHA-256 is
//! stored, so a leaked database does not leak working tokens. Each token has
//! one [`Role`]. A handler states who may call it by taking an
//! [`Auth<P>`](Auth) whose policy `P` lists the roles; a route without one
//! is public (only health and the OpenAPI document are).

use std::marker::PhantomData;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::ApiError;
use super::extract::JsonBody;
pub use super::role::Role;
use crate::domain::{Author, Timestamp, UserId};
use crate::engine::Engine;
use crate::storage::{Store, StoreError, StoredToken};

/// Which roles may call a route.
pub trait Policy: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

/// Only admins.
pub struct Admin;
/// Admins and managers: entity work.
pub struct AdminOrManager;
/// Admins and integrators: plugin listings.
pub struct AdminOrIntegrator;
/// Any valid token.
pub struct AnyRole;

impl Policy for Admin {
    const ROLES: &'static [Role] = &[Role::Admin];
}
impl Policy for AdminOrManager {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Manager];
}
impl Policy for AdminOrIntegrator {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Integrator];
}
impl Policy for AnyRole {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Integrator, Role::Manager];
}

/// Proof that the request carries a token whose role `P` allows. Take it as
/// a handler's first argument, so a caller without one learns that before
/// anything about its input.
pub struct Auth<P: Policy> {
    pub role: Role,
    /// The token's name and the CRM user it is bound to: the author of the
    /// changes made with it.
    pub author: Author,
    _policy: PhantomData<P>,
}

impl<P: Policy> FromRequestParts<Arc<Engine>> for Auth<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &Arc<Engine>) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let stored = engine.store().token(&hash(token)).await?;
        let Some(stored) = stored else {
            return Err(ApiError::Unauthorized {
                message: "the API token is not known",
            });
        };
        if stored.expires_at.is_some_and(|at| at <= engine.now()) {
            return Err(ApiError::Unauthorized {
                message: "the API token has expired; an admin makes a new one (POST /api/tokens)",
            });
        }
        let role: Role = stored
            .role
            .parse()
            .map_err(|e: String| ApiError::internal("a stored token has a bad role", e))?;
        if !P::ROLES.contains(&role) {
            return Err(ApiError::Forbidden {
                needs: P::ROLES,
                has: role,
            });
        }
        Ok(Auth {
            role,
            author: Author {
                token: stored.name,
                user: stored.user,
            },
            _policy: PhantomData,
        })
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let missing = ApiError::Unauthorized {
        message: "this route needs an `Authorization: Bearer <token>` header",
    };
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(missing)?
        .to_str()
        .map_err(|_| ApiError::Unauthorized {
            message: "the Authorization header is not text",
        })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized {
            message: "the Authorization header must be `Bearer <token>`",
        });
    }
    Ok(token.trim())
}

/// How a token is stored: the hex SHA-256 of its text.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a token with `role`, stores its hash under `name`, and returns its
/// text: the only time it is seen.
pub async fn create_token(store: &Store, name: &str, role: Role) -> Result<String, TokenError> {
    create_token_for(store, name, role, None, None).await
}

/// [`create_token`] that stops working at `expires_at`, and acts for CRM
/// user `user`: the author of the changes made with it.
pub async fn create_token_for(
    store: &Store,
    name: &str,
    role: Role,
    expires_at: Option<Timestamp>,
    user: Option<UserId>,
) -> Result<String, TokenError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("rh_{}", hex::encode(secret));
    let stored = StoredToken {
        hash: hash(&token),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        created_at: Timestamp::now(),
        expires_at,
        user,
    };
    store.add_token(&stored).await?;
    Ok(token)
}

/// A token to make.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who or what will use it, for the admin's records.
    pub name: String,
    pub role: Role,
    /// When it stops working (RFC 3339); never when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2027-06-01T00:00:00Z")]
    pub expires_at: Option<Timestamp>,
    /// The CRM user it acts for: the changes made with it record them as
    /// their author.
    #[serde(default)]
    pub user: Option<UserId>,
}

/// A new token's text, shown once, and its id.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenCreated {
    #[schema(example = "rh_3f2a...")]
    pub token: String,
    /// What lists and revokes it.
    #[schema(example = "9c1e4b7a20d3f615")]
    pub id: String,
}

/// The id of a token: the first 16 hex digits of its stored hash, which
/// tell nothing of the token itself.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_LEN).collect()
}

/// Whether `id` could be a token's id: what revoking takes.
pub fn is_token_id(id: &str) -> bool {
    id.len() == TOKEN_ID_LEN && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

const TOKEN_ID_LEN: usize = 16;

/// A token as listed: never its text.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    #[schema(example = "9c1e4b7a20d3f615")]
    pub id: String,
    pub name: String,
    pub role: Role,
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
}

/// The longest token name.
const MAX_NAME: usize = 200;

#[utoipa::path(
    post, path = "/api/tokens", tag = "tokens",
    request_body = NewToken,
    responses((status = 201, description = "The token's text, shown once", body = TokenCreated)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn post_token(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    JsonBody(new): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    if new.name.trim().is_empty() || new.name.chars().count() > MAX_NAME {
        return Err(ApiError::invalid(
            "name",
            format!("a token's name is 1 to {MAX_NAME} characters"),
        ));
    }
    if let Some(at) = new.expires_at
        && at <= engine.now()
    {
        return Err(ApiError::invalid(
            "expires_at",
            format!("{at} has passed; give a moment to come"),
        ));
    }
    if let Some(user) = new.user
        && engine.directory().user(user).is_none()
    {
        return Err(ApiError::invalid(
            "user",
            format!("no user {user}: add them first (PUT /api/users/{user})"),
        ));
    }
    let token = create_token_for(engine.store(), &new.name, new.role, new.expires_at, new.user)
        .await
        .map_err(|e| ApiError::internal("making a token failed", e))?;
    let id = token_id(&hash(&token));
    Ok((StatusCode::CREATED, Json(TokenCreated { token, id })))
}

#[utoipa::path(
    get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, description = "The API tokens, oldest first, without their text", body = Vec<TokenInfo>)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn list_tokens(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let mut listed = Vec::new();
    for token in engine.store().tokens().await? {
        let role = token
            .role
            .parse()
            .map_err(|e: String| ApiError::internal("a stored token has a bad role", e))?;
        listed.push(TokenInfo {
            id: token_id(&token.hash),
            name: token.name,
            role,
            created_at: token.created_at,
            expires_at: token.expires_at,
            user: token.user,
        });
    }
    Ok(Json(listed))
}

#[utoipa::path(
    delete, path = "/api/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's id, as listed")),
    responses(
        (status = 204, description = "Revoked: requests with it are refused from now on"),
        (status = 404, description = "No token has this id"),
    ),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn revoke_token(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: super::extract::PathParams,
) -> Result<StatusCode, ApiError> {
    let id = path.text("id")?;
    if !is_token_id(id) {
        return Err(ApiError::not_found(Some("id"), format!("token {id}")));
    }
    match engine.store().revoke_tokens(id).await? {
        0 => Err(ApiError::not_found(Some("id"), format!("token {id}"))),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}
