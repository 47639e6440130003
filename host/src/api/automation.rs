//! Pipelines, and the robots and triggers placed on their stages. Every
//! token may read them; only admins change them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as JsonValue};

use super::auth::{Admin, AnyRole, Auth};
use super::error::ApiError;
use super::extract::{JsonBody, JsonObject, MAX_CODE, PathParams, from_object};
use crate::domain::{Pipeline, RobotBinding, TriggerBinding};
use crate::engine::Engine;

#[utoipa::path(
    get, path = "/api/pipelines", tag = "pipelines",
    responses((status = 200, description = "Every pipeline, by code", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_pipelines(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
) -> Result<Json<Vec<Pipeline>>, ApiError> {
    Ok(Json(engine.store().pipelines().await?))
}

#[utoipa::path(
    put, path = "/api/pipelines/{code}", tag = "pipelines",
    params(("code" = String, Path, description = "The pipeline's code, such as `general`")),
    request_body(content = Object, description = "`kind`, `names`, `stages` (each `code`, `names`, `semantic`); \
        `code` may be left out, else it must equal the path's"),
    responses((status = 200, description = "The pipeline as stored", body = Object)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn put_pipeline(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<Json<Pipeline>, ApiError> {
    let pipeline: Pipeline = with_path_key(body, "code", JsonValue::from(path.text("code")?))?;
    for (i, stage) in pipeline.stages.iter().enumerate() {
        check_code(&format!("stages[{i}].code"), &stage.code)?;
    }
    engine.put_pipeline(&pipeline).await?;
    Ok(Json(pipeline))
}

/// A body as a `T`, its `key` set to the path's `value`: the body may leave
/// it out, or repeat it, but not contradict the path.
pub(super) fn with_path_key<T: DeserializeOwned>(
    mut body: Map<String, JsonValue>,
    key: &str,
    value: JsonValue,
) -> Result<T, ApiError> {
    if let Some(given) = body.get(key)
        && *given != value
    {
        return Err(ApiError::invalid(
            key,
            format!("the body says {given} but the path says {value}; leave it out or make them equal"),
        ));
    }
    body.insert(key.to_owned(), value);
    from_object(body)
}

/// Takes the path's pipeline and stage, which must exist.
async fn stage_of(engine: &Engine, path: &PathParams) -> Result<(String, String), ApiError> {
    let code = path.text("code")?;
    let stage = path.text("stage")?;
    let pipeline = engine
        .store()
        .pipeline(code)
        .await?
        .ok_or_else(|| ApiError::not_found(Some("code"), format!("pipeline `{code}`")))?;
    if pipeline.stage(stage).is_none() {
        return Err(ApiError::not_found(
            Some("stage"),
            format!("stage `{stage}` of pipeline `{code}`"),
        ));
    }
    Ok((code.to_owned(), stage.to_owned()))
}

/// A robot or trigger binding from a body, with the id, pipeline and stage
/// the path gives it. Those keys are refused in the body: the id is the
/// host's to choose, and a pipeline or stage there would contradict the
/// route.
async fn binding<T: DeserializeOwned>(
    engine: &Engine,
    path: &PathParams,
    mut body: Map<String, JsonValue>,
) -> Result<T, ApiError> {
    let (pipeline, stage) = stage_of(engine, path).await?;
    for key in ["id", "pipeline", "stage"] {
        if body.contains_key(key) {
            return Err(ApiError::BadJson {
                field: Some(key.into()),
                message: format!("unknown field `{key}`: the id, pipeline and stage come from the path"),
            });
        }
    }
    body.insert("id".into(), JsonValue::from(0));
    body.insert("pipeline".into(), JsonValue::from(pipeline));
    body.insert("stage".into(), JsonValue::from(stage));
    from_object(body)
}

/// A code that becomes a database key; see [`MAX_CODE`].
fn check_code(field: &str, code: &str) -> Result<(), ApiError> {
    if code.chars().count() > MAX_CODE {
        return Err(ApiError::invalid(
            field,
            format!("a code is at most {MAX_CODE} characters"),
        ));
    }
    Ok(())
}

/// The id of a robot or trigger placed.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Created {
    pub id: u64,
}

#[utoipa::path(
    get, path = "/api/pipelines/{code}/stages/{stage}/robots", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path)),
    responses((status = 200, description = "The stage's robots, in order", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_robots(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Vec<RobotBinding>>, ApiError> {
    let (pipeline, stage) = stage_of(&engine, &path).await?;
    Ok(Json(engine.store().robots_at(&pipeline, &stage).await?))
}

#[utoipa::path(
    post, path = "/api/pipelines/{code}/stages/{stage}/robots", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path)),
    request_body(content = Object, description = "`plugin`, `robot`; optional `title`, `properties`, `recipient`, \
        `timing`, `condition`. No `id`, `pipeline` or `stage`: they come from the path"),
    responses((status = 201, description = "The robot's id", body = Created)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn add_robot(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let id = engine.add_robot(&binding(&engine, &path, body).await?).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

#[utoipa::path(
    get, path = "/api/pipelines/{code}/stages/{stage}/triggers", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path)),
    responses((status = 200, description = "The stage's triggers", body = Vec<Object>)),
    security(("bearer" = ["admin", "integrator", "manager"])),
)]
pub(super) async fn list_triggers(
    _auth: Auth<AnyRole>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<Json<Vec<TriggerBinding>>, ApiError> {
    let (pipeline, stage) = stage_of(&engine, &path).await?;
    Ok(Json(engine.store().triggers_at(&pipeline, &stage).await?))
}

#[utoipa::path(
    post, path = "/api/pipelines/{code}/stages/{stage}/triggers", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path)),
    request_body(content = Object, description = "`code` (the event's, such as `incoming_call`); optional `condition`, \
        `allow_backwards`, `schedule` (cron: `sec min hour day month weekday`, in the portal's time zone). No `id`, `pipeline` or `stage`: they come from the path"),
    responses((status = 201, description = "The trigger's id", body = Created)),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn add_trigger(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let id = engine.add_trigger(&binding(&engine, &path, body).await?).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

#[utoipa::path(
    delete, path = "/api/pipelines/{code}", tag = "pipelines",
    params(("code" = String, Path)),
    responses(
        (status = 204, description = "The pipeline is removed, with its robots and triggers"),
        (status = 409, description = "Entities are in the pipeline; move them first", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn remove_pipeline(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<StatusCode, ApiError> {
    engine.remove_pipeline(path.text("code")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/api/pipelines/{code}/stages/{stage}", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path)),
    responses(
        (status = 204, description = "The stage is removed, with its robots and triggers"),
        (status = 409, description = "Entities are in the stage; move them first", body = super::error::ErrorBody),
        (status = 422, description = "It is the pipeline's only stage", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn remove_stage(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<StatusCode, ApiError> {
    engine.remove_stage(path.text("code")?, path.text("stage")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/api/pipelines/{code}/stages/{stage}/robots/{id}", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path), ("id" = u64, Path, description = "The robot's id")),
    request_body(content = Object, description = "The whole binding, as `POST .../robots` takes it; it replaces the \
        robot's, which keeps its id and place. Runs already queued run with it"),
    responses((status = 204, description = "The robot is replaced")),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn replace_robot(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<StatusCode, ApiError> {
    let id = path.id("id")?;
    let robot = RobotBinding {
        id,
        ..binding(&engine, &path, body).await?
    };
    engine.replace_robot(&robot).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/api/pipelines/{code}/stages/{stage}/robots/{id}", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path), ("id" = u64, Path, description = "The robot's id")),
    responses((status = 204, description = "The robot is removed; its runs not started yet end cancelled \
        (`robot-removed`)")),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn remove_robot(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<StatusCode, ApiError> {
    let (pipeline, stage) = stage_of(&engine, &path).await?;
    engine.remove_robot(&pipeline, &stage, path.id("id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A stage's robots in their new order.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RobotOrder {
    /// Every robot of the stage, by id, each once.
    pub ids: Vec<u64>,
}

#[utoipa::path(
    put, path = "/api/pipelines/{code}/stages/{stage}/robots/order", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path)),
    request_body(content = RobotOrder, description = "`ids`: every robot of the stage, each once, in the order they \
        run; an \"after previous\" robot waits for the one before it in this order"),
    responses((status = 204, description = "The robots are in the new order")),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn order_robots(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<StatusCode, ApiError> {
    let (pipeline, stage) = stage_of(&engine, &path).await?;
    let order: RobotOrder = from_object(body)?;
    engine.order_robots(&pipeline, &stage, &order.ids).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/api/pipelines/{code}/stages/{stage}/triggers/{id}", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path), ("id" = u64, Path, description = "The trigger's id")),
    request_body(content = Object, description = "The whole binding, as `POST .../triggers` takes it; it replaces \
        the trigger's, which keeps its id"),
    responses((status = 204, description = "The trigger is replaced")),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn replace_trigger(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
    JsonBody(body): JsonObject,
) -> Result<StatusCode, ApiError> {
    let id = path.id("id")?;
    let trigger = TriggerBinding {
        id,
        ..binding(&engine, &path, body).await?
    };
    engine.replace_trigger(&trigger).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/api/pipelines/{code}/stages/{stage}/triggers/{id}", tag = "pipelines",
    params(("code" = String, Path), ("stage" = String, Path), ("id" = u64, Path, description = "The trigger's id")),
    responses((status = 204, description = "The trigger is removed")),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn remove_trigger(
    _auth: Auth<Admin>,
    State(engine): State<Arc<Engine>>,
    path: PathParams,
) -> Result<StatusCode, ApiError> {
    let (pipeline, stage) = stage_of(&engine, &path).await?;
    engine.remove_trigger(&pipeline, &stage, path.id("id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
