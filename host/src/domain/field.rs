//! Custom fields as declared: what each kind's `UF_` fields hold, and the
//! check every write of them passes ([`Schema::conform`]), whoever writes
//! (the API, a robot's effect, an inbound trigger, a template, a bulk job).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::catalog::{Choice, Localized, ValueType};
use super::entity::Fields;
use super::kind::EntityKind;
use super::value::{FieldValue, Value};

/// A custom field of one entity kind.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDecl {
    pub kind: EntityKind,
    /// Starts with `UF_`.
    pub code: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default)]
    pub names: Localized,
    /// The choices of an `option` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    /// Holds a list of values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiple: bool,
    /// Every entity of its kind has a value: given when one is created,
    /// never removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// A value refused for a field: the field and what it expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

impl FieldDecl {
    /// Whether the declaration itself makes sense.
    pub fn check(&self) -> Result<(), FieldError> {
        let refuse = |problem: String| {
            Err(FieldError {
                field: self.code.clone(),
                problem,
            })
        };
        let tail = self.code.strip_prefix("UF_").unwrap_or("");
        if tail.is_empty()
            || !tail
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return refuse(
                "a custom field's code is `UF_` and capital letters, digits or `_`, such as UF_SEGMENT".into(),
            );
        }
        match (self.value_type, self.options.is_empty()) {
            (ValueType::Any, _) => refuse(
                "`any` is not a field type; use text, integer, decimal, money, boolean, date, datetime, user, entity, option or file".into(),
            ),
            (ValueType::Option, true) => refuse("an option field lists its options".into()),
            (ValueType::Option, false) => Ok(()),
            (other, false) => refuse(format!("only an option field has options, and this one is {}", other.as_str())),
            (_, true) => Ok(()),
        }
    }

    /// `value` as this field holds it: of its type (text is read as its
    /// type, as forms and CSV files give every value), a list only when
    /// multiple, an option among its choices.
    pub fn conform(&self, value: FieldValue) -> Result<FieldValue, String> {
        match value {
            FieldValue::Empty if self.required => Err("is required and cannot be emptied".into()),
            FieldValue::Empty => Ok(FieldValue::Empty),
            FieldValue::Single(v) if self.multiple => self.conform(FieldValue::List(vec![v])),
            FieldValue::Single(v) => match self.conform_one(v)? {
                Value::Text(t) if t.is_empty() && self.value_type != ValueType::Text => self.conform(FieldValue::Empty),
                v => Ok(FieldValue::Single(v)),
            },
            FieldValue::List(vs) if self.multiple => {
                let blank = |v: &Value| matches!(v, Value::Text(t) if t.is_empty());
                let vs = (vs.into_iter().filter(|v| !blank(v)))
                    .map(|v| self.conform_one(v))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if vs.is_empty() {
                    self.conform(FieldValue::Empty)?
                } else {
                    FieldValue::List(vs)
                })
            }
            FieldValue::List(vs) if vs.len() <= 1 => {
                self.conform(vs.into_iter().next().map_or(FieldValue::Empty, FieldValue::Single))
            }
            FieldValue::List(vs) => Err(format!("holds one value, not a list of {}", vs.len())),
        }
    }

    fn conform_one(&self, value: Value) -> Result<Value, String> {
        let expected = self.value_type.as_str();
        let value = match (self.value_type, value) {
            (_, Value::Text(t)) if t.is_empty() => return Ok(Value::Text(t)),
            (ValueType::Text, Value::Text(t)) => Value::Text(t),
            // Any other value reads as text, as it would be shown.
            (ValueType::Text, Value::File(f)) => return Err(format!("expected text, got the file `{}`", f.name)),
            (ValueType::Text, v) => Value::Text(v.to_string()),
            (ty, Value::Text(t)) => parse(ty, t.trim()).map_err(|e| format!("expected {expected}: {e}"))?,
            (ValueType::Decimal, Value::Integer(i)) => Value::Decimal(super::value::Decimal::new(i, 0)),
            (_, v) if v.type_name() == expected => v,
            (_, v) => return Err(format!("expected {expected}, got `{v}`")),
        };
        match &value {
            Value::Option(code) if !self.options.iter().any(|c| &c.code == code) => {
                let codes: Vec<&str> = self.options.iter().map(|c| c.code.as_str()).collect();
                Err(format!("`{code}` is not one of its options: {}", codes.join(", ")))
            }
            _ => Ok(value),
        }
    }
}

/// Text read as a value of type `ty`.
fn parse(ty: ValueType, text: &str) -> Result<Value, String> {
    let tagged = |tag: &str| Value::from_json(&serde_json::json!({ tag: text })).map_err(|e| e.to_string());
    match ty {
        ValueType::Text | ValueType::Any => Ok(Value::Text(text.to_owned())),
        ValueType::Integer => text
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("`{text}` is not a whole number")),
        ValueType::Boolean => match text {
            "Y" | "y" | "true" | "yes" | "1" => Ok(Value::Boolean(true)),
            "N" | "n" | "false" | "no" | "0" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{text}` is not yes or no")),
        },
        ValueType::User => text
            .parse()
            .map(Value::User)
            .map_err(|_| format!("`{text}` is not a user's number")),
        ValueType::Option => Ok(Value::Option(text.to_owned())),
        ValueType::File => Err(format!("`{text}` is not a file; give {{\"file\": {{\"id\": …}}}}")),
        ValueType::Decimal => tagged("decimal"),
        ValueType::Money => tagged("money"),
        ValueType::Date => tagged("date"),
        ValueType::Datetime => tagged("datetime"),
        ValueType::Entity => tagged("entity"),
    }
}

/// The portal's declared custom fields, by kind and code.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    fields: HashMap<(EntityKind, String), FieldDecl>,
}

impl Schema {
    pub fn new(decls: impl IntoIterator<Item = FieldDecl>) -> Schema {
        Schema {
            fields: decls.into_iter().map(|d| ((d.kind, d.code.clone()), d)).collect(),
        }
    }

    pub fn get(&self, kind: EntityKind, code: &str) -> Option<&FieldDecl> {
        self.fields.get(&(kind, code.to_owned()))
    }

    pub fn all(&self) -> impl Iterator<Item = &FieldDecl> {
        self.fields.values()
    }

    /// The declarations of one kind.
    pub fn of(&self, kind: EntityKind) -> impl Iterator<Item = &FieldDecl> {
        self.fields.values().filter(move |d| d.kind == kind)
    }

    /// Conforms custom fields written to an entity of `kind`: each must be
    /// declared for it and hold what its declaration says
    /// ([`FieldDecl::conform`]); values are replaced by their typed form.
    pub fn conform(&self, kind: EntityKind, fields: &mut Fields) -> Result<(), FieldError> {
        for (code, value) in fields.iter_mut() {
            let Some(decl) = self.get(kind, code) else {
                return Err(FieldError {
                    field: code.clone(),
                    problem: format!(
                        "is not a declared {} field; declare it first (PUT /api/fields/{}/{code})",
                        kind.as_str(),
                        kind.as_str()
                    ),
                });
            };
            *value = decl.conform(std::mem::take(value)).map_err(|problem| FieldError {
                field: code.clone(),
                problem,
            })?;
        }
        Ok(())
    }

    /// [`Schema::conform`] for the `UF_` codes among fields that may also
    /// hold standard ones.
    pub fn conform_custom(&self, kind: EntityKind, fields: &mut Fields) -> Result<(), FieldError> {
        let custom = fields
            .keys()
            .filter(|c| c.starts_with("UF_"))
            .cloned()
            .collect::<Vec<_>>();
        let mut split: Fields = custom.iter().filter_map(|c| fields.remove_entry(c)).collect();
        let conformed = self.conform(kind, &mut split);
        fields.extend(split);
        conformed
    }

    /// Why a robot on `kind`'s pipeline may not be timed relative to
    /// `code`, if it may not: a custom field must be declared as a date or
    /// date-time. Standard fields (`DATE_CREATE`, `CLOSEDATE`...) are the
    /// CRM's own and pass.
    pub fn date_field_problem(&self, kind: EntityKind, code: &str) -> Option<String> {
        if !code.starts_with("UF_") {
            return None;
        }
        match self.get(kind, code) {
            None => Some(format!(
                "`{code}` is not a declared {} field; declare it as a date or datetime field first",
                kind.as_str()
            )),
            Some(decl) if matches!(decl.value_type, ValueType::Date | ValueType::Datetime) && !decl.multiple => None,
            Some(decl) => {
                let holds = decl.value_type.as_str();
                let many = if decl.multiple { "a list of " } else { "" };
                Some(format!(
                    "`{code}` holds {many}{holds} values, not one date or date-time"
                ))
            }
        }
    }

    /// Takes out of `fields`, written to a new entity of `kind` copied from
    /// `source` (a converted lead's deal, say), the custom fields `kind`
    /// does not declare whose values are `source`'s own under the same
    /// code: a copy goes only where the target has such a field, as in
    /// Bitrix24's conversion. Returns their codes. Any other undeclared
    /// field stays, for [`Schema::conform`] to refuse.
    pub fn drop_uncopied(&self, kind: EntityKind, fields: &mut Fields, source: &super::entity::Entity) -> Vec<String> {
        let copied: Vec<String> = fields
            .iter()
            .filter(|(code, value)| {
                code.starts_with("UF_") && self.get(kind, code).is_none() && source.field(code) == Some(*value)
            })
            .map(|(code, _)| code.clone())
            .collect();
        for code in &copied {
            fields.remove(code);
        }
        copied
    }

    /// On creation: every required field of `kind` has a value.
    pub fn check_required(&self, kind: EntityKind, fields: &Fields) -> Result<(), FieldError> {
        let mut required: Vec<&FieldDecl> = self.of(kind).filter(|d| d.required).collect();
        required.sort_by(|a, b| a.code.cmp(&b.code));
        match required
            .into_iter()
            .find(|d| fields.get(&d.code).is_none_or(|v| *v == FieldValue::Empty))
        {
            Some(d) => Err(FieldError {
                field: d.code.clone(),
                problem: format!("is required for every {}; give it a value", kind.as_str()),
            }),
            None => Ok(()),
        }
    }

    /// Why a stored value does not fit its field any more (the field was
    /// removed or changed since), if it does not.
    pub fn misfit(&self, kind: EntityKind, code: &str, value: &FieldValue) -> Option<String> {
        let Some(decl) = self.get(kind, code) else {
            return Some(format!("is not a declared {} field", kind.as_str()));
        };
        match decl.conform(value.clone()) {
            Ok(conformed) if conformed == *value => None,
            Ok(_) => Some(format!(
                "is stored in another form than a {} holds",
                decl.value_type.as_str()
            )),
            Err(problem) => Some(problem),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(spec: serde_json::Value) -> FieldDecl {
        serde_json::from_value(spec).unwrap()
    }

    fn schema() -> Schema {
        Schema::new([
            decl(serde_json::json!({"kind": "deal", "code": "UF_COUNT", "type": "integer"})),
            decl(
                serde_json::json!({"kind": "deal", "code": "UF_SEGMENT", "type": "option", "required": true,
                "options": [{"code": "vip", "names": {}}, {"code": "regular", "names": {}}]}),
            ),
            decl(serde_json::json!({"kind": "deal", "code": "UF_DAYS", "type": "date", "multiple": true})),
        ])
    }

    fn fields(spec: serde_json::Value) -> Fields {
        serde_json::from_value(spec).unwrap()
    }

    fn refusal(spec: serde_json::Value) -> String {
        schema()
            .conform(EntityKind::Deal, &mut fields(spec))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn copies_go_only_where_the_target_declares_the_field() {
        let schema = Schema::new([
            decl(serde_json::json!({"kind": "deal", "code": "UF_SOURCE", "type": "text"})),
            decl(serde_json::json!({"kind": "lead", "code": "UF_SOURCE", "type": "text"})),
            decl(serde_json::json!({"kind": "lead", "code": "UF_REQUEST", "type": "text"})),
        ]);
        let lead: super::super::entity::Entity = serde_json::from_value(serde_json::json!({
            "kind": "lead", "id": 3,
            "custom_fields": {"UF_SOURCE": "fair", "UF_REQUEST": "20 pumps"}}))
        .unwrap();
        let mut deal = fields(serde_json::json!({
            "TITLE": "Pumps", "UF_SOURCE": "fair", "UF_REQUEST": "20 pumps", "UF_OTHER": "set by the robot"}));
        let dropped = schema.drop_uncopied(EntityKind::Deal, &mut deal, &lead);
        assert_eq!(dropped, ["UF_REQUEST"]);
        assert_eq!(
            deal,
            fields(serde_json::json!({"TITLE": "Pumps", "UF_SOURCE": "fair", "UF_OTHER": "set by the robot"})),
            "a declared copy stays; a value that is no copy stays, to be refused"
        );
    }

    #[test]
    fn robots_are_timed_by_declared_date_fields_only() {
        let schema = Schema::new([
            decl(serde_json::json!({"kind": "deal", "code": "UF_WEBINAR_AT", "type": "datetime"})),
            decl(serde_json::json!({"kind": "deal", "code": "UF_DUE", "type": "date"})),
            decl(serde_json::json!({"kind": "deal", "code": "UF_COUNT", "type": "integer"})),
            decl(serde_json::json!({"kind": "deal", "code": "UF_DAYS", "type": "date", "multiple": true})),
        ]);
        let problem = |code| schema.date_field_problem(EntityKind::Deal, code);
        assert_eq!(problem("UF_WEBINAR_AT"), None);
        assert_eq!(problem("UF_DUE"), None);
        assert_eq!(problem("CLOSEDATE"), None, "a standard field is the CRM's own");
        assert_eq!(
            problem("UF_MISSING").unwrap(),
            "`UF_MISSING` is not a declared deal field; declare it as a date or datetime field first"
        );
        assert_eq!(
            problem("UF_COUNT").unwrap(),
            "`UF_COUNT` holds integer values, not one date or date-time"
        );
        assert_eq!(
            problem("UF_DAYS").unwrap(),
            "`UF_DAYS` holds a list of date values, not one date or date-time"
        );
        assert!(
            schema.date_field_problem(EntityKind::Lead, "UF_DUE").is_some(),
            "declared for deals only"
        );
    }

    #[test]
    fn values_are_typed_as_declared() {
        let mut given = fields(serde_json::json!({"UF_COUNT": "12", "UF_SEGMENT": "vip", "UF_DAYS": "2026-12-01"}));
        schema().conform(EntityKind::Deal, &mut given).unwrap();
        assert_eq!(
            given,
            fields(serde_json::json!({"UF_COUNT": 12, "UF_SEGMENT": {"option": "vip"},
                "UF_DAYS": [{"date": "2026-12-01"}]}))
        );
    }

    #[test]
    fn each_violation_names_the_field_and_what_it_expected() {
        assert_eq!(
            refusal(serde_json::json!({"UF_NOPE": 1})),
            "field `UF_NOPE`: is not a declared deal field; declare it first (PUT /api/fields/deal/UF_NOPE)"
        );
        assert_eq!(
            refusal(serde_json::json!({"UF_COUNT": "many"})),
            "field `UF_COUNT`: expected integer: `many` is not a whole number"
        );
        assert_eq!(
            refusal(serde_json::json!({"UF_COUNT": true})),
            "field `UF_COUNT`: expected integer, got `true`"
        );
        assert_eq!(
            refusal(serde_json::json!({"UF_SEGMENT": {"option": "gold"}})),
            "field `UF_SEGMENT`: `gold` is not one of its options: vip, regular"
        );
        assert_eq!(
            refusal(serde_json::json!({"UF_COUNT": [1, 2]})),
            "field `UF_COUNT`: holds one value, not a list of 2"
        );
        assert_eq!(
            refusal(serde_json::json!({"UF_SEGMENT": null})),
            "field `UF_SEGMENT`: is required and cannot be emptied"
        );
        assert_eq!(
            refusal(serde_json::json!({"UF_COUNT": {"user": 3}})),
            "field `UF_COUNT`: expected integer, got `user 3`"
        );
    }

    #[test]
    fn a_new_entity_needs_its_required_fields() {
        let problem = schema().check_required(EntityKind::Deal, &fields(serde_json::json!({"UF_COUNT": 1})));
        assert_eq!(
            problem.unwrap_err().to_string(),
            "field `UF_SEGMENT`: is required for every deal; give it a value"
        );
        assert!(schema().check_required(EntityKind::Lead, &Fields::new()).is_ok());
    }

    #[test]
    fn a_declaration_that_makes_no_sense_is_refused() {
        let bad = |spec| decl(spec).check().unwrap_err().to_string();
        assert!(bad(serde_json::json!({"kind": "deal", "code": "SEGMENT", "type": "text"})).contains("`UF_`"));
        assert!(
            bad(serde_json::json!({"kind": "deal", "code": "UF_S", "type": "option"})).contains("lists its options")
        );
        assert!(bad(serde_json::json!({"kind": "deal", "code": "UF_S", "type": "any"})).contains("not a field type"));
    }

    #[test]
    fn stored_values_that_no_longer_fit_are_told() {
        let s = schema();
        assert_eq!(
            s.misfit(EntityKind::Deal, "UF_COUNT", &FieldValue::Single(Value::Integer(3))),
            None
        );
        assert_eq!(
            s.misfit(
                EntityKind::Deal,
                "UF_COUNT",
                &FieldValue::Single(Value::Text("x".into()))
            )
            .unwrap(),
            "expected integer: `x` is not a whole number"
        );
        assert_eq!(
            s.misfit(EntityKind::Lead, "UF_COUNT", &FieldValue::Empty).unwrap(),
            "is not a declared lead field"
        );
    }
}
