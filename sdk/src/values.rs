//! Conveniences on the generated CRM data types: conversions into `value`,
//! reading entity fields, and the names used in messages. Reading is lenient
//! only where no meaning is lost: a one-element list reads as one value, and
//! an amount may be money, a decimal or an integer.

use core::fmt;

use crate::{
    Capability, Date, Decimal, Entity, EntityKind, EntityRef, Failure, Field, FieldValue, Money, UserId, Value,
    ValueType,
};

impl Date {
    /// Days from 1970-01-01 to this date (negative before it), in the
    /// proleptic Gregorian calendar.
    pub fn days_from_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

impl Value {
    /// A text value.
    pub fn text(text: impl Into<String>) -> Self {
        Value::Text(text.into())
    }

    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Text(_) => ValueType::Text,
            Value::Integer(_) => ValueType::Integer,
            Value::Decimal(_) => ValueType::Decimal,
            Value::Money(_) => ValueType::Money,
            Value::Boolean(_) => ValueType::Boolean,
            Value::Date(_) => ValueType::Date,
            Value::Datetime(_) => ValueType::Datetime,
            Value::User(_) => ValueType::User,
            Value::Entity(_) => ValueType::Entity,
            Value::Option(_) => ValueType::Option,
            Value::File(_) => ValueType::File,
        }
    }

    /// The value as an amount: money's amount, a decimal, or an integer.
    pub fn as_amount(&self) -> Option<Decimal> {
        match self {
            Value::Money(money) => Some(money.amount),
            Value::Decimal(decimal) => Some(*decimal),
            Value::Integer(integer) => Some(Decimal::from_integer(*integer)),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.into())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(integer: i64) -> Self {
        Value::Integer(integer)
    }
}

/// So that integer literals (`i32` by default) convert too.
impl From<i32> for Value {
    fn from(integer: i32) -> Self {
        Value::Integer(i64::from(integer))
    }
}

impl From<bool> for Value {
    fn from(boolean: bool) -> Self {
        Value::Boolean(boolean)
    }
}

impl From<Decimal> for Value {
    fn from(decimal: Decimal) -> Self {
        Value::Decimal(decimal)
    }
}

impl From<Money> for Value {
    fn from(money: Money) -> Self {
        Value::Money(money)
    }
}

impl From<EntityRef> for Value {
    fn from(entity: EntityRef) -> Self {
        Value::Entity(entity)
    }
}

impl FieldValue {
    /// The values it holds: none, one, or the list.
    pub fn values(&self) -> &[Value] {
        match self {
            FieldValue::Empty => &[],
            FieldValue::Single(value) => core::slice::from_ref(value),
            FieldValue::List(values) => values,
        }
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.values().is_empty()
    }

    /// The one value it holds, `None` when empty, or `Err` with the count
    /// when it holds several.
    pub fn single(&self) -> Result<Option<&Value>, usize> {
        match self.values() {
            [] => Ok(None),
            [value] => Ok(Some(value)),
            values => Err(values.len()),
        }
    }
}

impl From<Value> for FieldValue {
    fn from(value: Value) -> Self {
        FieldValue::Single(value)
    }
}

impl From<Vec<Value>> for FieldValue {
    fn from(values: Vec<Value>) -> Self {
        FieldValue::List(values)
    }
}

impl Field {
    /// A field, property or returned value named `code`.
    pub fn new(code: impl Into<String>, value: impl Into<Value>) -> Self {
        Field {
            code: code.into(),
            value: FieldValue::Single(value.into()),
        }
    }
}

/// Building entities by hand, for unit tests of robots: the host passes real
/// ones.
impl Entity {
    /// Entity `id` of `kind`, with no fields, pipeline or responsible user.
    pub fn new(kind: EntityKind, id: u64) -> Self {
        Entity {
            kind,
            id,
            pipeline: None,
            stage: None,
            responsible: None,
            fields: Vec::new(),
            custom_fields: Vec::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    /// With standard field `code` set to `value`.
    pub fn with_field(mut self, code: &str, value: impl Into<Value>) -> Self {
        self.fields.push(Field::new(code, value));
        self
    }

    /// With custom field `code` set to `value`.
    pub fn with_custom_field(mut self, code: &str, value: impl Into<Value>) -> Self {
        self.custom_fields.push(Field::new(code, value));
        self
    }

    /// Assigned to `user`.
    pub fn with_responsible(mut self, user: UserId) -> Self {
        self.responsible = Some(user);
        self
    }
}

/// Reading entities.
impl Entity {
    /// The reference to this entity, for host calls.
    pub fn reference(&self) -> EntityRef {
        EntityRef {
            kind: self.kind,
            id: self.id,
        }
    }

    /// The value of a standard or custom field; `None` when the entity has no
    /// such field.
    pub fn field(&self, code: &str) -> Option<&FieldValue> {
        self.fields
            .iter()
            .chain(&self.custom_fields)
            .find(|field| field.code == code)
            .map(|field| &field.value)
    }

    /// The one value of a field, `None` when it is missing or empty.
    pub fn value(&self, code: &str) -> Result<Option<&Value>, Failure> {
        match self.field(code).map(FieldValue::single) {
            None => Ok(None),
            Some(Ok(value)) => Ok(value),
            Some(Err(count)) => Err(bad_field(code, format!("expected one value, got {count}"))),
        }
    }

    /// A text field, `None` when it is missing or empty.
    pub fn text(&self, code: &str) -> Result<Option<&str>, Failure> {
        match self.value(code)? {
            None => Ok(None),
            Some(Value::Text(text)) => Ok(Some(text)),
            Some(other) => Err(bad_field(code, format!("expected text, got {}", other.value_type()))),
        }
    }

    /// An amount field (money, decimal or integer) as a decimal, `None` when
    /// it is missing or empty.
    pub fn amount(&self, code: &str) -> Result<Option<Decimal>, Failure> {
        match self.value(code)? {
            None => Ok(None),
            Some(value) => value.as_amount().map(Some).ok_or_else(|| {
                bad_field(
                    code,
                    format!(
                        "expected an amount (money, decimal or integer), got {}",
                        value.value_type()
                    ),
                )
            }),
        }
    }

    /// A money field, `None` when it is missing or empty.
    pub fn money(&self, code: &str) -> Result<Option<&Money>, Failure> {
        match self.value(code)? {
            None => Ok(None),
            Some(Value::Money(money)) => Ok(Some(money)),
            Some(other) => Err(bad_field(code, format!("expected money, got {}", other.value_type()))),
        }
    }
}

/// A field of the entity holds something the robot cannot use.
fn bad_field(code: &str, problem: String) -> Failure {
    Failure::new("bad_field", format!("field `{code}`: {problem}"))
}

impl EntityRef {
    /// A reference to entity `id` of `kind`.
    pub const fn new(kind: EntityKind, id: u64) -> Self {
        EntityRef { kind, id }
    }
}

impl PartialEq for EntityRef {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.id) == (other.kind, other.id)
    }
}

impl Eq for EntityRef {}

impl core::hash::Hash for EntityRef {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        // The generated `EntityKind` has no `Hash`; its name stands for it.
        (self.kind.name(), self.id).hash(state);
    }
}

/// `deal 42`.
impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

impl EntityKind {
    /// The WIT name, such as `deal`.
    pub const fn name(self) -> &'static str {
        match self {
            EntityKind::Lead => "lead",
            EntityKind::Deal => "deal",
            EntityKind::Contact => "contact",
            EntityKind::Company => "company",
            EntityKind::Task => "task",
            EntityKind::Activity => "activity",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Capability {
    /// The WIT name, such as `change-responsible`, as the admin sees it.
    pub const fn name(self) -> &'static str {
        match self {
            Capability::CrmRead => "crm-read",
            Capability::SetFields => "set-fields",
            Capability::MoveStage => "move-stage",
            Capability::ChangeResponsible => "change-responsible",
            Capability::CreateEntity => "create-entity",
            Capability::AddComment => "add-comment",
            Capability::Notify => "notify",
            Capability::SendMessage => "send-message",
            Capability::KvStore => "kv-store",
            Capability::Calendar => "calendar",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ValueType {
    /// The WIT name, such as `decimal`.
    pub const fn name(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Integer => "integer",
            ValueType::Decimal => "decimal",
            ValueType::Money => "money",
            ValueType::Boolean => "boolean",
            ValueType::Date => "date",
            ValueType::Datetime => "datetime",
            ValueType::User => "user",
            ValueType::Entity => "entity",
            ValueType::Option => "option",
            ValueType::File => "file",
            ValueType::Any => "any value",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_epoch() {
        let day = |year, month, day| Date { year, month, day }.days_from_epoch();
        assert_eq!(day(1970, 1, 1), 0);
        assert_eq!(day(1969, 12, 31), -1);
        assert_eq!(day(2000, 3, 1), 11_017);
        assert_eq!(day(2026, 11, 25), 20_782);
        assert_eq!(day(2024, 2, 29) + 1, day(2024, 3, 1));
    }

    fn deal(fields: Vec<Field>, custom_fields: Vec<Field>) -> Entity {
        Entity {
            fields,
            custom_fields,
            ..Entity::new(EntityKind::Deal, 7)
        }
    }

    #[test]
    fn finds_standard_and_custom_fields() {
        let entity = deal(vec![Field::new("TITLE", "Boiler")], vec![Field::new("UF_SIZE", 3)]);
        assert_eq!(entity.text("TITLE").unwrap(), Some("Boiler"));
        assert!(matches!(entity.value("UF_SIZE").unwrap(), Some(Value::Integer(3))));
        assert!(entity.field("UF_NONE").is_none());
        assert_eq!(entity.reference().to_string(), "deal 7");
    }

    #[test]
    fn reads_amounts_from_money_decimal_and_integer() {
        let entity = deal(
            vec![
                Field::new("M", Money::new(Decimal::new(1250, 2), "RUB")),
                Field::new("D", Decimal::new(15, 1)),
                Field::new("I", 4),
                Field {
                    code: "E".into(),
                    value: FieldValue::Empty,
                },
                Field::new("T", "lots"),
            ],
            vec![],
        );
        assert_eq!(entity.amount("M").unwrap(), Some(Decimal::new(1250, 2)));
        assert_eq!(entity.amount("D").unwrap(), Some(Decimal::new(15, 1)));
        assert_eq!(entity.amount("I").unwrap(), Some(Decimal::new(4, 0)));
        assert_eq!(entity.amount("E").unwrap(), None);
        assert_eq!(entity.amount("missing").unwrap(), None);
        let failure = entity.amount("T").unwrap_err();
        assert_eq!(failure.code, "bad_field");
        assert_eq!(
            failure.message,
            "field `T`: expected an amount (money, decimal or integer), got text"
        );
    }

    #[test]
    fn a_list_reads_as_one_value_only_when_it_has_one() {
        let entity = deal(
            vec![
                Field {
                    code: "ONE".into(),
                    value: vec![Value::from(5)].into(),
                },
                Field {
                    code: "TWO".into(),
                    value: vec![Value::from(5), Value::from(6)].into(),
                },
            ],
            vec![],
        );
        assert_eq!(entity.amount("ONE").unwrap(), Some(Decimal::new(5, 0)));
        assert_eq!(
            entity.amount("TWO").unwrap_err().message,
            "field `TWO`: expected one value, got 2"
        );
    }
}
