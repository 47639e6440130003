//! What a robot sees during one run: the invocation, with typed access to its
//! properties. Every property problem becomes a `bad_property` failure whose
//! message names the property, so the admin knows which setting to fix.

use crate::{
    Cause, Date, Decimal, Entity, EntityRef, Failure, Field, FieldValue, Invocation, Money, Timestamp, UserId, Value,
    ValueType,
};

/// One run of a robot: the invocation and typed accessors over it.
///
/// Property accessors come in four forms, shown here for decimals:
/// `prop_decimal` (one value, required), `opt_decimal` (one value or `None`),
/// `prop_decimals` (one or more values, required) and `opt_decimals` (any
/// number of values). A one-element list reads as one value, and a decimal
/// property also accepts an integer.
#[derive(Clone, Debug)]
pub struct Context {
    invocation: Invocation,
}

impl Context {
    /// The context of a run of `invocation`.
    pub fn new(invocation: Invocation) -> Self {
        Context { invocation }
    }

    /// Everything the host passed to this run.
    pub fn invocation(&self) -> &Invocation {
        &self.invocation
    }

    /// The entity the robot runs on, as it was when the run started.
    pub fn entity(&self) -> &Entity {
        &self.invocation.entity
    }

    /// The reference to the entity the robot runs on, for host calls.
    pub fn this(&self) -> EntityRef {
        self.invocation.entity.reference()
    }

    /// Why the robot runs.
    pub fn cause(&self) -> &Cause {
        &self.invocation.cause
    }

    /// The current time, fixed for the run: use it rather than a clock.
    pub fn now(&self) -> Timestamp {
        self.invocation.now
    }

    /// The raw value of property `code`; `None` when the host passed none.
    pub fn property(&self, code: &str) -> Option<&FieldValue> {
        self.invocation
            .properties
            .iter()
            .find(|field| field.code == code)
            .map(|field| &field.value)
    }

    /// Property `code` as at most one value of type `ty`.
    fn one<'a, T>(
        &'a self,
        code: &str,
        ty: ValueType,
        get: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, Failure> {
        match self.property(code).map(FieldValue::single) {
            None | Some(Ok(None)) => Ok(None),
            Some(Ok(Some(value))) => get(value).map(Some).ok_or_else(|| {
                Failure::bad_property(code, format!("expected one {ty} value, got {}", value.value_type()))
            }),
            Some(Err(count)) => Err(Failure::bad_property(
                code,
                format!("expected one {ty} value, got {count} values"),
            )),
        }
    }

    /// Property `code` as any number of values of type `ty`.
    fn many<'a, T>(
        &'a self,
        code: &str,
        ty: ValueType,
        get: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Vec<T>, Failure> {
        let values = self.property(code).map_or(&[][..], FieldValue::values);
        values
            .iter()
            .map(|value| {
                get(value).ok_or_else(|| {
                    Failure::bad_property(code, format!("expected {ty} values, got {}", value.value_type()))
                })
            })
            .collect()
    }
}

/// Building invocations by hand, for unit tests of robots: the host passes
/// real ones.
impl Invocation {
    /// A manual run of robot `robot` on `entity`, with no properties, at time
    /// 0 in UTC.
    pub fn new(robot: &str, entity: Entity) -> Self {
        Invocation {
            robot: robot.into(),
            entity,
            properties: Vec::new(),
            cause: Cause::Manual(0),
            run_id: "test-run".into(),
            attempt: 1,
            idempotency_key: "test-run".into(),
            now: 0,
            time_zone: "UTC".into(),
        }
    }

    /// With property `code` set to `value`.
    pub fn with_property(mut self, code: &str, value: impl Into<Value>) -> Self {
        self.properties.push(Field::new(code, value));
        self
    }

    /// With multiple property `code` set to `values`.
    pub fn with_properties(mut self, code: &str, values: Vec<Value>) -> Self {
        self.properties.push(Field {
            code: code.into(),
            value: FieldValue::List(values),
        });
        self
    }
}

fn required<T>(code: &str, value: Option<T>) -> Result<T, Failure> {
    value.ok_or_else(|| Failure::missing_property(code))
}

fn required_list<T>(code: &str, values: Vec<T>) -> Result<Vec<T>, Failure> {
    if values.is_empty() {
        return Err(Failure::missing_property(code));
    }
    Ok(values)
}

/// Generates the four accessors of each property type from how to read one
/// value of it.
macro_rules! typed_accessors {
    ($(
        $ty:ident => $out:ty, |$value:ident| $get:expr;
        $prop:ident, $opt:ident $(, $props:ident, $opt_props:ident)?;
    )*) => {
        impl Context {
            $(
                #[doc = concat!("Required property `code`, one ", stringify!($ty), " value.")]
                pub fn $prop(&self, code: &str) -> Result<$out, Failure> {
                    required(code, self.one(code, ValueType::$ty, |$value| $get)?)
                }

                #[doc = concat!("Optional property `code`, one ", stringify!($ty), " value.")]
                pub fn $opt(&self, code: &str) -> Result<Option<$out>, Failure> {
                    self.one(code, ValueType::$ty, |$value| $get)
                }

                $(
                    #[doc = concat!("Required property `code`, one or more ", stringify!($ty), " values.")]
                    pub fn $props(&self, code: &str) -> Result<Vec<$out>, Failure> {
                        required_list(code, self.many(code, ValueType::$ty, |$value| $get)?)
                    }

                    #[doc = concat!("Optional property `code`, any number of ", stringify!($ty), " values.")]
                    pub fn $opt_props(&self, code: &str) -> Result<Vec<$out>, Failure> {
                        self.many(code, ValueType::$ty, |$value| $get)
                    }
                )?
            )*
        }
    };
}

typed_accessors! {
    Text => &str, |value| match value { Value::Text(text) => Some(text.as_str()), _ => None };
        prop_text, opt_text, prop_texts, opt_texts;
    Integer => i64, |value| match value { Value::Integer(integer) => Some(*integer), _ => None };
        prop_integer, opt_integer, prop_integers, opt_integers;
    Decimal => Decimal, |value| match value {
        Value::Decimal(decimal) => Some(*decimal),
        Value::Integer(integer) => Some(Decimal::from_integer(*integer)),
        _ => None,
    };
        prop_decimal, opt_decimal, prop_decimals, opt_decimals;
    Money => &Money, |value| match value { Value::Money(money) => Some(money), _ => None };
        prop_money, opt_money;
    Boolean => bool, |value| match value { Value::Boolean(boolean) => Some(*boolean), _ => None };
        prop_bool, opt_bool;
    User => UserId, |value| match value { Value::User(user) => Some(*user), _ => None };
        prop_user, opt_user, prop_users, opt_users;
    Date => Date, |value| match value { Value::Date(date) => Some(*date), _ => None };
        prop_date, opt_date;
    Datetime => Timestamp, |value| match value { Value::Datetime(at) => Some(*at), _ => None };
        prop_datetime, opt_datetime;
    Entity => EntityRef, |value| match value { Value::Entity(entity) => Some(*entity), _ => None };
        prop_entity, opt_entity, prop_entities, opt_entities;
    Option => &str, |value| match value { Value::Option(code) => Some(code.as_str()), _ => None };
        prop_option, opt_option, prop_options, opt_options;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::EntityKind;

    pub(crate) fn invocation(properties: Vec<Field>) -> Invocation {
        let deal = Entity::new(EntityKind::Deal, 42).with_responsible(1);
        Invocation {
            properties,
            ..Invocation::new("test", deal)
        }
    }

    fn field(code: &str, value: FieldValue) -> Field {
        Field {
            code: code.into(),
            value,
        }
    }

    fn context() -> Context {
        Context::new(invocation(vec![
            Field::new("code", "A-1"),
            Field::new("count", 3),
            field(
                "bounds",
                vec![Value::from(Decimal::new(1000, 0)), Value::from(5000)].into(),
            ),
            field("users", vec![Value::User(10), Value::User(11)].into()),
            field("empty", FieldValue::Empty),
            field(
                "mixed",
                vec![Value::from(Decimal::new(1, 0)), Value::text("lots")].into(),
            ),
            field("one_user", vec![Value::User(12)].into()),
        ]))
    }

    fn message(result: Result<impl core::fmt::Debug, Failure>) -> String {
        let failure = result.unwrap_err();
        assert_eq!(failure.code, "bad_property");
        assert!(!failure.retryable);
        failure.message
    }

    #[test]
    fn reads_typed_values() {
        let cx = context();
        assert_eq!(cx.prop_text("code").unwrap(), "A-1");
        assert_eq!(cx.prop_integer("count").unwrap(), 3);
        assert_eq!(cx.prop_decimal("count").unwrap(), Decimal::new(3, 0));
        assert_eq!(
            cx.prop_decimals("bounds").unwrap(),
            vec![Decimal::new(1000, 0), Decimal::new(5000, 0)]
        );
        assert_eq!(cx.prop_users("users").unwrap(), vec![10, 11]);
        assert_eq!(cx.prop_user("one_user").unwrap(), 12);
        assert_eq!(cx.prop_users("one_user").unwrap(), vec![12]);
        assert_eq!(cx.prop_texts("code").unwrap(), vec!["A-1"]);
        assert_eq!(cx.this(), EntityRef::new(EntityKind::Deal, 42));
    }

    #[test]
    fn optional_properties_may_be_missing_or_empty() {
        let cx = context();
        assert_eq!(cx.opt_text("absent").unwrap(), None);
        assert_eq!(cx.opt_text("empty").unwrap(), None);
        assert_eq!(cx.opt_users("absent").unwrap(), Vec::<UserId>::new());
        assert_eq!(cx.opt_integer("count").unwrap(), Some(3));
    }

    #[test]
    fn required_properties_name_what_is_missing() {
        let cx = context();
        assert_eq!(
            message(cx.prop_users("absent")),
            "property `absent` is required but not set"
        );
        assert_eq!(
            message(cx.prop_text("empty")),
            "property `empty` is required but not set"
        );
        assert_eq!(
            message(cx.prop_decimals("empty")),
            "property `empty` is required but not set"
        );
    }

    #[test]
    fn wrong_types_name_the_property_and_both_types() {
        let cx = context();
        assert_eq!(
            message(cx.prop_decimals("mixed")),
            "property `mixed`: expected decimal values, got text"
        );
        assert_eq!(
            message(cx.prop_integer("code")),
            "property `code`: expected one integer value, got text"
        );
        assert_eq!(
            message(cx.opt_bool("count")),
            "property `count`: expected one boolean value, got integer"
        );
        assert_eq!(
            message(cx.prop_user("users")),
            "property `users`: expected one user value, got 2 values"
        );
    }
}
