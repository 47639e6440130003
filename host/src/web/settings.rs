//! The portal's settings for admins: installing a template from a file
//! (its problems listed by line), the constants still to bind, bound with
//! a picker of their type; users, departments and their heads; the
//! working-time calendar; and the API tokens. Each change goes through the
//! engine or store call its API route uses.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::forms::{FormPage, Input, admin_form, admin_only, problem_of, typed, value, values};
use super::session::{Session, same_token};
use super::text::Text;
use super::{Frame, csrf_refused, form_fields, page};
use crate::api::{ApiError, Role};
use crate::domain::{
    Absence, Calendar, Department, Directory, FieldValue, Timestamp, User, Value, ValueType, WorkingHours,
};
use crate::engine::{Engine, EngineError, InstallReport};

/// A constant as listed: its code, name, type, value in words, and the
/// input that binds it.
pub struct ConstantRow {
    pub code: String,
    pub name: String,
    pub value_type: &'static str,
    pub value: String,
    pub input: Input,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    frame: Frame,
    constants: Vec<ConstantRow>,
    /// Installed templates: code, name, version, when (in the portal's zone).
    templates: Vec<(String, String, String, String)>,
    report: Option<InstallReport>,
    /// "line L, column C: message" of each problem of a template refused.
    problems: Vec<String>,
    error: Option<String>,
}

fn user_choices(directory: &Directory) -> Vec<(String, String)> {
    let mut choices = vec![(String::new(), "—".to_owned())];
    choices.extend(
        (directory.users.iter().filter(|u| u.active)).map(|u| (u.id.to_string(), format!("{} (#{})", u.name, u.id))),
    );
    choices
}

/// The templates and constants page, with what an install did or why it
/// was refused, and a constant's problem by its input.
async fn settings_page(
    engine: &Engine,
    session: &Session,
    report: Option<InstallReport>,
    problems: Vec<String>,
    error: Option<(String, String)>,
) -> Response {
    let (lang, t) = (session.lang, session.lang.text());
    let declared = match engine.store().constant_decls().await {
        Ok(declared) => declared,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let values = engine.constants();
    let directory = engine.directory();
    let mut constants = Vec::new();
    for decl in declared {
        let current = values.get(&decl.code);
        let shown = match current {
            None | Some(FieldValue::Empty) => String::new(),
            Some(FieldValue::Single(Value::User(id))) => directory
                .user(*id)
                .map_or(format!("#{id}"), |u| format!("{} (#{id})", u.name)),
            Some(other) => other.to_string(),
        };
        let name = format!("c.{}", decl.code);
        let mut input = match decl.value_type {
            ValueType::User => {
                let chosen = match current {
                    Some(FieldValue::Single(Value::User(id))) => id.to_string(),
                    _ => String::new(),
                };
                Input::new(name, t.value, "select")
                    .value(chosen)
                    .choices(user_choices(&directory))
            }
            _ => {
                let text = match current {
                    Some(FieldValue::Single(v)) => v.to_string(),
                    _ => String::new(),
                };
                Input::new(name, t.value, "text").value(text)
            }
        };
        if let Some((code, problem)) = &error
            && *code == decl.code
        {
            input.error = Some(problem.clone());
        }
        constants.push(ConstantRow {
            name: lang.pick(&decl.names, "").to_owned(),
            value_type: decl.value_type.as_str(),
            value: shown,
            input,
            code: decl.code,
        });
    }
    let installed = match engine.installed_templates().await {
        Ok(installed) => installed,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let zone = engine.time_zone();
    let templates = installed
        .into_iter()
        .map(|i| {
            let when = i
                .installed_at
                .to_datetime()
                .with_timezone(&zone)
                .format("%Y-%m-%d %H:%M")
                .to_string();
            (i.code, lang.pick(&i.names, "").to_owned(), i.version, when)
        })
        .collect();
    let refused = !problems.is_empty() || error.is_some();
    let mut response = page(&SettingsPage {
        frame: Frame::of(session, "/settings".into()),
        constants,
        templates,
        report,
        problems,
        error: error.filter(|(code, _)| code.is_empty()).map(|(_, e)| e),
    });
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn settings(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    settings_page(&engine, &session, None, Vec::new(), None).await
}

/// Installs an uploaded template whole, or lists its problems by line.
pub async fn install_template(State(engine): State<Arc<Engine>>, session: Session, mut form: Multipart) -> Response {
    let t = session.lang.text();
    let (mut csrf, mut text) = (String::new(), None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return settings_page(&engine, &session, None, vec![t.upload_broken.into()], None).await;
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "template" => text = Some(bytes),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                let problem = format!("{}: {e}", t.upload_broken);
                return settings_page(&engine, &session, None, vec![problem], None).await;
            }
        }
    }
    if !same_token(&session.csrf, &csrf) {
        return csrf_refused(session.lang);
    }
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let text = match text.filter(|b| !b.is_empty()).map(|b| String::from_utf8(b.to_vec())) {
        None => return settings_page(&engine, &session, None, vec![t.choose_file.into()], None).await,
        Some(Err(_)) => return settings_page(&engine, &session, None, vec![t.not_utf8.into()], None).await,
        Some(Ok(text)) => text,
    };
    match engine.install_template(&text).await {
        Ok(report) => settings_page(&engine, &session, Some(report), Vec::new(), None).await,
        Err(EngineError::Template(problems)) => {
            let problems = problems.iter().map(ToString::to_string).collect();
            settings_page(&engine, &session, None, problems, None).await
        }
        Err(e) => settings_page(&engine, &session, None, vec![e.to_string()], None).await,
    }
}

/// Binds a constant to a value of its declared type.
pub async fn bind_constant(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let t = session.lang.text();
    let declared = match engine.store().constant_decls().await {
        Ok(declared) => declared,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(decl) = declared.into_iter().find(|d| d.code == code) else {
        return super::not_found(&session);
    };
    let text = value(&fields, &format!("c.{code}")).trim();
    let parsed = match (decl.value_type, text) {
        (_, "") => Ok(FieldValue::Empty),
        (ValueType::User, id) => id
            .parse()
            .map(|id| FieldValue::Single(Value::User(id)))
            .map_err(|_| t.user_id.into()),
        (value_type, text) => typed(value_type, &[], text, t).map(FieldValue::Single),
    };
    let bound = match parsed {
        Ok(value) => engine.set_constant(&code, &value).await.map_err(|e| problem_of(e).1),
        Err(problem) => Err(problem),
    };
    match bound {
        Ok(()) => Redirect::to("/settings").into_response(),
        Err(problem) => settings_page(&engine, &session, None, Vec::new(), Some((code, problem))).await,
    }
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    frame: Frame,
    /// (id, name, department, active, heads).
    /// (id, name, department, active, heads, absence and own hours).
    users: Vec<(u64, String, String, bool, String, String)>,
    /// (id, name, head, parent).
    departments: Vec<(u64, String, String, String)>,
}

pub async fn people(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let t = session.lang.text();
    let directory = engine.directory();
    let department = |id: Option<u64>| {
        id.map_or(String::new(), |id| {
            directory
                .departments
                .iter()
                .find(|d| d.id == id)
                .map_or(format!("#{id}"), |d| d.name.clone())
        })
    };
    let user = |id: Option<u64>| {
        id.map_or(String::new(), |id| {
            directory.user(id).map_or(format!("#{id}"), |u| u.name.clone())
        })
    };
    let users = (directory.users.iter())
        .map(|u| {
            let heads: Vec<&str> = (directory.departments.iter())
                .filter(|d| d.head == Some(u.id))
                .map(|d| d.name.as_str())
                .collect();
            let mut note = Vec::new();
            if let Some(away) = u.away {
                let from = away.from.map(|d| format!("{d} – ")).unwrap_or_default();
                note.push(format!("{} {from}{}", t.away, away.until));
            }
            if let Some(hours) = u.hours.as_ref().and_then(|h| serde_json::to_value(h).ok()) {
                let part = |key: &str| hours[key].as_str().and_then(|t| t.get(..5)).unwrap_or("").to_owned();
                let zone = hours["time_zone"].as_str().unwrap_or_default();
                let times = format!("{}–{}", part("work_start"), part("work_end"));
                let times = if times == "–" { String::new() } else { times };
                note.push(format!("{}: {zone} {times}", t.own_hours).trim().to_owned());
            }
            (
                u.id,
                u.name.clone(),
                department(u.department),
                u.active,
                heads.join(", "),
                note.join("; "),
            )
        })
        .collect();
    let departments = (directory.departments.iter())
        .map(|d| (d.id, d.name.clone(), user(d.head), department(d.parent)))
        .collect();
    page(&PeoplePage {
        frame: Frame::of(&session, "/settings/people".into()),
        users,
        departments,
    })
}

fn department_choices(directory: &Directory) -> Vec<(String, String)> {
    let mut choices = vec![(String::new(), "—".to_owned())];
    choices.extend((directory.departments.iter()).map(|d| (d.id.to_string(), d.name.clone())));
    choices
}

/// The number a new user or department is given on its form: a whole
/// number above 0 that `taken` says no other has; else the problem, by the
/// `id` field.
fn new_number(
    fields: &[(String, String)],
    taken: impl Fn(u64) -> bool,
    t: &Text,
    problems: &mut Vec<(String, String)>,
) -> Option<u64> {
    match value(fields, "id").trim().parse::<u64>() {
        Ok(id) if id > 0 && taken(id) => problems.push(("id".to_owned(), t.number_taken.to_owned())),
        Ok(id) if id > 0 => return Some(id),
        _ => problems.push(("id".to_owned(), t.whole_number.to_owned())),
    }
    None
}

fn user_form(engine: &Engine, session: &Session, id: Option<u64>, fields: &[(String, String)]) -> FormPage {
    let t = session.lang.text();
    let posted = |name: &str| value(fields, name).to_owned();
    let action = id.map_or("/settings/users/new".to_owned(), |id| format!("/settings/users/{id}"));
    let mut inputs = Vec::new();
    if id.is_none() {
        inputs.push(
            Input::new("id", t.user_number, "number")
                .value(posted("id"))
                .required(true),
        );
    }
    inputs.extend([
        Input::new("name", t.name, "text").value(posted("name")).required(true),
        Input::new("department", t.department, "select")
            .value(posted("department"))
            .choices(department_choices(&engine.directory())),
        Input::new("active", t.active, "check").value(posted("active")),
        Input::new("away_from", t.away_from, "text")
            .value(posted("away_from"))
            .heading(t.absence)
            .help(t.away_help),
        Input::new("away_until", t.away_until, "text").value(posted("away_until")),
        Input::new("time_zone", t.time_zone, "text")
            .value(posted("time_zone"))
            .heading(t.own_hours)
            .help(t.own_hours_help),
        Input::new("work_start", t.work_start, "text").value(posted("work_start")),
        Input::new("work_end", t.work_end, "text").value(posted("work_end")),
    ]);
    FormPage {
        frame: Frame::of(session, action.clone()),
        heading: id.map_or(t.add_user.to_owned(), |id| format!("{} #{id}", t.user_heading)),
        lead: String::new(),
        action,
        inputs,
        problems: Vec::new(),
        submit: t.save,
        back: "/settings/people".into(),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
}

pub async fn new_user(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    user_form(&engine, &session, None, &[("active".into(), "on".into())]).respond()
}

pub async fn edit_user(State(engine): State<Arc<Engine>>, session: Session, Path(id): Path<u64>) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let Some(user) = engine.directory().user(id).cloned() else {
        return super::not_found(&session);
    };
    let fields = [
        ("name".to_owned(), user.name),
        (
            "department".to_owned(),
            user.department.map(|d| d.to_string()).unwrap_or_default(),
        ),
        ("active".to_owned(), if user.active { "on" } else { "" }.to_owned()),
        (
            "away_from".to_owned(),
            (user.away.and_then(|a| a.from))
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ),
        (
            "away_until".to_owned(),
            user.away.map(|a| a.until.to_string()).unwrap_or_default(),
        ),
    ];
    let mut fields = fields.to_vec();
    if let Some(hours) = serde_json::to_value(&user.hours).ok().filter(|h| h.is_object()) {
        for key in ["time_zone", "work_start", "work_end"] {
            let text = hours[key].as_str().unwrap_or_default();
            // `08:00:00` as `08:00`; a time zone whole.
            let text = if key == "time_zone" {
                text
            } else {
                text.get(..5).unwrap_or(text)
            };
            fields.push((key.to_owned(), text.to_owned()));
        }
    }
    user_form(&engine, &session, Some(id), &fields).respond()
}

pub async fn post_new_user(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    save_user(&engine, &session, None, &body).await
}

pub async fn post_user(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    save_user(&engine, &session, Some(id), &body).await
}

async fn save_user(engine: &Engine, session: &Session, id: Option<u64>, body: &[u8]) -> Response {
    let fields = form_fields(body);
    if let Some(refused) = admin_form(session, &fields) {
        return refused;
    }
    let t = session.lang.text();
    let mut problems = Vec::new();
    let directory = engine.directory();
    let id = id.or_else(|| new_number(&fields, |id| directory.user(id).is_some(), t, &mut problems));
    let name = value(&fields, "name").trim().to_owned();
    if name.is_empty() {
        problems.push(("name".to_owned(), t.required.to_owned()));
    }
    let department = value(&fields, "department").parse().ok();
    let away = absence_of(&fields, t, &mut problems);
    let hours = hours_of(&fields, &mut problems);
    if problems.is_empty()
        && let Some(id) = id
    {
        // The weekend of one's own is set through the API; the form keeps it.
        let weekend = directory.user(id).and_then(|u| u.hours.clone());
        let hours = merge_weekend(hours, weekend);
        let user = User {
            id,
            name,
            department,
            active: value(&fields, "active") == "on",
            away,
            hours,
        };
        match engine.put_user(&user).await {
            Ok(()) => return Redirect::to("/settings/people").into_response(),
            Err(e) => problems.push(problem_of(e)),
        }
    }
    let editing = id.filter(|id| directory.user(*id).is_some());
    user_form(engine, session, editing, &fields)
        .with_problems(problems, |_| None)
        .respond()
}

fn department_form(engine: &Engine, session: &Session, id: Option<u64>, fields: &[(String, String)]) -> FormPage {
    let t = session.lang.text();
    let posted = |name: &str| value(fields, name).to_owned();
    let directory = engine.directory();
    let action = id.map_or("/settings/departments/new".to_owned(), |id| {
        format!("/settings/departments/{id}")
    });
    let mut inputs = Vec::new();
    if id.is_none() {
        inputs.push(
            Input::new("id", t.department_number, "number")
                .value(posted("id"))
                .required(true),
        );
    }
    inputs.extend([
        Input::new("name", t.name, "text").value(posted("name")).required(true),
        Input::new("head", t.head, "select")
            .value(posted("head"))
            .choices(user_choices(&directory))
            .help(t.head_help),
        Input::new("parent", t.parent_department, "select")
            .value(posted("parent"))
            .choices(department_choices(&directory)),
    ]);
    FormPage {
        frame: Frame::of(session, action.clone()),
        heading: id.map_or(t.add_department.to_owned(), |id| format!("{} #{id}", t.department)),
        lead: String::new(),
        action,
        inputs,
        problems: Vec::new(),
        submit: t.save,
        back: "/settings/people".into(),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
}

pub async fn new_department(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    department_form(&engine, &session, None, &[]).respond()
}

pub async fn edit_department(State(engine): State<Arc<Engine>>, session: Session, Path(id): Path<u64>) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let directory = engine.directory();
    let Some(department) = directory.departments.iter().find(|d| d.id == id) else {
        return super::not_found(&session);
    };
    let number = |id: Option<u64>| id.map(|i| i.to_string()).unwrap_or_default();
    let fields = [
        ("name".to_owned(), department.name.clone()),
        ("head".to_owned(), number(department.head)),
        ("parent".to_owned(), number(department.parent)),
    ];
    department_form(&engine, &session, Some(id), &fields).respond()
}

pub async fn post_new_department(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    save_department(&engine, &session, None, &body).await
}

pub async fn post_department(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    save_department(&engine, &session, Some(id), &body).await
}

async fn save_department(engine: &Engine, session: &Session, id: Option<u64>, body: &[u8]) -> Response {
    let fields = form_fields(body);
    if let Some(refused) = admin_form(session, &fields) {
        return refused;
    }
    let t = session.lang.text();
    let directory = engine.directory();
    let exists = |id: u64| directory.departments.iter().any(|d| d.id == id);
    let mut problems = Vec::new();
    let id = id.or_else(|| new_number(&fields, exists, t, &mut problems));
    let name = value(&fields, "name").trim().to_owned();
    if name.is_empty() {
        problems.push(("name".to_owned(), t.required.to_owned()));
    }
    let parent: Option<u64> = value(&fields, "parent").parse().ok();
    if parent.is_some() && parent == id {
        problems.push(("parent".to_owned(), t.own_parent.to_owned()));
    }
    if problems.is_empty()
        && let Some(id) = id
    {
        let department = Department {
            id,
            name,
            head: value(&fields, "head").parse().ok(),
            parent,
        };
        match engine.put_department(&department).await {
            Ok(()) => return Redirect::to("/settings/people").into_response(),
            Err(e) => problems.push(problem_of(e)),
        }
    }
    let editing = id.filter(|id| exists(*id));
    department_form(engine, session, editing, &fields)
        .with_problems(problems, |_| None)
        .respond()
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn calendar_form(session: &Session, fields: &[(String, String)]) -> FormPage {
    let t = session.lang.text();
    let posted = |name: &str| value(fields, name).to_owned();
    let weekdays = (WEEKDAYS.iter().zip(t.weekdays))
        .map(|(code, name)| (code.to_string(), name.to_owned()))
        .collect();
    FormPage {
        frame: Frame::of(session, "/settings/calendar".into()),
        heading: t.calendar.into(),
        lead: t.calendar_lead.into(),
        action: "/settings/calendar".into(),
        inputs: vec![
            Input::new("time_zone", t.time_zone, "text")
                .value(posted("time_zone"))
                .help(t.time_zone_help),
            Input::new("work_start", t.work_start, "text").value(posted("work_start")),
            Input::new("work_end", t.work_end, "text").value(posted("work_end")),
            Input::new("weekend", t.weekend, "multi")
                .value(values(fields, "weekend").join("\n"))
                .choices(weekdays),
            Input::new("holidays", t.holidays, "area")
                .value(posted("holidays"))
                .help(t.holidays_help),
        ],
        problems: Vec::new(),
        submit: t.save,
        back: "/settings".into(),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
}

pub async fn calendar(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let calendar = match engine.store().calendar().await {
        Ok(calendar) => serde_json::to_value(&calendar).unwrap_or_default(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let text = |key: &str| {
        calendar
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let list = |key: &str| -> Vec<String> {
        (calendar.get(key).and_then(|v| v.as_array()).into_iter().flatten())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mut fields = vec![
        ("time_zone".to_owned(), text("time_zone")),
        ("work_start".to_owned(), text("work_start")),
        ("work_end".to_owned(), text("work_end")),
        ("holidays".to_owned(), list("holidays").join("\n")),
    ];
    fields.extend(list("weekend").into_iter().map(|day| ("weekend".to_owned(), day)));
    calendar_form(&session, &fields).respond()
}

/// Replaces the calendar with the form's, checked as `PUT /api/calendar`
/// checks it.
pub async fn post_calendar(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let spec = serde_json::json!({
        "time_zone": value(&fields, "time_zone").trim(),
        "work_start": time_of_day(value(&fields, "work_start")),
        "work_end": time_of_day(value(&fields, "work_end")),
        "weekend": values(&fields, "weekend"),
        "holidays": values(&fields, "holidays"),
    });
    let saved = match serde_json::from_value::<Calendar>(spec) {
        Ok(calendar) => engine.set_calendar(&calendar).await.map_err(problem_of),
        Err(e) => Err((String::new(), e.to_string())),
    };
    match saved {
        Ok(()) => Redirect::to("/settings/calendar").into_response(),
        Err(problem) => calendar_form(&session, &fields)
            .with_problems(vec![problem], |_| None)
            .respond(),
    }
}

/// The absence a user's form gives: none when both dates are empty.
fn absence_of(fields: &[(String, String)], t: &Text, problems: &mut Vec<(String, String)>) -> Option<Absence> {
    let mut date = |name: &str| -> Option<chrono::NaiveDate> {
        let text = value(fields, name).trim();
        if text.is_empty() {
            return None;
        }
        let parsed = text.parse().ok();
        if parsed.is_none() {
            problems.push((name.to_owned(), t.not_a_date.to_owned()));
        }
        parsed
    };
    let (from, until) = (date("away_from"), date("away_until"));
    match until {
        Some(until) => Some(Absence { from, until }),
        None if from.is_some() => {
            problems.push(("away_until".to_owned(), t.required.to_owned()));
            None
        }
        None => None,
    }
}

/// The working hours of one's own a user's form gives: none when all are empty.
fn hours_of(fields: &[(String, String)], problems: &mut Vec<(String, String)>) -> Option<WorkingHours> {
    let mut spec = serde_json::Map::new();
    let zone = value(fields, "time_zone").trim();
    if !zone.is_empty() {
        spec.insert("time_zone".into(), zone.into());
    }
    for key in ["work_start", "work_end"] {
        let time = value(fields, key).trim();
        if !time.is_empty() {
            spec.insert(key.into(), time_of_day(time).into());
        }
    }
    if spec.is_empty() {
        return None;
    }
    match serde_json::from_value(spec.into()) {
        Ok(hours) => Some(hours),
        Err(e) => {
            let field = if e.to_string().contains("time zone") {
                "time_zone"
            } else {
                "work_start"
            };
            problems.push((field.to_owned(), e.to_string()));
            None
        }
    }
}

/// The form's hours with the weekend a user keeps (set through the API).
fn merge_weekend(hours: Option<WorkingHours>, kept: Option<WorkingHours>) -> Option<WorkingHours> {
    let weekend = kept
        .and_then(|k| serde_json::to_value(k).ok())
        .map(|k| k["weekend"].clone());
    let Some(weekend) = weekend.filter(|w| !w.is_null()) else {
        return hours;
    };
    let mut spec = serde_json::to_value(hours.unwrap_or_default()).ok()?;
    spec["weekend"] = weekend;
    serde_json::from_value(spec).ok()
}

/// `9:00` as `09:00:00`, the form the calendar reads.
fn time_of_day(text: &str) -> String {
    let text = text.trim();
    match text.split(':').count() {
        2 if text.len() == 4 => format!("0{text}:00"),
        2 => format!("{text}:00"),
        _ => text.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    frame: Frame,
    /// (id, name, role, created, expires, user).
    tokens: Vec<(String, String, String, String, String, String)>,
    /// A token just made: shown this once.
    made: Option<String>,
    /// The users a token may act for.
    users: Vec<(String, String)>,
    error: Option<String>,
}

async fn tokens_page(engine: &Engine, session: &Session, made: Option<String>, error: Option<String>) -> Response {
    let tokens = match engine.store().tokens().await {
        Ok(tokens) => tokens,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let refused = error.is_some();
    let mut response = page(&TokensPage {
        frame: Frame::of(session, "/settings/tokens".into()),
        tokens: tokens
            .into_iter()
            .map(|t| {
                let expires = t.expires_at.map_or(String::new(), |at| at.to_string());
                let user = t.user.map_or(String::new(), |u| {
                    engine
                        .directory()
                        .user(u)
                        .map_or(format!("#{u}"), |user| user.name.clone())
                });
                let id = crate::api::auth::token_id(&t.hash);
                (id, t.name, t.role, t.created_at.to_string(), expires, user)
            })
            .collect(),
        made,
        users: user_choices(&engine.directory()),
        error,
    });
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn tokens(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    tokens_page(&engine, &session, None, None).await
}

pub async fn create_token(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let t = session.lang.text();
    let name = value(&fields, "name").trim();
    if name.is_empty() || name.chars().count() > 200 {
        return tokens_page(&engine, &session, None, Some(t.token_name_rule.into())).await;
    }
    let Ok(role) = value(&fields, "role").parse::<Role>() else {
        return tokens_page(&engine, &session, None, Some(t.choose_role.into())).await;
    };
    // Until the end of the day given, in the portal's time zone.
    let expires = match value(&fields, "expires").trim() {
        "" => None,
        day => match super::runs::start_of(day, engine.time_zone()) {
            Ok(start) if start.0 + 86_400_000 > engine.now().0 => Some(Timestamp(start.0 + 86_400_000)),
            Ok(_) => return tokens_page(&engine, &session, None, Some(t.day_passed.into())).await,
            Err(e) => return tokens_page(&engine, &session, None, Some(e)).await,
        },
    };
    let user = value(&fields, "user").parse().ok();
    match crate::api::create_token_for(engine.store(), name, role, expires, user).await {
        Ok(token) => tokens_page(&engine, &session, Some(token), None).await,
        Err(e) => ApiError::internal("making a token failed", e).into_response(),
    }
}

pub async fn revoke_token(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    if !crate::api::auth::is_token_id(&id) {
        return super::not_found(&session);
    }
    match engine.store().revoke_tokens(&id).await {
        Ok(_) => Redirect::to("/settings/tokens").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
