//! Entities for admins and managers (as the API lets them read): a
//! pipeline's entities as a kanban, each stage with its count and the
//! entities changed last; and an entity's page with its fields, its
//! timeline (each event with its time and who or what caused it) and its
//! runs.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;

use super::runs::RunRow;
use super::session::Session;
use super::text::Text;
use super::{Frame, page};
use crate::api::{ApiError, Role};
use crate::domain::{Directory, Entity, EntityRef, FieldValue, Semantic, Timestamp};
use crate::engine::Engine;

/// Entities shown per kanban column.
const COLUMN: u32 = 30;

/// The refusal of integrators, whom the API does not let read entities
/// either, if refused.
fn readers_only(session: &Session) -> Option<Response> {
    (session.role == Role::Integrator)
        .then(|| (StatusCode::FORBIDDEN, session.lang.text().not_for_role).into_response())
}

pub struct Card {
    pub link: String,
    pub reference: String,
    pub title: String,
    pub responsible: String,
    pub amount: String,
}

pub struct Column {
    pub code: String,
    pub name: String,
    pub semantic: &'static str,
    pub count: u64,
    pub cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "kanban.html")]
struct KanbanPage {
    frame: Frame,
    code: String,
    name: String,
    columns: Vec<Column>,
}

/// An entity's name as people know it: its title, else its name.
fn title(entity: &Entity) -> String {
    ["TITLE", "NAME"]
        .iter()
        .find_map(|code| match entity.field(code) {
            Some(FieldValue::Single(v)) => Some(v.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| entity.reference().to_string())
}

fn user_name(directory: &Directory, id: Option<u64>) -> String {
    match id {
        Some(id) => directory.user(id).map_or(format!("#{id}"), |u| u.name.clone()),
        None => String::new(),
    }
}

pub async fn kanban(State(engine): State<Arc<Engine>>, session: Session, Path(code): Path<String>) -> Response {
    if let Some(refused) = readers_only(&session) {
        return refused;
    }
    let lang = session.lang;
    let Some(pipeline) = engine.pipelines().into_iter().find(|p| p.code == code) else {
        return (StatusCode::NOT_FOUND, lang.text().not_found).into_response();
    };
    let store = engine.store();
    let counts = match store.stage_counts(&code).await {
        Ok(counts) => counts,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let directory = engine.directory();
    let mut columns = Vec::new();
    for stage in &pipeline.stages {
        let entities = match store.stage_entities(&code, &stage.code, COLUMN).await {
            Ok(entities) => entities,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let cards = entities
            .iter()
            .map(|e| Card {
                link: format!("/entities/{}/{}", e.kind.as_str(), e.id),
                reference: e.reference().to_string(),
                title: title(e),
                responsible: user_name(&directory, e.responsible),
                amount: match e.field("OPPORTUNITY") {
                    Some(FieldValue::Single(v)) => v.to_string(),
                    _ => String::new(),
                },
            })
            .collect();
        columns.push(Column {
            code: stage.code.clone(),
            name: lang.pick(&stage.names, &stage.code).to_owned(),
            semantic: match stage.semantic {
                Semantic::InProgress => "in-progress",
                Semantic::Success => "success",
                Semantic::Failure => "failure",
            },
            count: counts.get(&stage.code).copied().unwrap_or(0),
            cards,
        });
    }
    page(&KanbanPage {
        frame: Frame::of(&session, format!("/entities/{code}")),
        name: lang.pick(&pipeline.names, &code).to_owned(),
        code,
        columns,
    })
}

/// One line of an entity's timeline.
pub struct Line {
    pub at: String,
    pub what: String,
    /// Who or what caused it, in words, with a link when there is a page.
    pub by: String,
    pub by_link: Option<String>,
}

#[derive(Template)]
#[template(path = "entity.html")]
struct EntityPage {
    frame: Frame,
    reference: String,
    title: String,
    place: Option<(String, String)>,
    responsible: String,
    fields: Vec<(String, String)>,
    timeline: Vec<Line>,
    runs: Vec<RunRow>,
}

pub async fn entity(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((kind, id)): Path<(String, u64)>,
) -> Response {
    if let Some(refused) = readers_only(&session) {
        return refused;
    }
    let (lang, t) = (session.lang, session.lang.text());
    let Ok(reference) = format!("{kind}:{id}").parse::<EntityRef>() else {
        return super::not_found(&session);
    };
    let store = engine.store();
    let read = async {
        let entity = store.entity(reference).await?;
        let events = store.events(reference).await?;
        let comments = store.comments(reference).await?;
        let runs = store.runs(Some(reference), 200).await?;
        Ok::<_, crate::storage::StoreError>((entity, events, comments, runs))
    };
    let (entity, events, comments, runs) = match read.await {
        Ok((Some(entity), events, comments, runs)) => (entity, events, comments, runs),
        Ok((None, ..)) => return super::not_found(&session),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let directory = engine.directory();
    let zone = engine.time_zone();
    let pipelines = engine.pipelines();
    let stage_name = |pipeline: Option<&str>, stage: &str| {
        pipelines
            .iter()
            .find(|p| Some(p.code.as_str()) == pipeline)
            .and_then(|p| p.stage(stage))
            .map_or(stage.to_owned(), |s| lang.pick(&s.names, &s.code).to_owned())
    };
    let place = entity.pipeline.as_ref().map(|p| {
        let name = pipelines
            .iter()
            .find(|x| &x.code == p)
            .map_or(p.clone(), |x| lang.pick(&x.names, &x.code).to_owned());
        let stage = entity
            .stage
            .as_deref()
            .map_or(String::new(), |s| stage_name(Some(p), s));
        (format!("/board/{p}?entity={reference}"), format!("{name} · {stage}"))
    });
    let fields = (entity.fields.iter().chain(&entity.custom_fields))
        .map(|(code, value)| (code.clone(), value.to_string()))
        .collect();
    let mut timeline: Vec<(i64, Line)> = events
        .iter()
        .map(|(at, event, data)| {
            (
                at.0,
                event_line(event, data, &stage_name, t, &directory, &local(*at, zone)),
            )
        })
        .collect();
    for (at, text, run) in comments {
        let (by, by_link) = match run {
            Some(run) => (format!("{} #{run}", t.robot_run), Some(format!("/runs/{run}"))),
            None => (String::new(), None),
        };
        let line = Line {
            at: local(at, zone),
            what: format!("{}: {text}", t.comment),
            by,
            by_link,
        };
        timeline.push((at.0, line));
    }
    // Oldest first; stable, so events of one moment keep their order.
    timeline.sort_by_key(|(at, _)| *at);
    page(&EntityPage {
        frame: Frame::of(&session, format!("/entities/{kind}/{id}")),
        reference: reference.to_string(),
        title: title(&entity),
        place,
        responsible: user_name(&directory, entity.responsible),
        fields,
        timeline: timeline.into_iter().map(|(_, line)| line).collect(),
        runs: runs.iter().map(RunRow::of).collect(),
    })
}

/// A moment as people read it, in the portal's time zone.
pub(super) fn local(at: Timestamp, zone: chrono_tz::Tz) -> String {
    at.to_datetime()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// An event of the timeline in words, with what caused it.
fn event_line(
    event: &str,
    data: &Json,
    stage_name: &impl Fn(Option<&str>, &str) -> String,
    t: &Text,
    directory: &Directory,
    at: &str,
) -> Line {
    let text = |key: &str| data.get(key).and_then(Json::as_str).unwrap_or_default().to_owned();
    let pipeline = data.get("pipeline").and_then(Json::as_str);
    let what = match event {
        "created" => t.event_created.to_owned(),
        "stage-entered" => {
            let mut what = format!("{} {}", t.event_entered, stage_name(pipeline, &text("stage")));
            if let Some(previous) = data.get("previous").and_then(Json::as_str) {
                what = format!("{what} ({} {})", t.from, stage_name(pipeline, previous));
            }
            what
        }
        "stage-left" => format!("{} {}", t.event_left, stage_name(pipeline, &text("stage"))),
        "updated" => {
            let fields: Vec<&str> = (data.get("fields").and_then(Json::as_array))
                .map(|f| f.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            format!("{} {}", t.event_updated, fields.join(", "))
        }
        "responsible-changed" => {
            let user = |key: &str| user_name(directory, data.get(key).and_then(Json::as_u64));
            format!("{}: {} → {}", t.event_responsible, user("from"), user("to"))
        }
        "trigger-fired" => format!("{} {}", t.event_trigger, text("code")),
        "trigger-ignored" => format!("{} {}", t.event_trigger_ignored, text("code")),
        "received" => format!("{} {}", t.event_received, text("code")),
        other => other.to_owned(),
    };
    let (by, by_link) = if let Some(author) = data.get("by") {
        let token = author["token"].as_str().unwrap_or_default();
        match author["user"].as_u64() {
            Some(user) => (
                format!("{} ({} {token})", user_name(directory, Some(user)), t.via_token),
                None,
            ),
            None => (format!("{} {token}", t.api_token), None),
        }
    } else if let Some(run) = data.get("run").and_then(Json::as_u64) {
        (format!("{} #{run}", t.robot_run), Some(format!("/runs/{run}")))
    } else if let Some(job) = data.get("job").and_then(Json::as_u64) {
        (format!("{} #{job}", t.bulk_job), None)
    } else if let Some(endpoint) = data.get("endpoint").and_then(Json::as_str) {
        (format!("{} {endpoint}", t.endpoint), None)
    } else if data.pointer("/cause/cause").and_then(Json::as_str) == Some("trigger")
        && let Some(code) = data.pointer("/cause/code").and_then(Json::as_str)
    {
        (format!("{} {code}", t.trigger), None)
    } else {
        (String::new(), None)
    };
    Line {
        at: at.to_owned(),
        what,
        by,
        by_link,
    }
}
