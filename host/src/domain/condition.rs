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
mod tests {
    use serde_json::json;

    use super::*;

    fn entity() -> Entity {
        serde_json::from_value(json!({
            "kind": "deal", "id": 42, "pipeline": "general", "stage": "NEW", "responsible": 5,
            "fields": {"TITLE": "Big deal", "OPPORTUNITY": {"money": "150000.00 RUB"}},
            "custom_fields": {
                "UF_IN_STOCK": false, "UF_FLAG": "Y", "UF_COUNT": 3, "UF_RATE": {"decimal": "2.50"},
                "UF_DATE": {"date": "2026-11-25"}, "UF_SEGMENT": {"option": "vip"},
                "UF_TAGS": [{"option": "vip"}, {"option": "new"}], "UF_BLANK": "", "UF_NONE": [],
            },
            "created_at": "2026-11-25T09:00:00Z",
        }))
        .unwrap()
    }

    fn cmp(field: &str, op: Op, value: &str) -> Condition {
        let value = serde_json::from_str(value).unwrap();
        Condition::Compare {
            field: field.into(),
            op,
            value,
        }
    }

    /// Evaluates `condition` on [`entity`]; `expected` is `pass: `, `fail: `
    /// or `error: ` and the reason or message.
    #[track_caller]
    fn verdict(condition: Condition, expected: &str) {
        let actual = match evaluate(&condition, &entity()) {
            Ok(Verdict { passed: true, reason }) => format!("pass: {reason}"),
            Ok(Verdict { passed: false, reason }) => format!("fail: {reason}"),
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(actual, expected, "{condition:?}");
    }

    #[test]
    fn comparisons() {
        use Op::*;
        for (field, op, value, expected) in [
            // Text: exact and case-sensitive; a missing field is empty.
            (
                "TITLE",
                Eq,
                r#""Big deal""#,
                "pass: TITLE is Big deal, wanted = Big deal",
            ),
            (
                "TITLE",
                Eq,
                r#""big deal""#,
                "fail: TITLE is Big deal, wanted = big deal",
            ),
            ("TITLE", Ne, r#""x""#, "pass: TITLE is Big deal, wanted != x"),
            ("UF_MISSING", Eq, r#""x""#, "fail: UF_MISSING is empty, wanted = x"),
            ("UF_MISSING", Ne, r#""x""#, "pass: UF_MISSING is empty, wanted != x"),
            ("UF_MISSING", Eq, "null", "pass: UF_MISSING is empty, wanted = empty"),
            ("UF_BLANK", Eq, "null", "pass: UF_BLANK is empty, wanted = empty"),
            // Booleans, also as Bitrix24's Y/N and yes/no/true/false text.
            ("UF_IN_STOCK", Eq, r#""yes""#, "fail: UF_IN_STOCK is no, wanted = yes"),
            ("UF_IN_STOCK", Eq, "true", "fail: UF_IN_STOCK is no, wanted = yes"),
            ("UF_IN_STOCK", Ne, r#""Y""#, "pass: UF_IN_STOCK is no, wanted != Y"),
            (
                "UF_IN_STOCK",
                Eq,
                r#""FALSE""#,
                "pass: UF_IN_STOCK is no, wanted = FALSE",
            ),
            ("UF_IN_STOCK", Eq, r#""n""#, "pass: UF_IN_STOCK is no, wanted = n"),
            ("UF_FLAG", Eq, "true", "pass: UF_FLAG is Y, wanted = yes"),
            (
                "UF_IN_STOCK",
                Eq,
                r#""maybe""#,
                "error: cannot compare UF_IN_STOCK (boolean) with text; give the condition a value UF_IN_STOCK can be compared with",
            ),
            // Numbers across integer, decimal and money amounts, exactly.
            (
                "OPPORTUNITY",
                Eq,
                r#"{"money": "150000 RUB"}"#,
                "pass: OPPORTUNITY is 150000.00 RUB, wanted = 150000 RUB",
            ),
            (
                "OPPORTUNITY",
                Eq,
                r#"{"money": "150000.00 USD"}"#,
                "fail: OPPORTUNITY is 150000.00 RUB, wanted = 150000.00 USD",
            ),
            (
                "OPPORTUNITY",
                Eq,
                "150000",
                "pass: OPPORTUNITY is 150000.00 RUB, wanted = 150000",
            ),
            (
                "OPPORTUNITY",
                Gt,
                r#"{"decimal": "149999.99"}"#,
                "pass: OPPORTUNITY is 150000.00 RUB, wanted > 149999.99",
            ),
            (
                "OPPORTUNITY",
                Le,
                r#"{"money": "149999.99 RUB"}"#,
                "fail: OPPORTUNITY is 150000.00 RUB, wanted <= 149999.99 RUB",
            ),
            (
                "UF_COUNT",
                Eq,
                r#"{"decimal": "3.000"}"#,
                "pass: UF_COUNT is 3, wanted = 3.000",
            ),
            ("UF_RATE", Lt, "3", "pass: UF_RATE is 2.50, wanted < 3"),
            (
                "UF_RATE",
                Ge,
                r#"{"decimal": "2.5"}"#,
                "pass: UF_RATE is 2.50, wanted >= 2.5",
            ),
            ("UF_COUNT", Le, "2", "fail: UF_COUNT is 3, wanted <= 2"),
            (
                "OPPORTUNITY",
                Gt,
                r#"{"money": "1.00 USD"}"#,
                "error: cannot compare OPPORTUNITY (money in RUB) with money in USD; give the condition a value OPPORTUNITY can be compared with",
            ),
            (
                "OPPORTUNITY",
                Lt,
                r#"{"date": "2026-01-01"}"#,
                "error: cannot compare OPPORTUNITY (money in RUB) with date; give the condition a value OPPORTUNITY can be compared with",
            ),
            (
                "UF_COUNT",
                Eq,
                r#""3""#,
                "error: cannot compare UF_COUNT (integer) with text; give the condition a value UF_COUNT can be compared with",
            ),
            // Dates and date-times; a date is its midnight in UTC.
            (
                "UF_DATE",
                Eq,
                r#"{"datetime": "2026-11-25T00:00:00Z"}"#,
                "pass: UF_DATE is 2026-11-25, wanted = 2026-11-25T00:00:00.000Z",
            ),
            (
                "UF_DATE",
                Lt,
                r#"{"datetime": "2026-11-25T00:00:01Z"}"#,
                "pass: UF_DATE is 2026-11-25, wanted < 2026-11-25T00:00:01.000Z",
            ),
            (
                "UF_DATE",
                Ge,
                r#"{"date": "2026-11-26"}"#,
                "fail: UF_DATE is 2026-11-25, wanted >= 2026-11-26",
            ),
            (
                "DATE_CREATE",
                Gt,
                r#"{"date": "2026-11-25"}"#,
                "pass: DATE_CREATE is 2026-11-25T09:00:00.000Z, wanted > 2026-11-25",
            ),
            // Text orders lexicographically; nothing is ordered against empty.
            ("TITLE", Gt, r#""Apple""#, "pass: TITLE is Big deal, wanted > Apple"),
            ("TITLE", Lt, r#""Big""#, "fail: TITLE is Big deal, wanted < Big"),
            ("UF_MISSING", Gt, "1", "fail: UF_MISSING is empty, wanted > 1"),
            // Options compare codes, with options or text.
            (
                "UF_SEGMENT",
                Eq,
                r#"{"option": "vip"}"#,
                "pass: UF_SEGMENT is vip, wanted = vip",
            ),
            ("UF_SEGMENT", Eq, r#""vip""#, "pass: UF_SEGMENT is vip, wanted = vip"),
            (
                "UF_SEGMENT",
                Ne,
                r#"{"option": "new"}"#,
                "pass: UF_SEGMENT is vip, wanted != new",
            ),
            // Lists: equal to a single value means holding it.
            (
                "UF_TAGS",
                Eq,
                r#"{"option": "new"}"#,
                "pass: UF_TAGS is [vip, new], wanted = new",
            ),
            (
                "UF_TAGS",
                Eq,
                r#"{"option": "old"}"#,
                "fail: UF_TAGS is [vip, new], wanted = old",
            ),
            (
                "UF_TAGS",
                Eq,
                r#"[{"option": "vip"}, {"option": "new"}]"#,
                "pass: UF_TAGS is [vip, new], wanted = [vip, new]",
            ),
            (
                "UF_TAGS",
                Eq,
                r#"[{"option": "new"}, {"option": "vip"}]"#,
                "fail: UF_TAGS is [vip, new], wanted = [new, vip]",
            ),
            (
                "UF_TAGS",
                Gt,
                r#"{"option": "a"}"#,
                "error: cannot compare UF_TAGS (list of option) with option; give the condition a value UF_TAGS can be compared with",
            ),
            // Contains: text in text, a value in a list.
            (
                "TITLE",
                Contains,
                r#""deal""#,
                "pass: TITLE is Big deal, wanted contains deal",
            ),
            (
                "TITLE",
                Contains,
                r#""Deal""#,
                "fail: TITLE is Big deal, wanted contains Deal",
            ),
            (
                "UF_TAGS",
                Contains,
                r#"{"option": "vip"}"#,
                "pass: UF_TAGS is [vip, new], wanted contains vip",
            ),
            (
                "UF_NONE",
                Contains,
                r#"{"option": "vip"}"#,
                "fail: UF_NONE is empty, wanted contains vip",
            ),
            (
                "UF_MISSING",
                Contains,
                r#""x""#,
                "fail: UF_MISSING is empty, wanted contains x",
            ),
            (
                "UF_COUNT",
                Contains,
                r#""3""#,
                "error: cannot compare UF_COUNT (integer) with text; give the condition a value UF_COUNT can be compared with",
            ),
            // Empty: absent, empty text, empty list.
            ("UF_MISSING", Empty, "null", "pass: UF_MISSING is empty, wanted empty"),
            ("UF_BLANK", Empty, "null", "pass: UF_BLANK is empty, wanted empty"),
            ("UF_NONE", Empty, "null", "pass: UF_NONE is empty, wanted empty"),
            ("TITLE", Empty, "null", "fail: TITLE is Big deal, wanted empty"),
            ("TITLE", NotEmpty, "null", "pass: TITLE is Big deal, wanted not empty"),
            ("UF_NONE", NotEmpty, "null", "fail: UF_NONE is empty, wanted not empty"),
            // The same specials as in expressions.
            ("ID", Eq, "42", "pass: ID is 42, wanted = 42"),
            ("STAGE_ID", Eq, r#""NEW""#, "pass: STAGE_ID is NEW, wanted = NEW"),
            (
                "CATEGORY_ID",
                Ne,
                r#""general""#,
                "fail: CATEGORY_ID is general, wanted != general",
            ),
            (
                "ASSIGNED_BY_ID",
                Eq,
                r#"{"user": 5}"#,
                "pass: ASSIGNED_BY_ID is user 5, wanted = user 5",
            ),
            (
                "ASSIGNED_BY_FRIENDLY",
                Eq,
                r#""Anna""#,
                "error: ASSIGNED_BY_FRIENDLY is a display name, known only with the portal's directory; test ASSIGNED_BY_ID instead",
            ),
        ] {
            verdict(cmp(field, op, value), expected);
        }
    }

    #[test]
    fn all_and_any() {
        let in_stock = || cmp("UF_IN_STOCK", Op::Eq, r#""yes""#);
        let titled = || cmp("TITLE", Op::NotEmpty, "null");
        let three = || cmp("UF_COUNT", Op::Eq, "3");
        let many = || cmp("UF_COUNT", Op::Gt, "5");
        let broken = || cmp("OPPORTUNITY", Op::Gt, r#"{"date": "2026-01-01"}"#);
        for (condition, expected) in [
            (Condition::All(vec![]), "pass: nothing to check"),
            (Condition::Any(vec![]), "fail: no alternative given"),
            (
                Condition::All(vec![titled(), in_stock(), broken()]),
                "fail: UF_IN_STOCK is no, wanted = yes",
            ),
            (
                Condition::All(vec![titled(), three()]),
                "pass: TITLE is Big deal, wanted not empty and UF_COUNT is 3, wanted = 3",
            ),
            (
                Condition::Any(vec![in_stock(), many()]),
                "fail: UF_IN_STOCK is no, wanted = yes and UF_COUNT is 3, wanted > 5",
            ),
            (
                Condition::Any(vec![in_stock(), three(), broken()]),
                "pass: UF_COUNT is 3, wanted = 3",
            ),
            (
                Condition::Any(vec![Condition::All(vec![titled(), in_stock()]), many()]),
                "fail: UF_IN_STOCK is no, wanted = yes and UF_COUNT is 3, wanted > 5",
            ),
            (
                Condition::All(vec![titled(), broken()]),
                "error: cannot compare OPPORTUNITY (money in RUB) with date; give the condition a value OPPORTUNITY can be compared with",
            ),
        ] {
            verdict(condition, expected);
        }
    }
}
