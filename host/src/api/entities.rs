//! Entities: create, list, read, change, move, and their timeline. Entity
//! work is for admins and managers.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{AdminOrManager, Auth};
use super::error::ApiError;
use super::extract::{JsonBody, PathParams, QueryParams};
use crate::domain::{Entity, EntityKind, EntityRef, Fields, Timestamp};
use crate::engine::Engine;

/// The body of `POST /api/entities`: an entity to create. Every field may
/// be left out.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewEntityRequest {
    /// Optional in the shape so that leaving it out is answered as a
    /// missing value (422, naming `kind`), not as malformed JSON.
    pub kind: Option<EntityKind>,
    pub pipeline: Option<String>,
    /// The pipeline's first when left out.
    pub stage: Option<String>,
    pub responsible: Option<u64>,
    /// Standard fields; `UF_` codes among them are custom fields.
    pub fields: Fields,
    pub custom_fields: Fields,
    /// Entities to link it to, such as a deal's contact.
    pub links: Vec<EntityRef>,
}

impl NewEntityRequest {
    /// The entity to create (numbered and timed by the engine) and what to
    /// link it to: what [`Engine::create_entity`] takes.
    pub fn into_entity(self) -> Result<(Entity, Vec<EntityRef>), ApiError> {
        let kind = self.kind.ok_or_else(|| ApiError::invalid("kind", "is required"))?;
        let entity = Entity {
            kind,
            id: 0,
            pipeline: self.pipeline,
            stage: self.stage,
            responsible: self.responsible,
            fields: self.fields,
            custom_fields: self.custom_fields,
            created_at: Timestamp::default(),
            updated_at: Timestamp::default(),
        };
        Ok((entity, self.links))
    }
}

#[utoipa::path(
    post, path = "/api/entities", tag = "entities",
    request_body(content = Object, description = "`kind`; optional `pipeline`, `stage` (the pipeline's first when absent), \
        `responsible`, `fields`, `custom_fields` (values in their JSON forms), `links` (`[{\"kind\": \"contact\", \"id\": 3}]`)"),
    responses((status = 201, description = "The entity created; its stage's robots are queued", body = Object)),
    security(("bearer" = ["admin", "manager"])),
)]
pub(super) async fn create_entity(
    auth: Auth<AdminOrManager>,
    State(engine): State<Arc<Engine>>,
    JsonBody(request): JsonBody<NewEntityRequest>,
) -> Result<(StatusCode, Json<Entity>), ApiError> {
    let (entity, links) = request.into_entity()?;
    let entity = engine.create_entity_by(entity, links, Some(auth.author)).await?;
    Ok((StatusCode::CREATED, Json(entity)))
}

#[utoipa::path(
    get, path = "/api/entities/{kind}", tag = "entities",
    params(
        ("kind" = String, Path, description = "lead, deal, contact, company, task or activity"),
        ("after" = Option<u64>, Query, description = "Only entities with a larger id (for paging)"),
        ("limit" = Option<u32>, Query, description = "At most this many, 1 to 1000 (100)"),
    ),
    responses((status = 200, description = "Entities of the kind, by id", body = Vec<Object>)),
    security(("bearer" = ["admin", "manager"])),
)]
pub(super) async fn list_entities(
    _auth: Auth<AdminOrManager>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    query: QueryParams,
) -> Result<Json<Vec<Entity>>, ApiError> {
    let kind = path.kind()?;
    let query = query.allow(&["after", "limit"])?;
    let after = query.number("after")?;
    let limit = query.limit()?;
    Ok(Json(engine.store().entities(kind, after, limit).await?))
}

#[utoipa::path(
    get, path = "/api/entities/{kind}/{id}", tag = "entities",
    params(
        ("kind" = String, Path, description = "lead, deal, contact, company, task or activity"),
        ("id" = u64, Path),
    ),
    responses((status = 200, description = "The entity", body = Object)),
    security(("bearer" = ["admin", "manager"])),
)]
pub(super) async fn get_entity(
    _auth: Auth<AdminOrManager>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Entity>, ApiError> {
    let target = path.entity()?;
    let entity = engine.store().entity(target).await?;
    entity
        .map(Json)
        .ok_or_else(|| ApiError::not_found(None, target.to_string()))
}

/// Changes to an entity's fields and responsible.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EntityPatch {
    /// Standard fields to set; `null` removes one.
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Fields,
    /// Custom fields (`UF_...`) to set; `null` removes one.
    #[serde(default)]
    #[schema(value_type = Object)]
    custom_fields: Fields,
    /// The new responsible user.
    #[serde(default)]
    responsible: Option<u64>,
}

#[utoipa::path(
    patch, path = "/api/entities/{kind}/{id}", tag = "entities",
    params(("kind" = String, Path), ("id" = u64, Path)),
    request_body = EntityPatch,
    responses((status = 200, description = "The entity as changed", body = Object)),
    security(("bearer" = ["admin", "manager"])),
)]
pub(super) async fn patch_entity(
    auth: Auth<AdminOrManager>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(patch): JsonBody<EntityPatch>,
) -> Result<Json<Entity>, ApiError> {
    let target = path.entity()?;
    let entity = engine
        .update_entity_by(
            target,
            patch.fields,
            patch.custom_fields,
            patch.responsible,
            Some(&auth.author),
        )
        .await?;
    Ok(Json(entity))
}

/// Where to move an entity.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Move {
    /// Another pipeline of the entity's kind; its current one when absent.
    #[serde(default)]
    pipeline: Option<String>,
    stage: String,
}

#[utoipa::path(
    post, path = "/api/entities/{kind}/{id}/move", tag = "entities",
    params(("kind" = String, Path), ("id" = u64, Path)),
    request_body = Move,
    responses((status = 200, description = "The entity in its new stage; that stage's robots are queued", body = Object)),
    security(("bearer" = ["admin", "manager"])),
)]
pub(super) async fn move_entity(
    auth: Auth<AdminOrManager>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(to): JsonBody<Move>,
) -> Result<Json<Entity>, ApiError> {
    let target = path.entity()?;
    let entity = engine
        .move_entity_by(target, to.pipeline.as_deref(), &to.stage, Some(&auth.author))
        .await?;
    Ok(Json(entity))
}

/// What happened to an entity.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Timeline {
    /// Comments robots and people left, oldest first.
    comments: Vec<Comment>,
    /// Events (created, stage-entered, trigger-fired...), oldest first.
    events: Vec<Event>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Comment {
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    at: Timestamp,
    text: String,
    /// The run of the robot that wrote it; absent when a person did.
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Event {
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    at: Timestamp,
    event: String,
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

#[utoipa::path(
    get, path = "/api/entities/{kind}/{id}/timeline", tag = "entities",
    params(("kind" = String, Path), ("id" = u64, Path)),
    responses((status = 200, description = "The entity's comments and events", body = Timeline)),
    security(("bearer" = ["admin", "manager"])),
)]
pub(super) async fn timeline(
    _auth: Auth<AdminOrManager>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Timeline>, ApiError> {
    let target = path.entity()?;
    let store = engine.store();
    if store.entity(target).await?.is_none() {
        return Err(ApiError::not_found(None, target.to_string()));
    }
    let comments = store
        .comments(target)
        .await?
        .into_iter()
        .map(|(at, text, run)| Comment { at, text, run })
        .collect();
    let events = store
        .events(target)
        .await?
        .into_iter()
        .map(|(at, event, data)| Event { at, event, data })
        .collect();
    Ok(Json(Timeline { comments, events }))
}
