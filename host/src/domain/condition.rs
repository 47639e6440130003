//! Evaluating a robot's or trigger's [`Condition`] against an entity, with a
//! reason an admin can read in the run log.
//!
//! Owns the comparison rules between typed values (numbers across integer,
//! decimal and money; booleans stored as Bitrix24's `Y`/`N`; dates against
//! date-times). Fields are read as expressions read them, specials included.
//! Pure: condition values are taken as they are, so a caller that allows
//! expressions in them resolves those first.

use std::cmp::Ordering;

use chrono::NaiveTime;

use super::automation::{Condition, Op};
use super::entity::{Entity, Fields};
use super::expr::document_field;
use super::value::{Decimal, FieldValue, Timestamp, Value};

/// Whether a condition passed, and the comparison that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub passed: bool,
    /// Such as "`UF_IN_STOCK` is no, wanted = yes".
    pub reason: String,
}

/// A condition that cannot be evaluated: a mistake in its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("cannot compare {field} ({left}) with {right}; give the condition a value {field} can be compared with")]
    Incomparable { field: String, left: String, right: String },
    #[error("{field} is a display name, known only with the portal's directory; test ASSIGNED_BY_ID instead")]
    DisplayName { field: String },
}

/// Evaluates `condition` on the entity's current fields. `All([])` passes and
/// `Any([])` fails; All stops at its first failing part, Any at its first
/// passing one.
///
/// Comparing values no rule relates (money with a date, a number with text)
/// is an error even for `=` and `!=`: such a condition is a configuration
/// mistake that would otherwise silently never (or always) match.
pub fn evaluate(condition: &Condition, entity: &Entity) -> Result<Verdict, ConditionError> {
    evaluate_with(condition, entity, &Fields::new())
}

/// [`evaluate`], where a field written `Event.X` is the value `X` of the
/// event that fired a trigger (a payment's amount, a call's duration),
/// Empty when the event has none.
pub fn evaluate_with(condition: &Condition, entity: &Entity, event: &Fields) -> Result<Verdict, ConditionError> {
    match condition {
        Condition::All(parts) => combine(parts, entity, event, false, "nothing to check"),
        Condition::Any(parts) => combine(parts, entity, event, true, "no alternative given"),
        Condition::Compare { field, op, value } => {
            let left = match field.strip_prefix("Event.") {
                Some(code) => event.get(code).cloned().unwrap_or_default(),
                None => document_field(entity, field, None)
                    .ok_or_else(|| ConditionError::DisplayName { field: field.clone() })?,
            };
            let passed = compare(field, *op, &left, value)?;
            let wanted = match op {
                Op::Empty | Op::NotEmpty => String::new(),
                _ => format!(" {}", show(value)),
            };
            let reason = format!("{field} is {}, wanted {}{wanted}", show(&left), symbol(*op));
            Ok(Verdict { passed, reason })
        }
    }
}

/// All (`decisive` false) or Any (`decisive` true): the first part whose
/// verdict is `decisive` decides; otherwise every part's reason counts.
fn combine(
    parts: &[Condition],
    entity: &Entity,
    event: &Fields,
    decisive: bool,
    none: &str,
) -> Result<Verdict, ConditionError> {
    let mut reasons = Vec::with_capacity(parts.len());
    for part in parts {
        let verdict = evaluate_with(part, entity, event)?;
        if verdict.passed == decisive {
            return Ok(verdict);
        }
        reasons.push(verdict.reason);
    }
    let reason = if reasons.is_empty() {
        none.to_owned()
    } else {
        reasons.join(" and ")
    };
    Ok(Verdict {
        passed: !decisive,
        reason,
    })
}

fn compare(field: &str, op: Op, left: &FieldValue, right: &FieldValue) -> Result<bool, ConditionError> {
    let incomparable = || ConditionError::Incomparable {
        field: field.to_owned(),
        left: kind(left),
        right: kind(right),
    };
    Ok(match op {
        Op::Empty => is_empty(left),
        Op::NotEmpty => !is_empty(left),
        Op::Eq => equals(left, right).ok_or_else(incomparable)?,
        Op::Ne => !equals(left, right).ok_or_else(incomparable)?,
        Op::Contains => contains(left, right).ok_or_else(incomparable)?,
        // Nothing is greater or smaller than an absent value.
        Op::Gt | Op::Ge | Op::Lt | Op::Le if is_empty(left) || is_empty(right) => false,
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let order = match (left, right) {
                (FieldValue::Single(a), FieldValue::Single(b)) => order(a, b),
                _ => None,
            };
            let order = order.ok_or_else(incomparable)?;
            match op {
                Op::Gt => order.is_gt(),
                Op::Ge => order.is_ge(),
                Op::Lt => order.is_lt(),
                _ => order.is_le(),
            }
        }
    })
}

/// `None` when the two cannot be compared at all.
fn equals(left: &FieldValue, right: &FieldValue) -> Option<bool> {
    match (left, right) {
        (l, r) if is_empty(l) || is_empty(r) => Some(is_empty(l) && is_empty(r)),
        (FieldValue::Single(a), FieldValue::Single(b)) => equal(a, b),
        // A list equals a single value when it holds it, as in Bitrix24.
        (FieldValue::List(items), FieldValue::Single(one)) | (FieldValue::Single(one), FieldValue::List(items)) => {
            holds(items, one)
        }
        (FieldValue::List(a), FieldValue::List(b)) => {
            let pairs: Option<Vec<bool>> = a.iter().zip(b).map(|(x, y)| equal(x, y)).collect();
            Some(a.len() == b.len() && pairs?.into_iter().all(|same| same))
        }
        _ => None,
    }
}

fn contains(left: &FieldValue, right: &FieldValue) -> Option<bool> {
    match (left, right) {
        (FieldValue::Single(Value::Text(text)), FieldValue::Single(Value::Text(part))) => {
            Some(text.contains(part.as_str()))
        }
        (FieldValue::List(items), FieldValue::Single(one)) => holds(items, one),
        (l, _) if is_empty(l) => Some(false),
        _ => None,
    }
}

fn holds(items: &[Value], one: &Value) -> Option<bool> {
    for item in items {
        if equal(item, one)? {
            return Some(true);
        }
    }
    Some(false)
}

fn equal(a: &Value, b: &Value) -> Option<bool> {
    if let (Some((x, x_currency)), Some((y, y_currency))) = (number(a), number(b)) {
        let same_currency = x_currency.is_none() || y_currency.is_none() || x_currency == y_currency;
        return Some(same_currency && x == y);
    }
    if let (Some(x), Some(y)) = (instant(a), instant(b)) {
        return Some(x == y);
    }
    match (a, b) {
        (Value::Text(x) | Value::Option(x), Value::Text(y) | Value::Option(y)) => Some(x == y),
        (Value::Boolean(x), Value::Boolean(y)) => Some(x == y),
        (Value::Boolean(x), Value::Text(text)) | (Value::Text(text), Value::Boolean(x)) => truth(text).map(|y| *x == y),
        (Value::User(x), Value::User(y)) => Some(x == y),
        (Value::Entity(x), Value::Entity(y)) => Some(x == y),
        (Value::File(x), Value::File(y)) => Some(x == y),
        _ => None,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some((x, x_currency)), Some((y, y_currency))) = (number(a), number(b)) {
        // Amounts in different currencies have no order without a rate.
        return match (x_currency, y_currency) {
            (Some(x_currency), Some(y_currency)) if x_currency != y_currency => None,
            _ => Some(x.cmp(&y)),
        };
    }
    if let (Some(x), Some(y)) = (instant(a), instant(b)) {
        return Some(x.cmp(&y));
    }
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// An amount, with its currency when it is money.
fn number(value: &Value) -> Option<(Decimal, Option<&str>)> {
    match value {
        Value::Integer(i) => Some((Decimal::new(*i, 0), None)),
        Value::Decimal(d) => Some((*d, None)),
        Value::Money(m) => Some((m.amount, Some(m.currency.as_str()))),
        _ => None,
    }
}

/// A point in time; a date counts from its midnight in UTC.
fn instant(value: &Value) -> Option<Timestamp> {
    match value {
        Value::Date(d) => Some(Timestamp::from_datetime(d.and_time(NaiveTime::MIN).and_utc())),
        Value::DateTime(t) => Some(*t),
        _ => None,
    }
}

/// Bitrix24 stores booleans as `Y`/`N`; people write yes/no and true/false.
fn truth(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" => Some(true),
        "n" | "no" | "false" => Some(false),
        _ => None,
    }
}

fn is_empty(value: &FieldValue) -> bool {
    match value {
        FieldValue::Empty => true,
        FieldValue::Single(Value::Text(text)) => text.is_empty(),
        FieldValue::List(items) => items.is_empty(),
        FieldValue::Single(_) => false,
    }
}

/// The type, for error messages; money with its currency, since amounts in
/// different currencies are not comparable either.
fn kind(value: &FieldValue) -> String {
    let one = |value: &Value| match value {
        Value::Money(m) => format!("money in {}", m.currency),
        other => other.type_name().to_owned(),
    };
    match value {
        FieldValue::Empty => "empty".to_owned(),
        FieldValue::Single(value) => one(value),
        FieldValue::List(items) => format!("list of {}", items.first().map_or("nothing".to_owned(), one)),
    }
}

/// A value as an admin reads it in a reason: booleans as yes/no.
fn show(value: &FieldValue) -> String {
    let one = |value: &Value| match value {
        Value::Boolean(b) => (if *b { "yes" } else { "no" }).to_owned(),
        other => other.to_string(),
    };
    match value {
        FieldValue::Single(single) if !is_empty(value) => one(single),
        FieldValue::List(items) if !items.is_empty() => {
            format!("[{}]", items.iter().map(one).collect::<Vec<_>>().join(", "))
        }
        _ => "empty".to_owned(),
    }
}

fn symbol(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Contains => "contains",
        Op::Empty => "empty",
        Op::NotEmpty => "not empty",
    }
}

#[cfg(test)]
mod tests;
