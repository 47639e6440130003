//! Typed values of fields, properties and returned values, and their JSON form.
//!
//! JSON is what people write by hand (the local run command's files, the API),
//! so the common types are plain JSON: a string is text, a whole number an
//! integer, `true`/`false` a boolean, `null` empty, an array a list. The others
//! are objects with one key naming the type: `{"money": "150000.00 RUB"}`,
//! `{"decimal": "12.5"}`, `{"date": "2026-11-25"}`,
//! `{"datetime": "2026-11-25T09:00:00Z"}`, `{"user": 7}`,
//! `{"entity": "deal:42"}`, `{"option": "vip"}`,
//! `{"file": {"id": 1, "name": "offer.pdf", "size": 2048}}`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value as Json, json};

use super::error::ValueError;
use super::kind::{EntityRef, UserId};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.timestamp_millis())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

impl FromStr for Timestamp {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        DateTime::parse_from_rfc3339(s)
            .map(|at| Timestamp::from_datetime(at.with_timezone(&Utc)))
            .map_err(|_| {
                ValueError::new(format!(
                    "`{s}` is not an RFC 3339 date-time such as 2026-11-25T09:00:00Z"
                ))
            })
    }
}

/// A calendar date.
pub type Date = NaiveDate;

/// An exact decimal number: `units * 10^-scale`. `12.5` and `12.50` are
/// equal and hash alike.
#[derive(Clone, Copy, Debug, Eq)]
pub struct Decimal {
    pub units: i64,
    pub scale: u8,
}

/// The largest scale a decimal may have: 10^18 still fits in an i64.
const MAX_SCALE: u8 = 18;

impl Decimal {
    pub fn new(units: i64, scale: u8) -> Self {
        Decimal { units, scale }
    }

    /// The value scaled to `scale` digits, exactly, in i128.
    fn scaled(self, scale: u8) -> i128 {
        self.units as i128 * 10i128.pow((scale - self.scale.min(scale)) as u32)
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl std::hash::Hash for Decimal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (mut units, mut scale) = (self.units, self.scale);
        while scale > 0 && units % 10 == 0 {
            units /= 10;
            scale -= 1;
        }
        (units, scale).hash(state);
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        self.scaled(scale).cmp(&other.scaled(scale))
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.units);
        }
        let pow = 10u64.pow(self.scale as u32);
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / pow,
            abs % pow,
            width = self.scale as usize
        )
    }
}

impl FromStr for Decimal {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || ValueError::new(format!("`{s}` is not a decimal number such as 1250.50"));
        let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
        let negative = int.starts_with('-');
        let digits = int.trim_start_matches(['-', '+']);
        if digits.is_empty() && frac.is_empty()
            || !digits.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
            || frac.len() > MAX_SCALE as usize
        {
            return Err(bad());
        }
        let units: i64 = format!("{digits}{frac}").parse().map_err(|_| bad())?;
        Ok(Decimal::new(if negative { -units } else { units }, frac.len() as u8))
    }
}

/// An amount of money in a currency.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount: Decimal,
    /// ISO 4217 code, such as `RUB`.
    pub currency: String,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl FromStr for Money {
    type Err = ValueError;
    /// `150000.00 RUB`, or Bitrix24's `150000|RUB`.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let (amount, currency) = s
            .split_once([' ', '|'])
            .ok_or_else(|| ValueError::new(format!("`{s}` is not money such as `150000.00 RUB`")))?;
        let currency = currency.trim();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ValueError::new(format!(
                "`{currency}` is not an ISO 4217 currency code such as RUB"
            )));
        }
        Ok(Money {
            amount: amount.parse()?,
            currency: currency.to_owned(),
        })
    }
}

/// A stored file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub id: u64,
    pub name: String,
    pub size: u64,
}

/// One typed value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Text(String),
    Integer(i64),
    Decimal(Decimal),
    Money(Money),
    Boolean(bool),
    Date(Date),
    DateTime(Timestamp),
    User(UserId),
    Entity(EntityRef),
    Option(String),
    File(FileRef),
}

/// The value of a field, property or returned value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum FieldValue {
    #[default]
    Empty,
    Single(Value),
    List(Vec<Value>),
}

impl Value {
    /// The type's name, as used in JSON and in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) => "text",
            Value::Integer(_) => "integer",
            Value::Decimal(_) => "decimal",
            Value::Money(_) => "money",
            Value::Boolean(_) => "boolean",
            Value::Date(_) => "date",
            Value::DateTime(_) => "datetime",
            Value::User(_) => "user",
            Value::Entity(_) => "entity",
            Value::Option(_) => "option",
            Value::File(_) => "file",
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Value::Text(s) => json!(s),
            Value::Integer(i) => json!(i),
            Value::Boolean(b) => json!(b),
            Value::Decimal(d) => json!({ "decimal": d.to_string() }),
            Value::Money(m) => json!({ "money": m.to_string() }),
            Value::Date(d) => json!({ "date": d.to_string() }),
            Value::DateTime(t) => json!({ "datetime": t.to_string() }),
            Value::User(u) => json!({ "user": u }),
            Value::Entity(r) => json!({ "entity": r.to_string() }),
            Value::Option(o) => json!({ "option": o }),
            Value::File(f) => json!({ "file": f }),
        }
    }

    pub fn from_json(json: &Json) -> Result<Value, ValueError> {
        match json {
            Json::String(s) => Ok(Value::Text(s.clone())),
            Json::Bool(b) => Ok(Value::Boolean(*b)),
            Json::Number(n) => n.as_i64().map(Value::Integer).ok_or_else(|| {
                ValueError::new(format!(
                    "{n} is not a whole number; write decimals as {{\"decimal\": \"{n}\"}}"
                ))
            }),
            Json::Object(map) if map.len() == 1 => {
                let (ty, inner) = map.iter().next().expect("one entry");
                typed_from_json(ty, inner)
            }
            other => Err(ValueError::new(format!(
                "{other} is not a value: use a string, a whole number, true/false, or an object with one key naming the type, such as {{\"money\": \"100.00 RUB\"}}"
            ))),
        }
    }
}

fn typed_from_json(ty: &str, inner: &Json) -> Result<Value, ValueError> {
    let text = || {
        inner
            .as_str()
            .ok_or_else(|| ValueError::new(format!("the value of `{ty}` must be a string, not {inner}")))
    };
    let id = || {
        inner.as_u64().ok_or_else(|| {
            ValueError::new(format!(
                "the value of `{ty}` must be a positive whole number, not {inner}"
            ))
        })
    };
    Ok(match ty {
        "text" => Value::Text(text()?.to_owned()),
        "integer" => Value::Integer(
            inner
                .as_i64()
                .ok_or_else(|| ValueError::new(format!("{inner} is not a whole number")))?,
        ),
        "boolean" => Value::Boolean(
            inner
                .as_bool()
                .ok_or_else(|| ValueError::new(format!("{inner} is not true or false")))?,
        ),
        "decimal" => Value::Decimal(match inner {
            Json::Number(n) => n.to_string().parse()?,
            _ => text()?.parse()?,
        }),
        "money" => Value::Money(text()?.parse()?),
        "date" => Value::Date(
            text()?
                .parse()
                .map_err(|_| ValueError::new(format!("{inner} is not a date such as \"2026-11-25\"")))?,
        ),
        "datetime" => Value::DateTime(text()?.parse()?),
        "user" => Value::User(id()?),
        "entity" => Value::Entity(text()?.parse()?),
        "option" => Value::Option(text()?.to_owned()),
        "file" => Value::File(serde_json::from_value(inner.clone()).map_err(|e| {
            ValueError::new(format!(
                "a file is {{\"id\": 1, \"name\": \"offer.pdf\", \"size\": 2048}}: {e}"
            ))
        })?),
        other => {
            return Err(ValueError::new(format!(
                "`{other}` is not a value type; use one of text, integer, decimal, money, boolean, date, datetime, user, entity, option, file"
            )));
        }
    })
}

impl FieldValue {
    pub fn single(&self) -> Option<&Value> {
        match self {
            FieldValue::Single(v) => Some(v),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            FieldValue::Empty => Json::Null,
            FieldValue::Single(v) => v.to_json(),
            FieldValue::List(vs) => Json::Array(vs.iter().map(Value::to_json).collect()),
        }
    }

    pub fn from_json(json: &Json) -> Result<FieldValue, ValueError> {
        Ok(match json {
            Json::Null => FieldValue::Empty,
            Json::Array(items) => FieldValue::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Value::from_json(v).map_err(|e| ValueError::new(format!("item {i}: {e}"))))
                    .collect::<Result<_, _>>()?,
            ),
            other => FieldValue::Single(Value::from_json(other)?),
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) | Value::Option(s) => f.write_str(s),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Money(m) => write!(f, "{m}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Date(d) => write!(f, "{d}"),
            Value::DateTime(t) => write!(f, "{t}"),
            Value::User(u) => write!(f, "user {u}"),
            Value::Entity(r) => write!(f, "{r}"),
            Value::File(file) => write!(f, "{} ({} bytes)", file.name, file.size),
        }
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Empty => f.write_str("(empty)"),
            FieldValue::Single(v) => write!(f, "{v}"),
            FieldValue::List(vs) => {
                let items: Vec<String> = vs.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", items.join(", "))
            }
        }
    }
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        FieldValue::from_json(&Json::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::from_json(&Json::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn round_trip(text: &str) {
        let json: Json = serde_json::from_str(text).unwrap();
        let value = FieldValue::from_json(&json).unwrap();
        assert_eq!(value.to_json(), json, "{text}");
    }

    #[test]
    fn json_forms_round_trip() {
        for text in [
            r#""hello""#,
            "42",
            "true",
            "null",
            r#"{"decimal":"12.50"}"#,
            r#"{"money":"150000.00 RUB"}"#,
            r#"{"date":"2026-11-25"}"#,
            r#"{"datetime":"2026-11-25T09:00:00.000Z"}"#,
            r#"{"user":7}"#,
            r#"{"entity":"deal:42"}"#,
            r#"{"option":"vip"}"#,
            r#"{"file":{"id":1,"name":"offer.pdf","size":2048}}"#,
            r#"[{"user":1},{"user":2}]"#,
        ] {
            round_trip(text);
        }
    }

    #[test]
    fn bad_json_values_name_the_problem() {
        let err = |text: &str| {
            FieldValue::from_json(&serde_json::from_str(text).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("1.5"),
            r#"1.5 is not a whole number; write decimals as {"decimal": "1.5"}"#
        );
        assert!(err(r#"{"monee": "1 RUB"}"#).starts_with("`monee` is not a value type"));
        assert_eq!(err(r#"{"money": "100"}"#), "`100` is not money such as `150000.00 RUB`");
        assert_eq!(
            err(r#"[1, {"user": -1}]"#),
            "item 1: the value of `user` must be a positive whole number, not -1"
        );
    }

    #[test]
    fn decimals_compare_exactly_across_scales() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(d("12.5"), d("12.50"));
        assert!(d("99999.99") < d("100000"));
        assert!(d("-0.01") < d("0"));
        assert_eq!(d("-3.05").to_string(), "-3.05");
        assert!("1.2.3".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
        assert_eq!("150000|RUB".parse::<Money>().unwrap().to_string(), "150000 RUB");
    }
}
