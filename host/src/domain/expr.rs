//! Expressions in robot property values, Bitrix24 style: `{=Document.TITLE}`,
//! `{=GlobalConst.Clerk}`, `{=Robot.KEY.VALUE}`, `{=Responsible}`,
//! `{=Supervisor}`.
//!
//! Owns their syntax ([`check`], for installers that must reject a bad
//! template before writing anything) and their meaning against one entity
//! ([`resolve`]), including the entity's special fields (`ID`, `STAGE_ID`...)
//! that conditions read too. Pure: the caller gathers everything an
//! expression may reference into a [`Scope`].

use std::collections::BTreeMap;
use std::fmt;

use chrono_tz::Tz;

use super::automation::{Constants, Directory};
use super::entity::{Entity, Fields};
use super::kind::UserId;
use super::value::{FieldValue, Value};

/// Everything an expression may reference.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub entity: &'a Entity,
    pub directory: &'a Directory,
    pub constants: &'a Constants,
    /// Values returned by earlier robots of the stage, by binding key.
    pub returns: &'a BTreeMap<String, Fields>,
    /// The data of the event whose trigger moved the entity here; empty
    /// when no trigger did.
    pub event: &'a Fields,
    /// The portal's time zone: dates and times inside texts read in it.
    pub time_zone: Tz,
}

/// How a date-time reads inside a text: day, month, year, hours and
/// minutes in the portal's time zone, as Bitrix24 shows them
/// (`06.12.2026 14:30`).
pub const DATETIME_FORMAT: &str = "%d.%m.%Y %H:%M";

/// How a date reads inside a text (`06.12.2026`).
pub const DATE_FORMAT: &str = "%d.%m.%Y";

/// A value as people read it: dates and date-times in [`DATE_FORMAT`] and
/// [`DATETIME_FORMAT`] (in `time_zone`), anything else as its text.
pub fn readable(value: &Value, time_zone: Tz) -> String {
    match value {
        Value::DateTime(at) => at
            .to_datetime()
            .with_timezone(&time_zone)
            .format(DATETIME_FORMAT)
            .to_string(),
        Value::Date(day) => day.format(DATE_FORMAT).to_string(),
        other => other.to_string(),
    }
}

/// What one expression refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// `{=Document.FIELD}`: a field of the entity, standard, custom or special.
    Document(String),
    /// `{=GlobalConst.NAME}`.
    GlobalConst(String),
    /// `{=Robot.KEY.VALUE}`: a value returned by an earlier robot.
    Robot { key: String, value: String },
    /// `{=Event.X}`: a value of the event whose trigger moved the entity
    /// to the stage, such as a payment's amount.
    Event(String),
    /// `{=Supervisor}`: the head of the responsible's department.
    Supervisor,
    /// `{=Responsible}`: the entity's responsible.
    Responsible,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Document(field) => write!(f, "{{=Document.{field}}}"),
            Reference::GlobalConst(name) => write!(f, "{{=GlobalConst.{name}}}"),
            Reference::Robot { key, value } => write!(f, "{{=Robot.{key}.{value}}}"),
            Reference::Event(code) => write!(f, "{{=Event.{code}}}"),
            Reference::Supervisor => f.write_str("{=Supervisor}"),
            Reference::Responsible => f.write_str("{=Responsible}"),
        }
    }
}

/// An expression that cannot be read or refers to nothing. `at` is the byte
/// position of its `{=` in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("`{expr}` at {at}: unclosed expression; end it with `}}`")]
    Unclosed { expr: String, at: usize },
    #[error("`{expr}` at {at}: empty name; write for example `{{=Document.TITLE}}`")]
    EmptyName { expr: String, at: usize },
    #[error(
        "`{expr}` at {at}: unknown namespace `{namespace}`; use Document, GlobalConst, Robot, Event, Responsible or Supervisor"
    )]
    UnknownNamespace { expr: String, at: usize, namespace: String },
    #[error("`{expr}` at {at}: write it as `{form}`, with names made of letters, digits, `_` and `-`")]
    Malformed {
        expr: String,
        at: usize,
        form: &'static str,
    },
    #[error("`{{=GlobalConst.{name}}}`: there is no global constant `{name}`; define it or use one of: {known}")]
    UnknownConstant { name: String, known: String },
    #[error("`{{=Robot.{key}.{value}}}`: no earlier robot of this stage has the key `{key}`; use one of: {known}")]
    UnknownRobot { key: String, value: String, known: String },
    #[error("item {index}: {error}")]
    Item { index: usize, error: Box<ExprError> },
}

/// The references in a property value, in order, without resolving them.
/// Fails on the first expression that cannot be read.
pub fn check(value: &FieldValue) -> Result<Vec<Reference>, ExprError> {
    let mut references = Vec::new();
    for_each_text(value, |text| {
        references.extend(parse(text)?.iter().filter_map(Piece::reference).cloned());
        Ok(())
    })?;
    Ok(references)
}

/// The property value with its expressions replaced by what they refer to.
///
/// A text that is exactly one expression keeps the referenced value's type;
/// a text mixing literal text and expressions stays text, with user names
/// in place of user ids and dates and times as people read them
/// ([`readable`]), because people read these texts.
///
/// An absent entity field or returned value is Empty, as in Bitrix24; an
/// unknown global constant or robot key is an error, as is bad syntax.
pub fn resolve(value: &FieldValue, scope: &Scope) -> Result<FieldValue, ExprError> {
    match value {
        FieldValue::Single(Value::Text(text)) => resolve_text(text, scope),
        FieldValue::List(items) => {
            let mut resolved = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let item = match item {
                    Value::Text(text) => resolve_text(text, scope).map_err(|error| in_item(index, error))?,
                    other => FieldValue::Single(other.clone()),
                };
                match item {
                    FieldValue::Empty => {}
                    FieldValue::Single(value) => resolved.push(value),
                    FieldValue::List(values) => resolved.extend(values),
                }
            }
            Ok(FieldValue::List(resolved))
        }
        other => Ok(other.clone()),
    }
}

/// The value of `{=Document.FIELD}`: a standard or custom field, or one of the
/// specials, Empty when absent. `None` for the responsible's name without a
/// directory to look it up in.
pub(super) fn document_field(entity: &Entity, code: &str, directory: Option<&Directory>) -> Option<FieldValue> {
    let text = |s: &Option<String>| {
        s.clone()
            .map_or(FieldValue::Empty, |s| FieldValue::Single(Value::Text(s)))
    };
    Some(match code {
        // Ids beyond i64::MAX do not occur; Empty is the honest answer if one did.
        "ID" => i64::try_from(entity.id).map_or(FieldValue::Empty, |id| FieldValue::Single(Value::Integer(id))),
        "STAGE_ID" => text(&entity.stage),
        "CATEGORY_ID" | "PIPELINE" => text(&entity.pipeline),
        "ASSIGNED_BY_ID" => user(entity.responsible),
        "ASSIGNED_BY_FRIENDLY" | "ASSIGNED_BY_PRINTABLE" => {
            let directory = directory?;
            entity.responsible.map_or(FieldValue::Empty, |id| {
                FieldValue::Single(Value::Text(user_name(directory, id)))
            })
        }
        "DATE_CREATE" => FieldValue::Single(Value::DateTime(entity.created_at)),
        "DATE_MODIFY" => FieldValue::Single(Value::DateTime(entity.updated_at)),
        _ => entity.field(code).cloned().unwrap_or_default(),
    })
}

/// A piece of a parsed text.
enum Piece<'t> {
    Text(&'t str),
    Expr(Reference),
}

impl Piece<'_> {
    fn reference(&self) -> Option<&Reference> {
        match self {
            Piece::Expr(reference) => Some(reference),
            Piece::Text(_) => None,
        }
    }
}

fn parse(text: &str) -> Result<Vec<Piece<'_>>, ExprError> {
    let mut pieces = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find("{=") {
        let at = rest + found;
        if at > rest {
            pieces.push(Piece::Text(&text[rest..at]));
        }
        let end = text[at..].find('}').ok_or_else(|| ExprError::Unclosed {
            expr: excerpt(&text[at..]),
            at,
        })?;
        let expr = &text[at..=at + end];
        pieces.push(Piece::Expr(reference(&expr[2..end], expr, at)?));
        rest = at + end + 1;
    }
    if rest < text.len() {
        pieces.push(Piece::Text(&text[rest..]));
    }
    Ok(pieces)
}

/// The reference written between `{=` and `}`.
fn reference(inner: &str, expr: &str, at: usize) -> Result<Reference, ExprError> {
    let parts: Vec<&str> = inner.split('.').map(str::trim).collect();
    let expr = expr.to_owned();
    if parts.iter().any(|part| part.is_empty()) {
        return Err(ExprError::EmptyName { expr, at });
    }
    let malformed = |form| ExprError::Malformed {
        expr: expr.clone(),
        at,
        form,
    };
    let name = |part: &str, form| {
        let valid = part.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(part.to_owned())
        } else {
            Err(malformed(form))
        }
    };
    let form = match parts[0] {
        "Document" => "{=Document.FIELD}",
        "GlobalConst" => "{=GlobalConst.NAME}",
        "Robot" => "{=Robot.KEY.VALUE}",
        "Event" => "{=Event.FIELD}",
        "Supervisor" => "{=Supervisor}",
        "Responsible" => "{=Responsible}",
        namespace => {
            return Err(ExprError::UnknownNamespace {
                namespace: namespace.to_owned(),
                expr,
                at,
            });
        }
    };
    match parts.as_slice() {
        ["Document", field] => Ok(Reference::Document(name(field, form)?)),
        ["GlobalConst", constant] => Ok(Reference::GlobalConst(name(constant, form)?)),
        ["Robot", key, value] => Ok(Reference::Robot {
            key: name(key, form)?,
            value: name(value, form)?,
        }),
        ["Event", field] => Ok(Reference::Event(name(field, form)?)),
        ["Supervisor"] => Ok(Reference::Supervisor),
        ["Responsible"] => Ok(Reference::Responsible),
        _ => Err(malformed(form)),
    }
}

/// The start of an unclosed expression, short enough for an error message
/// even when the rest of the text is a whole email.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut short: String = text.chars().take(MAX_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

fn resolve_text(text: &str, scope: &Scope) -> Result<FieldValue, ExprError> {
    let pieces = parse(text)?;
    let blank_around = pieces.iter().all(|piece| match piece {
        Piece::Text(literal) => literal.trim().is_empty(),
        Piece::Expr(_) => true,
    });
    let mut references = pieces.iter().filter_map(Piece::reference);
    match (references.next(), references.next()) {
        (None, _) => return Ok(FieldValue::Single(Value::Text(text.to_owned()))),
        (Some(only), None) if blank_around => return lookup(only, scope),
        _ => {}
    }
    let mut out = String::with_capacity(text.len());
    for piece in &pieces {
        match piece {
            Piece::Text(literal) => out.push_str(literal),
            Piece::Expr(reference) => {
                out.push_str(&display(&lookup(reference, scope)?, scope));
            }
        }
    }
    Ok(FieldValue::Single(Value::Text(out)))
}

fn lookup(reference: &Reference, scope: &Scope) -> Result<FieldValue, ExprError> {
    let responsible = scope.entity.responsible;
    match reference {
        Reference::Document(field) => {
            Ok(document_field(scope.entity, field, Some(scope.directory)).unwrap_or_default())
        }
        Reference::GlobalConst(name) => scope
            .constants
            .get(name)
            .cloned()
            .ok_or_else(|| ExprError::UnknownConstant {
                name: name.clone(),
                known: known(scope.constants.keys()),
            }),
        Reference::Robot { key, value } => {
            let returned = scope.returns.get(key).ok_or_else(|| ExprError::UnknownRobot {
                key: key.clone(),
                value: value.clone(),
                known: known(scope.returns.keys()),
            })?;
            // A robot may leave an optional value unset: like a missing field.
            Ok(returned.get(value).cloned().unwrap_or_default())
        }
        // An event may leave a value out: like a missing field.
        Reference::Event(code) => Ok(scope.event.get(code).cloned().unwrap_or_default()),
        Reference::Responsible => Ok(user(responsible)),
        Reference::Supervisor => Ok(user(responsible.and_then(|id| scope.directory.supervisor(id)))),
    }
}

fn user(id: Option<UserId>) -> FieldValue {
    id.map_or(FieldValue::Empty, |id| FieldValue::Single(Value::User(id)))
}

fn user_name(directory: &Directory, id: UserId) -> String {
    directory
        .user(id)
        .map_or_else(|| format!("user {id}"), |user| user.name.clone())
}

fn known<'k>(names: impl Iterator<Item = &'k String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "(none defined)".to_owned()
    } else {
        names.join(", ")
    }
}

/// A value as it reads inside a text: empty is nothing, users by name,
/// dates and times [`readable`].
fn display(value: &FieldValue, scope: &Scope) -> String {
    let one = |value: &Value| match value {
        Value::User(id) => user_name(scope.directory, *id),
        other => readable(other, scope.time_zone),
    };
    match value {
        FieldValue::Empty => String::new(),
        FieldValue::Single(value) => one(value),
        FieldValue::List(values) => values.iter().map(one).collect::<Vec<_>>().join(", "),
    }
}

fn for_each_text(value: &FieldValue, mut visit: impl FnMut(&str) -> Result<(), ExprError>) -> Result<(), ExprError> {
    match value {
        FieldValue::Single(Value::Text(text)) => visit(text),
        FieldValue::List(items) => items.iter().enumerate().try_for_each(|(index, item)| match item {
            Value::Text(text) => visit(text).map_err(|error| in_item(index, error)),
            _ => Ok(()),
        }),
        _ => Ok(()),
    }
}

fn in_item(index: usize, error: ExprError) -> ExprError {
    ExprError::Item {
        index,
        error: Box::new(error),
    }
}

#[cfg(test)]
mod tests;
