//! Building a pipeline from the board: a new pipeline with its first stage,
//! stages added or removed, and the triggers of a stage. Robots have their
//! own module ([`super::robot`]). Each form is checked by the engine, as
//! the API's requests are; nothing is saved while any problem is left.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::forms::{FormPage, Input, admin_form, admin_only, problem_of, value};
use super::session::Session;
use super::text::{Lang, Text};
use super::{Frame, form_fields};
use crate::domain::{Condition, EntityKind, Pipeline, Semantic, Stage, TriggerBinding};
use crate::engine::Engine;

/// Whether `code` may name a pipeline or stage made on the board: it
/// becomes part of the board's addresses.
fn code_problem(code: &str, t: &Text) -> Option<String> {
    let fine =
        !code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (!fine).then(|| t.code_rule.to_owned())
}

fn semantic_choices(t: &Text) -> Vec<(String, String)> {
    vec![
        ("in-progress".into(), t.in_progress.into()),
        ("success".into(), t.success.into()),
        ("failure".into(), t.failure.into()),
    ]
}

fn semantic(code: &str) -> Semantic {
    match code {
        "success" => Semantic::Success,
        "failure" => Semantic::Failure,
        _ => Semantic::InProgress,
    }
}

fn pipeline_form(session: &Session, fields: &[(String, String)]) -> FormPage {
    let t = session.lang.text();
    let posted = |name: &str| value(fields, name).to_owned();
    let kinds = EntityKind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), k.as_str().to_owned()))
        .collect();
    let kind = match posted("kind") {
        kind if kind.is_empty() => "deal".to_owned(),
        kind => kind,
    };
    FormPage {
        frame: Frame::of(session, "/board/new".into()),
        heading: t.new_pipeline.into(),
        lead: String::new(),
        action: "/board/new".into(),
        inputs: vec![
            Input::new("code", t.code, "text")
                .value(posted("code"))
                .required(true)
                .help(t.code_rule),
            Input::new("kind", t.kind, "select").value(kind).choices(kinds),
            Input::new("name", t.name, "text").value(posted("name")).required(true),
            Input::new("stage_code", t.stage_code, "text")
                .value(posted("stage_code"))
                .required(true)
                .heading(t.first_stage),
            Input::new("stage_name", t.name, "text")
                .value(posted("stage_name"))
                .required(true),
        ],
        problems: Vec::new(),
        submit: t.create,
        back: "/board".into(),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
}

pub async fn new_pipeline(session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    pipeline_form(&session, &[]).respond()
}

pub async fn post_pipeline(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let (lang, t) = (session.lang, session.lang.text());
    let text = |name: &str| value(&fields, name).trim().to_owned();
    let mut problems = Vec::new();
    let code = text("code");
    if let Some(problem) = code_problem(&code, t) {
        problems.push(("code".to_owned(), problem));
    } else if engine.pipelines().iter().any(|p| p.code == code) {
        problems.push(("code".to_owned(), t.code_taken.to_owned()));
    }
    let kind = text("kind").parse::<EntityKind>();
    if let Err(e) = &kind {
        problems.push(("kind".to_owned(), e.to_string()));
    }
    for name in ["name", "stage_name"] {
        if text(name).is_empty() {
            problems.push((name.to_owned(), t.required.to_owned()));
        }
    }
    let stage_code = text("stage_code");
    if let Some(problem) = code_problem(&stage_code, t) {
        problems.push(("stage_code".to_owned(), problem));
    }
    if problems.is_empty()
        && let Ok(kind) = kind
    {
        let pipeline = Pipeline {
            code: code.clone(),
            kind,
            names: [(lang.code().to_owned(), text("name"))].into(),
            stages: vec![Stage {
                code: stage_code,
                names: [(lang.code().to_owned(), text("stage_name"))].into(),
                semantic: Semantic::InProgress,
            }],
        };
        match engine.put_pipeline(&pipeline).await {
            Ok(()) => return Redirect::to(&format!("/board/{code}")).into_response(),
            Err(e) => problems.push(problem_of(e)),
        }
    }
    pipeline_form(&session, &fields)
        .with_problems(problems, |field| (field == "stages").then(|| "stage_code".into()))
        .respond()
}

fn pipeline_of(engine: &Engine, code: &str) -> Option<Pipeline> {
    engine.pipelines().into_iter().find(|p| p.code == code)
}

fn stage_form(session: &Session, pipeline: &Pipeline, fields: &[(String, String)]) -> FormPage {
    let (lang, t) = (session.lang, session.lang.text());
    let posted = |name: &str| value(fields, name).to_owned();
    let code = &pipeline.code;
    let places = pipeline
        .stages
        .iter()
        .map(|s| (s.code.clone(), lang.pick(&s.names, &s.code).to_owned()))
        .collect();
    // By default a new stage goes after the last stage in progress, before
    // the final ones.
    let after = match posted("after") {
        after if after.is_empty() => pipeline
            .stages
            .iter()
            .rfind(|s| s.semantic == Semantic::InProgress)
            .map(|s| s.code.clone())
            .unwrap_or_default(),
        after => after,
    };
    let semantic = match posted("semantic") {
        s if s.is_empty() => "in-progress".to_owned(),
        s => s,
    };
    FormPage {
        frame: Frame::of(session, format!("/board/{code}/stages/new")),
        heading: t.add_stage.into(),
        lead: lang.pick(&pipeline.names, code).to_owned(),
        action: format!("/board/{code}/stages/new"),
        inputs: vec![
            Input::new("code", t.stage_code, "text")
                .value(posted("code"))
                .required(true)
                .help(t.code_rule),
            Input::new("name", t.name, "text").value(posted("name")).required(true),
            Input::new("semantic", t.semantic, "select")
                .value(semantic)
                .choices(semantic_choices(t)),
            Input::new("after", t.place_after, "select")
                .value(after)
                .choices(places),
        ],
        problems: Vec::new(),
        submit: t.create,
        back: format!("/board/{code}"),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
}

pub async fn new_stage(State(engine): State<Arc<Engine>>, session: Session, Path(code): Path<String>) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    match pipeline_of(&engine, &code) {
        Some(pipeline) => stage_form(&session, &pipeline, &[]).respond(),
        None => super::not_found(&session),
    }
}

/// Adds a stage where the form says: the pipeline is written whole, as
/// `PUT /api/pipelines/{code}` writes it.
pub async fn post_stage(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let (lang, t) = (session.lang, session.lang.text());
    let Some(pipeline) = pipeline_of(&engine, &code) else {
        return super::not_found(&session);
    };
    let text = |name: &str| value(&fields, name).trim().to_owned();
    let mut problems = Vec::new();
    let stage = text("code");
    if let Some(problem) = code_problem(&stage, t) {
        problems.push(("code".to_owned(), problem));
    } else if pipeline.stage(&stage).is_some() {
        problems.push(("code".to_owned(), t.code_taken.to_owned()));
    }
    if text("name").is_empty() {
        problems.push(("name".to_owned(), t.required.to_owned()));
    }
    if problems.is_empty() {
        let mut changed = pipeline.clone();
        let at = changed
            .stages
            .iter()
            .position(|s| s.code == text("after"))
            .map_or(changed.stages.len(), |i| i + 1);
        let new = Stage {
            code: stage,
            names: [(lang.code().to_owned(), text("name"))].into(),
            semantic: semantic(&text("semantic")),
        };
        changed.stages.insert(at, new);
        match engine.put_pipeline(&changed).await {
            Ok(()) => return Redirect::to(&format!("/board/{code}")).into_response(),
            Err(e) => problems.push(problem_of(e)),
        }
    }
    stage_form(&session, &pipeline, &fields)
        .with_problems(problems, |field| (field == "stages").then(|| "code".into()))
        .respond()
}

/// Removes an empty stage; the engine refuses one with entities in it, and
/// the board says so.
pub async fn delete_stage(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, stage)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    match engine.remove_stage(&code, &stage).await {
        Ok(()) => Redirect::to(&format!("/board/{code}")).into_response(),
        Err(e) => super::board_page(&engine, &session, &code, String::new(), Some(e.to_string()))
            .await
            .unwrap_or_else(IntoResponse::into_response),
    }
}

fn trigger_form(
    engine: &Engine,
    session: &Session,
    pipeline: &Pipeline,
    trigger: &TriggerBinding,
    fields: &[(String, String)],
) -> FormPage {
    let (lang, t) = (session.lang, session.lang.text());
    let posted = |name: &str| value(fields, name).to_owned();
    let code = &pipeline.code;
    let catalog = engine
        .trigger_catalog()
        .into_iter()
        .map(|c| {
            let name = lang.pick(&c.names, &c.code).to_owned();
            let name = match &c.plugin {
                Some(plugin) => format!("{name} ({plugin})"),
                None => name,
            };
            (c.code, name)
        })
        .collect();
    let (action, heading) = match trigger.id {
        0 => (
            format!("/board/{code}/stages/{}/triggers/new", trigger.stage),
            t.add_trigger.to_owned(),
        ),
        id => (format!("/board/{code}/triggers/{id}"), t.trigger.to_owned()),
    };
    FormPage {
        frame: Frame::of(session, action.clone()),
        heading,
        lead: stage_text(pipeline, &trigger.stage, lang),
        action,
        inputs: vec![
            Input::new("code", t.trigger_code, "suggest")
                .value(posted("code"))
                .choices(catalog)
                .required(true)
                .help(t.trigger_code_help),
            Input::new("condition", t.condition_label, "area")
                .value(posted("condition"))
                .help(t.condition_help),
            Input::new("allow_backwards", t.allow_backwards, "check").value(posted("allow_backwards")),
            Input::new("leave_final", t.leave_final, "check").value(posted("leave_final")),
            Input::new("schedule", t.schedule, "text")
                .value(posted("schedule"))
                .help(t.schedule_help),
        ],
        problems: Vec::new(),
        submit: t.save,
        back: format!("/board/{code}"),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
}

fn stage_text(pipeline: &Pipeline, stage: &str, lang: Lang) -> String {
    let stage = pipeline.stage(stage).map_or(stage, |s| lang.pick(&s.names, &s.code));
    format!("{} · {stage}", lang.pick(&pipeline.names, &pipeline.code))
}

/// A trigger as its form posts it.
fn trigger_fields(trigger: &TriggerBinding) -> Vec<(String, String)> {
    let check = |on: bool| if on { "on" } else { "" }.to_owned();
    let condition = trigger.condition.as_ref().and_then(|c| serde_json::to_string(c).ok());
    vec![
        ("code".into(), trigger.code.clone()),
        ("condition".into(), condition.unwrap_or_default()),
        ("allow_backwards".into(), check(trigger.allow_backwards)),
        ("leave_final".into(), check(trigger.leave_final)),
        ("schedule".into(), trigger.schedule.clone().unwrap_or_default()),
    ]
}

/// Reads a trigger's form over `trigger` (its id and place).
fn read_trigger(
    mut trigger: TriggerBinding,
    fields: &[(String, String)],
    t: &Text,
) -> (TriggerBinding, Vec<(String, String)>) {
    let mut problems = Vec::new();
    trigger.code = value(fields, "code").trim().to_owned();
    trigger.allow_backwards = value(fields, "allow_backwards") == "on";
    trigger.leave_final = value(fields, "leave_final") == "on";
    trigger.schedule = Some(value(fields, "schedule").trim().to_owned()).filter(|s| !s.is_empty());
    let condition = value(fields, "condition").trim();
    trigger.condition = None;
    if !condition.is_empty() {
        match serde_json::from_str::<Condition>(condition) {
            Ok(c) => trigger.condition = Some(c),
            Err(e) => problems.push(("condition".into(), format!("{}: {e}", t.not_a_condition))),
        }
    }
    (trigger, problems)
}

fn new_trigger_on(code: &str, stage: &str) -> TriggerBinding {
    TriggerBinding {
        id: 0,
        pipeline: code.to_owned(),
        stage: stage.to_owned(),
        code: String::new(),
        condition: None,
        allow_backwards: false,
        leave_final: false,
        schedule: None,
    }
}

pub async fn new_trigger(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, stage)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    match pipeline_of(&engine, &code).filter(|p| p.stage(&stage).is_some()) {
        Some(pipeline) => trigger_form(&engine, &session, &pipeline, &new_trigger_on(&code, &stage), &[]).respond(),
        None => super::not_found(&session),
    }
}

pub async fn post_new_trigger(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, stage)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    match pipeline_of(&engine, &code).filter(|p| p.stage(&stage).is_some()) {
        Some(pipeline) => save_trigger(&engine, &session, &pipeline, new_trigger_on(&code, &stage), &fields).await,
        None => super::not_found(&session),
    }
}

fn placed_trigger(engine: &Engine, code: &str, id: u64) -> Option<(Pipeline, TriggerBinding)> {
    let trigger = engine.trigger_binding(id).filter(|t| t.pipeline == code)?;
    Some((pipeline_of(engine, code)?, trigger))
}

pub async fn edit_trigger(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, id)): Path<(String, u64)>,
) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    match placed_trigger(&engine, &code, id) {
        Some((pipeline, trigger)) => {
            trigger_form(&engine, &session, &pipeline, &trigger, &trigger_fields(&trigger)).respond()
        }
        None => super::not_found(&session),
    }
}

pub async fn post_trigger(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, id)): Path<(String, u64)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    match placed_trigger(&engine, &code, id) {
        Some((pipeline, trigger)) => save_trigger(&engine, &session, &pipeline, trigger, &fields).await,
        None => super::not_found(&session),
    }
}

async fn save_trigger(
    engine: &Engine,
    session: &Session,
    pipeline: &Pipeline,
    base: TriggerBinding,
    fields: &[(String, String)],
) -> Response {
    let (trigger, mut problems) = read_trigger(base, fields, session.lang.text());
    // What the engine finds, but for fields the form could not even read.
    for (field, problem) in engine.trigger_problems(&trigger) {
        if !problems.iter().any(|(f, _)| *f == field) {
            problems.push((field, problem));
        }
    }
    if problems.is_empty() {
        let saved = match trigger.id {
            0 => engine.add_trigger(&trigger).await.map(|_| ()),
            _ => engine.replace_trigger(&trigger).await,
        };
        match saved {
            Ok(()) => return Redirect::to(&format!("/board/{}", pipeline.code)).into_response(),
            Err(e) => problems.push(problem_of(e)),
        }
    }
    trigger_form(engine, session, pipeline, &trigger, fields)
        .with_problems(problems, |_| None)
        .respond()
}

pub async fn delete_trigger(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, id)): Path<(String, u64)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let Some((_, trigger)) = placed_trigger(&engine, &code, id) else {
        return super::not_found(&session);
    };
    match engine.remove_trigger(&code, &trigger.stage, id).await {
        Ok(()) => Redirect::to(&format!("/board/{code}")).into_response(),
        Err(e) => crate::api::ApiError::from(e).into_response(),
    }
}
