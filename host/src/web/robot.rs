//! Adding and changing a stage's robots from the board. A robot's form is
//! generated from its plugin's catalog (`describe`): each property by its
//! type (choices for options, one value per line when it takes several,
//! its default filled in), then to whom, when and on what condition, with
//! the document's fields and the portal's constants a click inserts. The
//! engine's own binding check ([`Engine::robot_problems`]) decides what is
//! valid, as it does for the API; nothing is saved while any problem is
//! left, and each is shown next to its field.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::forms::{FormPage, Input, admin_form, admin_only, problem_of, typed, value, values};
use super::session::Session;
use super::text::{Lang, Text};
use super::{Frame, form_fields};
use crate::domain::{
    Among, Condition, EntityKind, FieldDecl, FieldValue, IfEmpty, Pipeline, PropertySpec, Recipient, RelativeTo,
    RobotBinding, RobotInfo, Timing, Value, ValueType,
};
use crate::engine::Engine;

/// The recipient property: its value is the binding's recipient.
const RECIPIENT: &str = "recipient";

/// Units a delay is given in, in seconds.
const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)];

#[derive(serde::Deserialize)]
pub struct Choose {
    /// `plugin/robot`.
    robot: Option<String>,
}

/// A stage's new robot: the robots to choose from, then the chosen one's
/// form.
pub async fn new_robot(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, stage)): Path<(String, String)>,
    Query(choose): Query<Choose>,
) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let Some(pipeline) = stage_of(&engine, &code, &stage) else {
        return super::not_found(&session);
    };
    let Some((plugin, robot)) = choose.robot.as_deref().and_then(|r| r.split_once('/')) else {
        return choose_robot(&engine, &session, &pipeline, &stage);
    };
    let Some(info) = engine.plugin_robots(plugin).into_iter().find(|r| r.code == robot) else {
        return super::not_found(&session);
    };
    let binding = RobotBinding {
        id: 0,
        pipeline: code.clone(),
        stage: stage.clone(),
        plugin: plugin.to_owned(),
        robot: robot.to_owned(),
        title: String::new(),
        properties: info
            .properties
            .iter()
            .filter_map(|p| Some((p.code.clone(), p.default.clone()?)))
            .collect(),
        recipient: None,
        timing: Timing::default(),
        condition: None,
        fuel: None,
        disabled: None,
    };
    let fields = binding_fields(&binding, &info);
    robot_form(&engine, &session, &pipeline, &binding, &info, &fields)
        .await
        .respond()
}

/// The list of every robot the loaded plugins describe, each a link to its
/// form.
fn choose_robot(engine: &Engine, session: &Session, pipeline: &Pipeline, stage: &str) -> Response {
    let lang = session.lang;
    let t = lang.text();
    let mut choices = Vec::new();
    for plugin in engine.robot_plugins() {
        for robot in engine.plugin_robots(&plugin) {
            let name = lang.pick(&robot.names, &robot.code);
            let description = lang.pick(&robot.descriptions, "");
            choices.push((format!("{plugin}/{}", robot.code), format!("{name} — {description}")));
        }
    }
    let code = &pipeline.code;
    let input = Input::new("robot", t.robot, "select").choices(choices).required(true);
    FormPage {
        frame: Frame::of(session, format!("/board/{code}/stages/{stage}/robots/new")),
        heading: t.add_robot.to_owned(),
        lead: where_text(pipeline, stage, lang),
        action: format!("/board/{code}/stages/{stage}/robots/new"),
        inputs: vec![input],
        problems: Vec::new(),
        submit: t.next,
        back: format!("/board/{code}"),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
    .respond()
}

/// The chosen robot (the list's form is a GET, so the choice is a link
/// anyone may bookmark).
pub async fn post_new_robot(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, stage)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let Some(pipeline) = stage_of(&engine, &code, &stage) else {
        return super::not_found(&session);
    };
    let (plugin, robot) = (value(&fields, "plugin"), value(&fields, "robot"));
    if plugin.is_empty() {
        // The chooser's form: go to the chosen robot's.
        let robot = form_urlencoded::byte_serialize(robot.as_bytes()).collect::<String>();
        return Redirect::to(&format!("/board/{code}/stages/{stage}/robots/new?robot={robot}")).into_response();
    }
    let Some(info) = engine.plugin_robots(plugin).into_iter().find(|r| r.code == robot) else {
        return super::not_found(&session);
    };
    let base = RobotBinding {
        id: 0,
        pipeline: code.clone(),
        stage: stage.clone(),
        plugin: plugin.to_owned(),
        robot: robot.to_owned(),
        title: String::new(),
        properties: Default::default(),
        recipient: None,
        timing: Timing::default(),
        condition: None,
        fuel: None,
        disabled: None,
    };
    save(&engine, &session, &pipeline, base, &info, &fields).await
}

/// A placed robot's form.
pub async fn edit_robot(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, id)): Path<(String, u64)>,
) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let Some((pipeline, binding, info)) = placed(&engine, &code, id) else {
        return super::not_found(&session);
    };
    let fields = binding_fields(&binding, &info);
    robot_form(&engine, &session, &pipeline, &binding, &info, &fields)
        .await
        .respond()
}

pub async fn post_robot(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, id)): Path<(String, u64)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let Some((pipeline, binding, info)) = placed(&engine, &code, id) else {
        return super::not_found(&session);
    };
    save(&engine, &session, &pipeline, binding, &info, &fields).await
}

/// Removes a placed robot.
pub async fn delete_robot(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, id)): Path<(String, u64)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let Some(binding) = engine.robot_binding(id).filter(|r| r.pipeline == code) else {
        return super::not_found(&session);
    };
    match engine.remove_robot(&code, &binding.stage, id).await {
        Ok(()) => Redirect::to(&format!("/board/{code}")).into_response(),
        Err(e) => crate::api::ApiError::from(e).into_response(),
    }
}

/// Moves a placed robot one place earlier (`dir=up`) or later in its
/// stage.
pub async fn move_robot(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((code, id)): Path<(String, u64)>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let Some(binding) = engine.robot_binding(id).filter(|r| r.pipeline == code) else {
        return super::not_found(&session);
    };
    let (robots, _) = engine.stage_automation(&code, &binding.stage);
    let mut ids: Vec<u64> = robots.iter().map(|r| r.id).collect();
    if let Some(at) = ids.iter().position(|&r| r == id) {
        match value(&fields, "dir") {
            "up" if at > 0 => ids.swap(at, at - 1),
            "down" if at + 1 < ids.len() => ids.swap(at, at + 1),
            _ => {}
        }
    }
    match engine.order_robots(&code, &binding.stage, &ids).await {
        Ok(()) => Redirect::to(&format!("/board/{code}")).into_response(),
        Err(e) => crate::api::ApiError::from(e).into_response(),
    }
}

fn stage_of(engine: &Engine, code: &str, stage: &str) -> Option<Pipeline> {
    engine
        .pipelines()
        .into_iter()
        .find(|p| p.code == code)
        .filter(|p| p.stage(stage).is_some())
}

/// The robot `id` of pipeline `code`, with its pipeline and catalog entry.
fn placed(engine: &Engine, code: &str, id: u64) -> Option<(Pipeline, RobotBinding, RobotInfo)> {
    let binding = engine.robot_binding(id).filter(|r| r.pipeline == code)?;
    let pipeline = stage_of(engine, code, &binding.stage)?;
    let info = engine
        .plugin_robots(&binding.plugin)
        .into_iter()
        .find(|r| r.code == binding.robot)?;
    Some((pipeline, binding, info))
}

/// Reads the form over `base` and saves it if nothing is wrong; else draws
/// it again, as posted, with every problem.
async fn save(
    engine: &Engine,
    session: &Session,
    pipeline: &Pipeline,
    base: RobotBinding,
    info: &RobotInfo,
    fields: &[(String, String)],
) -> Response {
    let (binding, mut problems) = read_form(base, info, fields, session.lang.text());
    // What the engine finds, but for fields the form could not even read.
    for (field, problem) in engine.robot_problems(&binding) {
        if !problems.iter().any(|(f, _)| *f == field) {
            problems.push((field, problem));
        }
    }
    if problems.is_empty() {
        let saved = match binding.id {
            0 => engine.add_robot(&binding).await.map(|_| ()),
            _ => engine.replace_robot(&binding).await,
        };
        match saved {
            Ok(()) => return Redirect::to(&format!("/board/{}", pipeline.code)).into_response(),
            Err(e) => problems.push(problem_of(e)),
        }
    }
    robot_form(engine, session, pipeline, &binding, info, fields)
        .await
        .with_problems(problems, owner)
        .respond()
}

/// The input that shows a problem with a binding's field.
fn owner(field: &str) -> Option<String> {
    if let Some(code) = field.strip_prefix("properties.") {
        return Some(match code {
            RECIPIENT => RECIPIENT.to_owned(),
            code => format!("p.{code}"),
        });
    }
    if field == "timing.schedule" {
        return Some("schedule".into());
    }
    if field.starts_with("timing.") {
        return Some("when".into());
    }
    None
}

/// A group recipient as the form's choice: `among:USERS;DEPARTMENTS`
/// (those present) or `among-all:...`, ids separated by commas.
fn among_choice(among: &Among) -> String {
    let ids = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let how = if among.skip_absent { "among" } else { "among-all" };
    format!("{how}:{};{}", ids(&among.users), ids(&among.departments))
}

fn read_among(people: &str, skip_absent: bool) -> Option<Recipient> {
    let (users, departments) = people.split_once(';')?;
    let ids = |text: &str| -> Option<Vec<u64>> {
        (text.split(',').filter(|id| !id.trim().is_empty()))
            .map(|id| id.trim().parse().ok())
            .collect()
    };
    Some(Recipient::Among(Among {
        users: ids(users)?,
        departments: ids(departments)?,
        skip_absent,
    }))
}

/// A binding as the form posts it.
fn binding_fields(binding: &RobotBinding, info: &RobotInfo) -> Vec<(String, String)> {
    let mut fields = vec![("title".to_owned(), binding.title.clone())];
    for spec in &info.properties {
        if spec.code == RECIPIENT {
            continue;
        }
        let text = match binding.properties.get(&spec.code) {
            None | Some(FieldValue::Empty) => String::new(),
            Some(FieldValue::Single(v)) => form_text(v),
            Some(FieldValue::List(vs)) => vs.iter().map(form_text).collect::<Vec<_>>().join("\n"),
        };
        fields.push((format!("p.{}", spec.code), text));
    }
    let recipient = match &binding.recipient {
        None => String::new(),
        Some(Recipient::Responsible) => "responsible".into(),
        Some(Recipient::Supervisor) => "supervisor".into(),
        Some(Recipient::User(id)) => format!("user:{id}"),
        Some(Recipient::Constant(code)) => format!("constant:{code}"),
        Some(Recipient::Among(among)) => among_choice(among),
    };
    fields.push((RECIPIENT.into(), recipient));
    let timing = &binding.timing;
    let if_empty = match timing.relative_to.as_ref().map(|at| at.if_empty) {
        Some(IfEmpty::Skip) => "skip",
        _ => "wait",
    };
    let (when, seconds, field, direction) = match (&timing.relative_to, timing.delay_seconds) {
        _ if timing.schedule.is_some() => ("schedule", 0, String::new(), "after"),
        (Some(at), _) => {
            let direction = if at.offset_seconds < 0 { "before" } else { "after" };
            ("date", at.offset_seconds.unsigned_abs(), at.field.clone(), direction)
        }
        (None, 0) => ("now", 0, String::new(), "after"),
        (None, delay) => ("delay", delay, String::new(), "after"),
    };
    let (unit, size) = UNITS
        .into_iter()
        .find(|(_, size)| seconds % size == 0 && seconds > 0)
        .unwrap_or(("min", 60));
    let working = match (timing.working_time, timing.skip_outside_working_time) {
        (true, _) => "wait",
        (_, true) => "skip",
        _ => "",
    };
    let amount = if seconds == 0 {
        String::new()
    } else {
        (seconds / size).to_string()
    };
    let check = |on: bool| if on { "on" } else { "" }.to_owned();
    fields.extend([
        ("when".into(), when.into()),
        ("amount".into(), amount),
        ("unit".into(), unit.into()),
        ("date_field".into(), field),
        ("direction".into(), direction.into()),
        ("if_empty".into(), if_empty.into()),
        ("after_previous".into(), check(timing.after_previous)),
        ("schedule".into(), timing.schedule.clone().unwrap_or_default()),
        ("working".into(), working.into()),
        (
            "condition".into(),
            binding
                .condition
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok())
                .unwrap_or_default(),
        ),
        ("fuel".into(), binding.fuel.map(|f| f.to_string()).unwrap_or_default()),
    ]);
    fields
}

/// A value as typed in a form: an option's code, a number, a date as
/// written in JSON, a user's id.
fn form_text(value: &Value) -> String {
    match value {
        Value::User(id) => id.to_string(),
        Value::Boolean(true) => "Y".into(),
        Value::Boolean(false) => "N".into(),
        other => other.to_string(),
    }
}

/// The binding a posted form describes, over `base` (its id, place, plugin
/// and robot), with what in it cannot be read, by field.
fn read_form(
    mut binding: RobotBinding,
    info: &RobotInfo,
    fields: &[(String, String)],
    t: &Text,
) -> (RobotBinding, Vec<(String, String)>) {
    let mut problems = Vec::new();
    binding.title = value(fields, "title").trim().to_owned();
    binding.properties.clear();
    for spec in &info.properties {
        if spec.code == RECIPIENT {
            continue;
        }
        let name = format!("p.{}", spec.code);
        let texts = if spec.multiple {
            values(fields, &name)
        } else {
            let text = value(fields, &name).trim();
            if text.is_empty() {
                Vec::new()
            } else {
                vec![text.to_owned()]
            }
        };
        let typed: Result<Vec<Value>, String> = texts
            .iter()
            .map(|text| typed(spec.value_type, &spec.choices, text, t))
            .collect();
        match typed {
            Err(problem) => problems.push((format!("properties.{}", spec.code), problem)),
            Ok(typed) if typed.is_empty() => {}
            Ok(mut typed) if !spec.multiple => {
                binding
                    .properties
                    .insert(spec.code.clone(), FieldValue::Single(typed.remove(0)));
            }
            Ok(typed) => {
                binding.properties.insert(spec.code.clone(), FieldValue::List(typed));
            }
        }
    }
    binding.recipient = match value(fields, RECIPIENT) {
        "" => None,
        "responsible" => Some(Recipient::Responsible),
        "supervisor" => Some(Recipient::Supervisor),
        other => match other.split_once(':') {
            Some(("user", id)) => id.parse().ok().map(Recipient::User),
            Some(("constant", code)) => Some(Recipient::Constant(code.to_owned())),
            Some((how @ ("among" | "among-all"), people)) => read_among(people, how == "among"),
            _ => None,
        },
    };
    let mut timing = Timing {
        after_previous: value(fields, "after_previous") == "on",
        working_time: value(fields, "working") == "wait",
        skip_outside_working_time: value(fields, "working") == "skip",
        ..Timing::default()
    };
    let when = value(fields, "when");
    if when == "schedule" {
        timing.schedule = Some(value(fields, "schedule").trim().to_owned());
    }
    if when == "delay" || when == "date" {
        let size = UNITS
            .iter()
            .find(|(unit, _)| *unit == value(fields, "unit"))
            .map_or(60, |(_, size)| *size);
        let amount = value(fields, "amount").trim();
        match amount.parse::<u64>().ok().and_then(|a| a.checked_mul(size)) {
            Some(seconds) if when == "delay" => timing.delay_seconds = seconds,
            Some(seconds) => {
                let field = value(fields, "date_field").trim();
                let offset = i64::try_from(seconds).unwrap_or(i64::MAX);
                if field.is_empty() {
                    problems.push(("date_field".into(), t.choose_date_field.into()));
                }
                timing.relative_to = Some(RelativeTo {
                    field: field.to_owned(),
                    offset_seconds: if value(fields, "direction") == "before" {
                        -offset
                    } else {
                        offset
                    },
                    if_empty: if value(fields, "if_empty") == "skip" {
                        IfEmpty::Skip
                    } else {
                        IfEmpty::Wait
                    },
                });
            }
            None => problems.push(("amount".into(), format!("`{amount}`: {}", t.whole_number))),
        }
    }
    binding.timing = timing;
    let condition = value(fields, "condition").trim();
    binding.condition = None;
    if !condition.is_empty() {
        match serde_json::from_str::<Condition>(condition) {
            Ok(c) => binding.condition = Some(c),
            Err(e) => problems.push(("condition".into(), format!("{}: {e}", t.not_a_condition))),
        }
    }
    let fuel = value(fields, "fuel").trim();
    binding.fuel = None;
    if !fuel.is_empty() {
        match fuel.parse() {
            Ok(fuel) => binding.fuel = Some(fuel),
            Err(_) => problems.push(("fuel".into(), format!("`{fuel}`: {}", t.whole_number))),
        }
    }
    (binding, problems)
}

/// "Pipeline · stage", for a form's lead.
fn where_text(pipeline: &Pipeline, stage: &str, lang: Lang) -> String {
    let stage = pipeline.stage(stage).map_or(stage, |s| lang.pick(&s.names, &s.code));
    format!("{} · {stage}", lang.pick(&pipeline.names, &pipeline.code))
}

/// The robot's form, its inputs holding `fields`.
async fn robot_form(
    engine: &Engine,
    session: &Session,
    pipeline: &Pipeline,
    binding: &RobotBinding,
    info: &RobotInfo,
    fields: &[(String, String)],
) -> FormPage {
    let lang = session.lang;
    let t = lang.text();
    let posted = |name: &str| value(fields, name).to_owned();
    let code = &pipeline.code;
    let mut inputs = vec![
        Input::new("title", t.robot_title, "text")
            .value(posted("title"))
            .help(t.robot_title_help),
    ];
    let directory = engine.directory();
    let constants = engine.constants();
    // Only the help to insert fields needs them: without, it offers less.
    let custom = engine.store().custom_fields().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the custom fields could not be read for a robot's form");
        Vec::new()
    });
    for spec in &info.properties {
        let label = lang.pick(&spec.names, &spec.code).to_owned();
        let help = lang.pick(&spec.descriptions, "").to_owned();
        if spec.code == RECIPIENT {
            let mut choices = vec![
                (String::new(), "—".to_owned()),
                ("responsible".to_owned(), t.responsible.to_owned()),
                ("supervisor".to_owned(), t.supervisor.to_owned()),
            ];
            choices.extend(
                (directory.users.iter().filter(|u| u.active)).map(|u| (format!("user:{}", u.id), u.name.clone())),
            );
            for (name, value) in &constants {
                let holds = match value {
                    FieldValue::Single(Value::User(id)) => {
                        directory.user(*id).map_or(id.to_string(), |u| u.name.clone())
                    }
                    _ => continue,
                };
                choices.push((format!("constant:{name}"), format!("{{=GlobalConst.{name}}}: {holds}")));
            }
            // A robot that picks one of several offers each department's
            // people present, and keeps a group set through the API.
            if spec.multiple {
                for d in &directory.departments {
                    let among = Among {
                        users: Vec::new(),
                        departments: vec![d.id],
                        skip_absent: true,
                    };
                    let words = format!("{}: {} ({})", t.one_of_people, d.name, t.those_present);
                    choices.push((among_choice(&among), words));
                }
                let current = posted(RECIPIENT);
                if current.starts_with("among") && !choices.iter().any(|(v, _)| *v == current) {
                    choices.push((current.clone(), current));
                }
            }
            inputs.push(
                Input::new(RECIPIENT, label, "select")
                    .value(posted(RECIPIENT))
                    .choices(choices)
                    .required(spec.required)
                    .help(help),
            );
            continue;
        }
        let name = format!("p.{}", spec.code);
        let mut input = match spec.value_type {
            ValueType::Option if !spec.choices.is_empty() => {
                let mut choices: Vec<(String, String)> = spec
                    .choices
                    .iter()
                    .map(|c| (c.code.clone(), lang.pick(&c.names, &c.code).to_owned()))
                    .collect();
                if !spec.multiple {
                    choices.insert(0, (String::new(), "—".into()));
                }
                let kind = if spec.multiple { "multi" } else { "select" };
                let value = values(fields, &name).join("\n");
                Input::new(name, label, kind).value(value).choices(choices)
            }
            ValueType::Boolean if !spec.multiple => {
                let choices = vec![
                    (String::new(), "—".into()),
                    ("Y".into(), t.yes.into()),
                    ("N".into(), t.no.into()),
                ];
                Input::new(name.clone(), label, "select")
                    .value(posted(&name))
                    .choices(choices)
            }
            _ if spec.multiple => Input::new(name.clone(), label, "area").value(posted(&name)),
            ValueType::Text | ValueType::Any => Input::new(name.clone(), label, "area").value(posted(&name)),
            _ => Input::new(name.clone(), label, "text").value(posted(&name)),
        };
        let mut help = vec![help, type_help(spec, t)];
        if spec.multiple {
            help.push(t.one_per_line.to_owned());
        }
        help.retain(|h| !h.is_empty());
        input = input.required(spec.required).help(help.join(" · "));
        inputs.push(input);
    }
    let when_choices = vec![
        ("now".to_owned(), t.immediately.to_owned()),
        ("delay".to_owned(), t.after_a_delay.to_owned()),
        ("date".to_owned(), t.relative_to_date.to_owned()),
        ("schedule".to_owned(), t.on_a_schedule.to_owned()),
    ];
    let unit_choices = (UNITS.iter().zip(t.units))
        .map(|((unit, _), name)| (unit.to_string(), name.to_owned()))
        .collect();
    let date_fields = date_fields(&custom, pipeline.kind, lang);
    inputs.extend([
        Input::new("when", t.when_label, "select")
            .value(posted("when"))
            .choices(when_choices)
            .heading(t.when_heading),
        Input::new("amount", t.amount, "number").value(posted("amount")),
        Input::new("unit", t.unit_label, "select")
            .value(posted("unit"))
            .choices(unit_choices),
        Input::new("date_field", t.date_field, "suggest")
            .value(posted("date_field"))
            .choices(date_fields),
        Input::new("direction", t.direction, "select")
            .value(posted("direction"))
            .choices(vec![
                ("after".into(), t.after_the_date.into()),
                ("before".into(), t.before_the_date.into()),
            ]),
        Input::new("if_empty", t.if_empty, "select")
            .value(posted("if_empty"))
            .choices(vec![
                ("wait".into(), t.if_empty_wait.into()),
                ("skip".into(), t.if_empty_skip.into()),
            ]),
        Input::new("schedule", t.schedule_label, "text")
            .value(posted("schedule"))
            .help(t.robot_schedule_help),
        Input::new("after_previous", t.wait_previous, "check").value(posted("after_previous")),
        Input::new("working", t.working_label, "select")
            .value(posted("working"))
            .choices(vec![
                (String::new(), t.any_time.into()),
                ("wait".into(), t.in_working_time.into()),
                ("skip".into(), t.only_in_working_time.into()),
            ]),
        Input::new("condition", t.condition_label, "area")
            .value(posted("condition"))
            .help(condition_help(binding, t))
            .heading(t.condition_heading),
        Input::new("fuel", t.fuel, "number")
            .value(posted("fuel"))
            .help(t.fuel_help),
    ]);
    let (action, heading) = match binding.id {
        0 => (
            format!("/board/{code}/stages/{}/robots/new", binding.stage),
            format!("{}: {}", t.add_robot, lang.pick(&info.names, &info.code)),
        ),
        id => (
            format!("/board/{code}/robots/{id}"),
            lang.pick(&info.names, &info.code).to_owned(),
        ),
    };
    let description = lang.pick(&info.descriptions, "");
    FormPage {
        frame: Frame::of(session, action.clone()),
        heading,
        lead: format!(
            "{} · {}/{} · {description}",
            where_text(pipeline, &binding.stage, lang),
            binding.plugin,
            binding.robot
        ),
        action,
        inputs,
        problems: Vec::new(),
        submit: t.save,
        back: format!("/board/{code}"),
        hidden: vec![("plugin", binding.plugin.clone()), ("robot", binding.robot.clone())],
        inserts: inserts(&custom, pipeline.kind, &constants, &directory, lang),
    }
}

/// What type a property's value is, in words, when it is not plain text.
fn type_help(spec: &PropertySpec, t: &Text) -> String {
    match spec.value_type {
        ValueType::Integer => t.type_integer.into(),
        ValueType::Decimal => t.type_decimal.into(),
        ValueType::Money => t.type_money.into(),
        ValueType::Date => t.type_date.into(),
        ValueType::Datetime => t.type_datetime.into(),
        ValueType::User => t.type_user.into(),
        ValueType::Entity => t.type_entity.into(),
        _ => String::new(),
    }
}

fn condition_help(binding: &RobotBinding, t: &Text) -> String {
    match &binding.condition {
        Some(c) => format!("{} {}", t.reads_as, super::board::condition(c)),
        None => t.condition_help.into(),
    }
}

/// The date fields a delay may count from: the entity's own dates and its
/// kind's custom date fields.
fn date_fields(custom: &[FieldDecl], kind: EntityKind, lang: Lang) -> Vec<(String, String)> {
    let mut fields = vec![
        ("DATE_CREATE".to_owned(), String::new()),
        ("DATE_MODIFY".to_owned(), String::new()),
    ];
    for field in custom {
        if field.kind == kind && matches!(field.value_type, ValueType::Date | ValueType::Datetime) {
            let name = lang.pick(&field.names, "").to_owned();
            fields.push((field.code.clone(), name));
        }
    }
    fields
}

/// The expressions the form offers to insert: the entity's fields (its
/// specials and its kind's custom fields), the constants, the people.
fn inserts(
    custom: &[FieldDecl],
    kind: EntityKind,
    constants: &crate::domain::Constants,
    directory: &crate::domain::Directory,
    lang: Lang,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    let t = lang.text();
    let mut document: Vec<(String, String)> = [
        "ID",
        "TITLE",
        "STAGE_ID",
        "ASSIGNED_BY_ID",
        "ASSIGNED_BY_PRINTABLE",
        "DATE_CREATE",
    ]
    .into_iter()
    .map(|code| (format!("{{=Document.{code}}}"), String::new()))
    .collect();
    for field in custom {
        if field.kind == kind {
            let name = lang.pick(&field.names, "").to_owned();
            document.push((format!("{{=Document.{}}}", field.code), name));
        }
    }
    let constants = constants
        .iter()
        .map(|(code, value)| {
            let holds = match value {
                FieldValue::Single(Value::User(id)) => directory.user(*id).map_or(id.to_string(), |u| u.name.clone()),
                other => other.to_string(),
            };
            (format!("{{=GlobalConst.{code}}}"), holds)
        })
        .collect();
    let people = vec![
        ("{=Responsible}".to_owned(), t.responsible.to_owned()),
        ("{=Supervisor}".to_owned(), t.supervisor.to_owned()),
    ];
    vec![
        (t.fields_group, document),
        (t.constants_group, constants),
        (t.people_group, people),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Choice;

    fn spec(code: &str, value_type: ValueType, multiple: bool) -> PropertySpec {
        PropertySpec {
            code: code.into(),
            names: Default::default(),
            descriptions: Default::default(),
            value_type,
            required: false,
            multiple,
            default: None,
            choices: Vec::new(),
        }
    }

    fn info() -> RobotInfo {
        let mut kind = spec("kind", ValueType::Option, false);
        kind.choices = ["call", "meeting"]
            .map(|code| Choice {
                code: code.into(),
                names: Default::default(),
            })
            .to_vec();
        RobotInfo {
            code: "task".into(),
            names: Default::default(),
            descriptions: Default::default(),
            capabilities: Vec::new(),
            properties: vec![
                spec("title", ValueType::Text, false),
                spec(RECIPIENT, ValueType::User, false),
                spec("hours", ValueType::Integer, false),
                spec("wait", ValueType::Boolean, false),
                spec("amount", ValueType::Money, false),
                spec("observers", ValueType::User, true),
                kind,
            ],
            returns: Vec::new(),
        }
    }

    fn binding() -> RobotBinding {
        let json = serde_json::json!({
            "id": 4, "pipeline": "sales", "stage": "NEW", "plugin": "standard", "robot": "task",
            "title": "Call the client",
            "properties": {
                "title": "Call about {=Document.TITLE}", "hours": 24, "wait": true,
                "amount": {"money": "100.00 RUB"}, "observers": [{"user": 3}, {"user": 5}],
                "kind": {"option": "call"},
            },
            "recipient": {"constant": "Clerk"},
            "condition": {"compare": {"field": "OPPORTUNITY", "op": "ge", "value": 5}},
            "fuel": 1000,
        });
        serde_json::from_value(json).unwrap()
    }

    fn round_trip(binding: &RobotBinding) -> (RobotBinding, Vec<(String, String)>) {
        let fields = binding_fields(binding, &info());
        let base = RobotBinding {
            properties: Default::default(),
            ..binding.clone()
        };
        read_form(base, &info(), &fields, Lang::En.text())
    }

    #[test]
    fn a_binding_reads_back_from_its_form_unchanged() {
        let mut binding = binding();
        for timing in [
            Timing::default(),
            Timing {
                delay_seconds: 2 * 3600,
                after_previous: true,
                working_time: true,
                ..Timing::default()
            },
            Timing {
                delay_seconds: 90,
                skip_outside_working_time: true,
                ..Timing::default()
            },
            Timing {
                relative_to: Some(RelativeTo {
                    field: "UF_WEBINAR".into(),
                    offset_seconds: -86_400,
                    if_empty: IfEmpty::Wait,
                }),
                ..Timing::default()
            },
            Timing {
                relative_to: Some(RelativeTo {
                    field: "UF_WEBINAR".into(),
                    offset_seconds: 3_600,
                    if_empty: IfEmpty::Skip,
                }),
                ..Timing::default()
            },
            Timing {
                schedule: Some("0 0 3 * * *".into()),
                ..Timing::default()
            },
        ] {
            binding.timing = timing;
            let (read, problems) = round_trip(&binding);
            assert_eq!(problems, []);
            assert_eq!(read, binding);
        }
    }

    #[test]
    fn every_recipient_reads_back_from_its_form_unchanged() {
        let mut binding = binding();
        for recipient in [
            r#""responsible""#,
            r#""supervisor""#,
            r#"{"user": 7}"#,
            r#"{"constant": "Clerk"}"#,
            r#"{"among": {"users": [11, 12], "departments": [2]}}"#,
            r#"{"among": {"departments": [1], "skip_absent": false}}"#,
            r#"{"among": {"users": [11]}}"#,
        ] {
            binding.recipient = Some(serde_json::from_str(recipient).unwrap());
            let (read, problems) = round_trip(&binding);
            assert_eq!(problems, []);
            assert_eq!(read.recipient, binding.recipient, "{recipient}");
        }
    }

    #[test]
    fn what_a_form_cannot_read_is_named_by_its_field() {
        let mut fields = binding_fields(&binding(), &info());
        let set = |fields: &mut Vec<(String, String)>, name: &str, value: &str| {
            fields.retain(|(k, _)| k != name);
            fields.push((name.into(), value.into()));
        };
        set(&mut fields, "p.hours", "soon");
        set(&mut fields, "p.wait", "maybe");
        set(&mut fields, "p.amount", "lots");
        set(&mut fields, "p.kind", "visit");
        set(&mut fields, "condition", "{\"compare\": ");
        set(&mut fields, "when", "delay");
        set(&mut fields, "amount", "-3");
        let (_, problems) = read_form(binding(), &info(), &fields, Lang::En.text());
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "properties.hours",
                "properties.wait",
                "properties.amount",
                "properties.kind",
                "amount",
                "condition"
            ]
        );
        assert_eq!(problems[0].1, "`soon`: not a whole number");
        assert_eq!(problems[3].1, "`visit`: choose one of call, meeting");
        // Each shows by its input.
        assert_eq!(owner("properties.hours").as_deref(), Some("p.hours"));
        assert_eq!(owner("properties.recipient").as_deref(), Some("recipient"));
        assert_eq!(owner("timing.delay_seconds").as_deref(), Some("when"));
        assert_eq!(owner("fuel"), None);
    }
}
