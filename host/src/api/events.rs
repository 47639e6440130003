//! Events posted from outside (a call came in...) that fire triggers, and
//! what robots sent: the outbox and users' notifications.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};

use super::auth::{AnyRole, Auth};
use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use crate::domain::{Entity, EntityKind, EntityRef, Fields, Fired, HitTarget, Value};
use crate::engine::Engine;
use crate::storage::OutboxMessage;

/// An event for one entity, or for the entities a lookup finds.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EventRequest {
    /// The trigger code, such as `incoming_call`.
    trigger: String,
    /// The entity, written `deal:42`; give this or `lookup`.
    #[serde(default, deserialize_with = "entity_ref")]
    #[schema(value_type = Option<String>, example = "deal:42")]
    entity: Option<EntityRef>,
    /// The entities whose field holds a value; give this or `entity`.
    #[serde(default)]
    lookup: Option<Lookup>,
    /// Data kept with the event, in the values' JSON form.
    #[serde(default)]
    #[schema(value_type = Object)]
    data: Fields,
}

/// "The contact whose PHONE is +79123456789".
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Lookup {
    #[schema(value_type = String, example = "contact")]
    kind: EntityKind,
    #[schema(example = "PHONE")]
    code: String,
    #[schema(value_type = Object, example = "+79123456789")]
    value: Value,
}

fn entity_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EntityRef>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// What an event did to each entity it found.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Moved {
    /// The entities moved, as they are now.
    #[schema(value_type = Vec<Object>)]
    moved: Vec<Entity>,
    /// Each entity found: the stage it moved to, or why it did not move
    /// (also recorded on its timeline).
    fired: Vec<Fired>,
}

#[utoipa::path(
    post, path = "/api/events", tag = "events",
    request_body = EventRequest,
    responses(
        (status = 200, description = "What the event did to each entity it found: moved to a trigger's stage (its robots queued), or why not", body = Moved),
        (status = 404, description = "The entity does not exist"),
    ),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn post_event(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    JsonBody(event): JsonBody<EventRequest>,
) -> Result<Json<Moved>, ApiError> {
    let target = match (event.entity, event.lookup) {
        (Some(r), None) => {
            if engine.store().entity(r).await?.is_none() {
                return Err(ApiError::not_found(Some("entity"), r.to_string()));
            }
            HitTarget::Entity(r)
        }
        (None, Some(Lookup { kind, code, value })) => HitTarget::Lookup { kind, code, value },
        _ => {
            return Err(ApiError::invalid(
                "entity",
                "give either `entity` (such as \"deal:42\") or `lookup`, not both or neither",
            ));
        }
    };
    let fired = engine.fire_trigger(&event.trigger, &target, &event.data).await?;
    let mut moved = Vec::new();
    for f in fired.iter().filter(|f| f.moved_to.is_some()) {
        moved.extend(engine.store().entity(f.entity).await?);
    }
    Ok(Json(Moved { moved, fired }))
}

/// A notification robots sent a user, with the entity it is about.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Notification {
    /// Milliseconds since 1970.
    at: i64,
    /// The robot's text.
    text: String,
    /// The entity it is about, such as `deal:12`; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "deal:12")]
    entity: Option<String>,
    /// That entity as people name it, such as `Deal #12 Pumps` (its kind
    /// and number alone once it is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Deal #12 Pumps")]
    entity_name: Option<String>,
    /// The text as shown: the entity's name first, such as
    /// `Deal #12 Pumps: call the client`.
    headline: String,
}

#[utoipa::path(
    get, path = "/api/notifications", tag = "runs",
    params(("user" = u64, Query, description = "The user notified")),
    responses((status = 200, description = "The user's notifications, oldest first", body = Vec<Notification>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_notifications(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
) -> Result<Json<Vec<Notification>>, ApiError> {
    let query = query.allow(&["user"])?;
    let user: u64 = query.parse("user")?.ok_or_else(|| ApiError::BadQuery {
        field: "user".into(),
        message: "`user`: name the user, such as `?user=7`".into(),
    })?;
    let found = engine.store().notifications(user).await?;
    let mut names: HashMap<EntityRef, String> = HashMap::new();
    let mut listed = Vec::with_capacity(found.len());
    for (at, text, about) in found {
        let name = match about {
            Some(about) => Some(match names.get(&about) {
                Some(name) => name.clone(),
                None => {
                    let name = match engine.store().entity(about).await? {
                        Some(entity) => entity.caption(),
                        None => about.caption(),
                    };
                    names.insert(about, name.clone());
                    name
                }
            }),
            None => None,
        };
        let headline = name
            .as_ref()
            .map_or_else(|| text.clone(), |name| format!("{name}: {text}"));
        listed.push(Notification {
            at: at.0,
            text,
            entity: about.map(|a| a.to_string()),
            entity_name: name,
            headline,
        });
    }
    Ok(Json(listed))
}

#[utoipa::path(
    get, path = "/api/outbox", tag = "runs",
    params(
        ("entity" = Option<String>, Query, description = "Only messages about this entity, such as `deal:42`"),
        ("limit" = Option<u32>, Query, description = "At most this many, 1 to 1000 (100)"),
    ),
    responses((status = 200, description = "Messages robots sent to clients, oldest first: channel, address, text, status", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_outbox(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    query: QueryParams,
) -> Result<Json<Vec<OutboxMessage>>, ApiError> {
    let query = query.allow(&["entity", "limit"])?;
    let entity: Option<EntityRef> = query.parse("entity")?;
    let limit = query.limit()?;
    Ok(Json(engine.store().outbox(entity, limit).await?))
}
