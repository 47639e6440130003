//! Forms that change the portal, all drawn by one template from a list of
//! [`Input`]s. A form posts its fields under the names the inputs give
//! them; the handler reads them into what the engine takes, asks the
//! engine for every problem, and either saves it whole or draws the same
//! form again with the values as posted and each problem next to its
//! field. Every change is an admin's: [`admin_form`] checks the session's
//! CSRF token and the role, as the API checks its token's role.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::session::{Session, same_token};
use super::text::Text;
use super::{Frame, csrf_refused, page};
use crate::api::Role;
use crate::domain::{Choice, Value, ValueType};

/// One field of a form.
pub struct Input {
    /// The name it posts under, also its element id after `f-`.
    pub name: String,
    pub label: String,
    /// `text`, `number`, `area` (several lines), `select`, `multi` (a
    /// select of several), `check` (a checkbox, `on` when ticked) or
    /// `suggest` (text with the choices offered).
    pub kind: &'static str,
    /// As posted; for `multi`, one value per line.
    pub value: String,
    /// (value, label) pairs of a `select`, `multi` or `suggest`.
    pub choices: Vec<(String, String)>,
    pub required: bool,
    pub help: String,
    pub error: Option<String>,
    /// A heading drawn before it, starting a part of the form.
    pub heading: Option<String>,
}

impl Input {
    pub fn new(name: impl Into<String>, label: impl Into<String>, kind: &'static str) -> Input {
        Input {
            name: name.into(),
            label: label.into(),
            kind,
            value: String::new(),
            choices: Vec::new(),
            required: false,
            help: String::new(),
            error: None,
            heading: None,
        }
    }

    pub fn value(mut self, value: impl Into<String>) -> Input {
        self.value = value.into();
        self
    }

    pub fn choices(mut self, choices: Vec<(String, String)>) -> Input {
        self.choices = choices;
        self
    }

    pub fn required(mut self, required: bool) -> Input {
        self.required = required;
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Input {
        self.help = help.into();
        self
    }

    pub fn heading(mut self, heading: impl Into<String>) -> Input {
        self.heading = Some(heading.into());
        self
    }

    /// Whether choice `code` is selected.
    pub fn selected(&self, code: &str) -> bool {
        match self.kind {
            "multi" => self.value.lines().any(|v| v == code),
            _ => self.value == code,
        }
    }

    pub fn checked(&self) -> bool {
        self.value == "on"
    }
}

/// A form's page.
#[derive(Template)]
#[template(path = "form.html")]
pub struct FormPage {
    pub frame: Frame,
    pub heading: String,
    /// What it is about, under the heading.
    pub lead: String,
    pub action: String,
    pub inputs: Vec<Input>,
    /// Problems that belong to no input.
    pub problems: Vec<String>,
    pub submit: &'static str,
    /// Where cancelling goes.
    pub back: String,
    /// Fields posted as they are: what the form is for, such as a robot's
    /// plugin and code.
    pub hidden: Vec<(&'static str, String)>,
    /// Expressions a click inserts into the text field last in focus, by
    /// group: `{=Document.TITLE}`, `{=GlobalConst.Clerk}`.
    pub inserts: Vec<(&'static str, Vec<(String, String)>)>,
}

impl FormPage {
    /// Puts each (field, problem) by the input posting that field, or by
    /// the one `owner` names for it; the rest go on top. The page is
    /// answered 422 when any problem is shown.
    pub fn with_problems(mut self, problems: Vec<(String, String)>, owner: impl Fn(&str) -> Option<String>) -> Self {
        for (field, problem) in problems {
            let name = owner(&field).unwrap_or(field);
            match self.inputs.iter_mut().find(|input| input.name == name) {
                Some(input) => match &mut input.error {
                    Some(error) => {
                        error.push_str("; ");
                        error.push_str(&problem);
                    }
                    None => input.error = Some(problem),
                },
                None => self.problems.push(problem),
            }
        }
        self
    }

    /// Whether any problem is shown.
    pub fn invalid(&self) -> bool {
        !self.problems.is_empty() || self.inputs.iter().any(|i| i.error.is_some())
    }

    pub fn respond(self) -> Response {
        let invalid = self.invalid();
        let mut response = page(&self);
        if invalid {
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        }
        response
    }
}

/// The value of field `name`, as posted.
pub fn value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    super::field(fields, name)
}

/// Every value posted under `name`, each split into lines, trimmed, empty
/// ones left out: a `multi` select or an `area` of one value per line.
pub fn values(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.lines())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The refusal of a page or action to anyone but an admin, if refused.
pub fn admin_only(session: &Session) -> Option<Response> {
    (session.role != Role::Admin).then(|| (StatusCode::FORBIDDEN, session.lang.text().admins_only).into_response())
}

/// The refusal of a posted form without the session's CSRF token, or from
/// anyone but an admin, if refused.
pub fn admin_form(session: &Session, fields: &[(String, String)]) -> Option<Response> {
    if !same_token(&session.csrf, value(fields, "csrf")) {
        return Some(csrf_refused(session.lang));
    }
    admin_only(session)
}

/// An engine's refusal as (field, problem): by its field when it names
/// one, else for the top of the form.
pub fn problem_of(error: crate::engine::EngineError) -> (String, String) {
    match error {
        crate::engine::EngineError::Invalid { field, problem } => (field, problem),
        other => (String::new(), other.to_string()),
    }
}

/// A property's or constant's text as a value of its type. Text holding an
/// expression stays text: the expression gives the value when the robot
/// runs; so does a time from the run ("in 15 minutes", "через 2 рабочих
/// дня") for a date-time, which the robot counts when it runs.
pub fn typed(value_type: ValueType, choices: &[Choice], text: &str, t: &Text) -> Result<Value, String> {
    if text.contains("{=") {
        return Ok(Value::Text(text.to_owned()));
    }
    let lower = text.trim_start().to_lowercase();
    if value_type == ValueType::Datetime && (lower.starts_with("in ") || lower.starts_with("через ")) {
        return Ok(Value::Text(text.trim().to_owned()));
    }
    let tagged = |tag: &str| Value::from_json(&serde_json::json!({ tag: text })).map_err(|e| e.to_string());
    match value_type {
        ValueType::Text | ValueType::Any | ValueType::File => Ok(Value::Text(text.to_owned())),
        ValueType::Integer => text
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("`{text}`: {}", t.whole_number)),
        ValueType::Decimal => tagged("decimal"),
        ValueType::Money => tagged("money"),
        ValueType::Date => tagged("date"),
        ValueType::Datetime => tagged("datetime"),
        ValueType::Entity => tagged("entity"),
        ValueType::Boolean => match text {
            "Y" | "y" | "true" | "yes" => Ok(Value::Boolean(true)),
            "N" | "n" | "false" | "no" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{text}`: {}", t.yes_or_no)),
        },
        ValueType::User => text
            .parse()
            .map(Value::User)
            .map_err(|_| format!("`{text}`: {}", t.user_id)),
        ValueType::Option if choices.is_empty() || choices.iter().any(|c| c.code == text) => {
            Ok(Value::Option(text.to_owned()))
        }
        ValueType::Option => {
            let codes: Vec<&str> = choices.iter().map(|c| c.code.as_str()).collect();
            Err(format!("`{text}`: {} {}", t.one_of, codes.join(", ")))
        }
    }
}
