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
        "`{expr}` at {at}: unknown namespace `{namespace}`; use Document, GlobalConst, Robot, Responsible or Supervisor"
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
/// in place of user ids because people read these texts.
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
                out.push_str(&display(&lookup(reference, scope)?, scope.directory));
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

/// A value as it reads inside a text: empty is nothing, users by name.
fn display(value: &FieldValue, directory: &Directory) -> String {
    let one = |value: &Value| match value {
        Value::User(id) => user_name(directory, *id),
        other => other.to_string(),
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
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::automation::{Department, User};

    fn entity() -> Entity {
        serde_json::from_value(json!({
            "kind": "deal", "id": 42, "pipeline": "general", "stage": "NEW", "responsible": 5,
            "fields": {"TITLE": "Big deal", "OPPORTUNITY": {"money": "150000.00 RUB"}},
            "custom_fields": {"UF_CRM_X": {"option": "vip"}},
            "created_at": "2026-11-25T09:00:00Z", "updated_at": "2026-11-26T10:30:00Z",
        }))
        .unwrap()
    }

    fn directory() -> Directory {
        let user = |id, name: &str| User {
            id,
            name: name.into(),
            department: Some(1),
            active: true,
        };
        Directory {
            users: vec![user(5, "Anna"), user(9, "Boris")],
            departments: vec![Department {
                id: 1,
                name: "Sales".into(),
                head: Some(9),
                parent: None,
            }],
        }
    }

    fn value(json: &str) -> FieldValue {
        serde_json::from_str(json).unwrap()
    }

    /// Resolves `input` (a value's JSON form) against [`entity`]; `expected`
    /// is the result's JSON form or `error: ` and the message.
    #[track_caller]
    fn resolves_in(entity: &Entity, input: &str, expected: &str) {
        let constants = Constants::from([
            ("Clerk".into(), value(r#"{"user": 5}"#)),
            ("Boss".into(), value(r#"{"user": 12}"#)),
            ("Observers".into(), value(r#"[{"user": 5}, {"user": 9}]"#)),
        ]);
        let returns = BTreeMap::from([("send".into(), Fields::from([("MESSAGE_ID".into(), value(r#""m-1""#))]))]);
        let directory = directory();
        let scope = Scope {
            entity,
            directory: &directory,
            constants: &constants,
            returns: &returns,
        };
        let actual = match resolve(&value(input), &scope) {
            Ok(resolved) => resolved.to_json().to_string(),
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(actual, expected, "{input}");
    }

    #[track_caller]
    fn resolves(input: &str, expected: &str) {
        resolves_in(&entity(), input, expected);
    }

    #[test]
    fn a_lone_expression_keeps_its_type() {
        for (input, expected) in [
            (r#""{=Document.TITLE}""#, r#""Big deal""#),
            (r#""{=Document.OPPORTUNITY}""#, r#"{"money":"150000.00 RUB"}"#),
            (r#""  {=GlobalConst.Clerk} ""#, r#"{"user":5}"#),
            (r#""{=Document.UF_CRM_X}""#, r#"{"option":"vip"}"#),
            (r#""{=Document.ID}""#, "42"),
            (r#""{=Document.STAGE_ID}""#, r#""NEW""#),
            (r#""{=Document.CATEGORY_ID}""#, r#""general""#),
            (r#""{=Document.PIPELINE}""#, r#""general""#),
            (r#""{=Document.ASSIGNED_BY_ID}""#, r#"{"user":5}"#),
            (r#""{=Document.ASSIGNED_BY_FRIENDLY}""#, r#""Anna""#),
            (r#""{=Document.ASSIGNED_BY_PRINTABLE}""#, r#""Anna""#),
            (
                r#""{=Document.DATE_CREATE}""#,
                r#"{"datetime":"2026-11-25T09:00:00.000Z"}"#,
            ),
            (
                r#""{=Document.DATE_MODIFY}""#,
                r#"{"datetime":"2026-11-26T10:30:00.000Z"}"#,
            ),
            (r#""{=Responsible}""#, r#"{"user":5}"#),
            (r#""{=Supervisor}""#, r#"{"user":9}"#),
            (r#""{=Robot.send.MESSAGE_ID}""#, r#""m-1""#),
            (r#""{=GlobalConst.Observers}""#, r#"[{"user":5},{"user":9}]"#),
            // Absent fields and unset returned values are empty, as in Bitrix24.
            (r#""{=Document.UF_MISSING}""#, "null"),
            (r#""{=Robot.send.NOT_RETURNED}""#, "null"),
        ] {
            resolves(input, expected);
        }
    }

    #[test]
    fn mixed_text_displays_values_and_user_names() {
        for (input, expected) in [
            (
                r#""Deal {=Document.TITLE}: {=Document.OPPORTUNITY}""#,
                r#""Deal Big deal: 150000.00 RUB""#,
            ),
            (
                r#""{=Document.ASSIGNED_BY_FRIENDLY}, prepare the contract""#,
                r#""Anna, prepare the contract""#,
            ),
            (
                r#""To {=GlobalConst.Clerk} and {=GlobalConst.Boss}""#,
                r#""To Anna and user 12""#,
            ),
            (
                r#""Watchers: {=GlobalConst.Observers}.""#,
                r#""Watchers: Anna, Boris.""#,
            ),
            (r#""[{=Document.UF_MISSING}]""#, r#""[]""#),
            (r#""{=Document.ID}{=Document.STAGE_ID}""#, r#""42NEW""#),
            // Braces without `=` are literal: JSON in an email body, `{{Title}}`.
            (
                r#""{\"order\": {\"id\": 1}} {{Title}}""#,
                r#""{\"order\": {\"id\": 1}} {{Title}}""#,
            ),
            (r#""no expressions""#, r#""no expressions""#),
        ] {
            resolves(input, expected);
        }
    }

    #[test]
    fn lists_resolve_element_wise_and_flatten() {
        resolves(
            r#"[{"user": 1}, "{=GlobalConst.Observers}", "{=Responsible}", "{=Document.UF_MISSING}", "by {=Responsible}"]"#,
            r#"[{"user":1},{"user":5},{"user":9},{"user":5},"by Anna"]"#,
        );
        resolves(
            r#"["ok", "{=GlobalConst.Nope}"]"#,
            "error: item 1: `{=GlobalConst.Nope}`: there is no global constant `Nope`; define it or use one of: Boss, Clerk, Observers",
        );
    }

    #[test]
    fn other_values_pass_through() {
        for input in [
            r#"{"money":"1.00 RUB"}"#,
            "42",
            "null",
            "true",
            r#"{"option":"{=Document.TITLE}"}"#,
        ] {
            resolves(input, input);
        }
    }

    #[test]
    fn unknown_references_are_errors() {
        for (input, expected) in [
            (
                r#""{=GlobalConst.Clerc}""#,
                "error: `{=GlobalConst.Clerc}`: there is no global constant `Clerc`; define it or use one of: Boss, Clerk, Observers",
            ),
            (
                r#""Sent {=Robot.mail.ID}""#,
                "error: `{=Robot.mail.ID}`: no earlier robot of this stage has the key `mail`; use one of: send",
            ),
            (
                r#""Dear {=Docment.TITLE}""#,
                "error: `{=Docment.TITLE}` at 5: unknown namespace `Docment`; use Document, GlobalConst, Robot, Responsible or Supervisor",
            ),
        ] {
            resolves(input, expected);
        }
    }

    #[test]
    fn without_a_responsible_people_are_empty() {
        let entity = Entity {
            responsible: None,
            ..entity()
        };
        for input in [
            r#""{=Responsible}""#,
            r#""{=Supervisor}""#,
            r#""{=Document.ASSIGNED_BY_FRIENDLY}""#,
        ] {
            resolves_in(&entity, input, "null");
        }
        // Boris heads the top department: nobody supervises him.
        resolves_in(
            &Entity {
                responsible: Some(9),
                ..entity
            },
            r#""{=Supervisor}""#,
            "null",
        );
    }

    /// Parses `input` (a value's JSON form); `expected` is the references,
    /// space-separated, or `error: ` and the message.
    #[track_caller]
    fn parses(input: &str, expected: &str) {
        let actual = match check(&value(input)) {
            Ok(references) => references.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(actual, expected, "{input}");
    }

    #[test]
    fn check_lists_references_and_rejects_bad_syntax() {
        for (input, expected) in [
            (r#""plain text""#, ""),
            (r#""{\"json\": {\"a\": 1}} and {{Title}}""#, ""),
            (r#"{"money": "1.00 RUB"}"#, ""),
            (
                r#""Hi {=Document.TITLE}, {=GlobalConst.Clerk}{=Robot.send.ID} {=Supervisor} {=Responsible}""#,
                "{=Document.TITLE} {=GlobalConst.Clerk} {=Robot.send.ID} {=Supervisor} {=Responsible}",
            ),
            (r#""{= Document.UF_CRM_ДОСТАВКА }""#, "{=Document.UF_CRM_ДОСТАВКА}"),
            (
                r#"[1, "{=Document.TITLE}", "{=GlobalConst.Clerk}"]"#,
                "{=Document.TITLE} {=GlobalConst.Clerk}",
            ),
            (
                r#""Dear {=Docment.TITLE}""#,
                "error: `{=Docment.TITLE}` at 5: unknown namespace `Docment`; use Document, GlobalConst, Robot, Responsible or Supervisor",
            ),
            // Positions are in bytes.
            (
                r#""Привет {=document.TITLE}""#,
                "error: `{=document.TITLE}` at 13: unknown namespace `document`; use Document, GlobalConst, Robot, Responsible or Supervisor",
            ),
            (
                r#""abc {=Document.TITLE""#,
                "error: `{=Document.TITLE` at 4: unclosed expression; end it with `}`",
            ),
            (
                r#""{=Document.TITLE and then a long letter that never closes""#,
                "error: `{=Document.TITLE and then a long letter …` at 0: unclosed expression; end it with `}`",
            ),
            (
                r#""{=}""#,
                "error: `{=}` at 0: empty name; write for example `{=Document.TITLE}`",
            ),
            (
                r#""x {=Document.}""#,
                "error: `{=Document.}` at 2: empty name; write for example `{=Document.TITLE}`",
            ),
            (
                r#""{=Document}""#,
                "error: `{=Document}` at 0: write it as `{=Document.FIELD}`, with names made of letters, digits, `_` and `-`",
            ),
            (
                r#""{=Document.TI TLE}""#,
                "error: `{=Document.TI TLE}` at 0: write it as `{=Document.FIELD}`, with names made of letters, digits, `_` and `-`",
            ),
            (
                r#""{=GlobalConst.A.B}""#,
                "error: `{=GlobalConst.A.B}` at 0: write it as `{=GlobalConst.NAME}`, with names made of letters, digits, `_` and `-`",
            ),
            (
                r#""{=Robot.send}""#,
                "error: `{=Robot.send}` at 0: write it as `{=Robot.KEY.VALUE}`, with names made of letters, digits, `_` and `-`",
            ),
            (
                r#""{=Supervisor.NAME}""#,
                "error: `{=Supervisor.NAME}` at 0: write it as `{=Supervisor}`, with names made of letters, digits, `_` and `-`",
            ),
            (
                r#"["{=Document.TITLE}", "{=Nope}"]"#,
                "error: item 1: `{=Nope}` at 0: unknown namespace `Nope`; use Document, GlobalConst, Robot, Responsible or Supervisor",
            ),
        ] {
            parses(input, expected);
        }
    }
}
