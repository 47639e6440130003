//! Builders for what a robot tells the host: its catalog entry (`RobotInfo`,
//! `Property`, `Choice`) and the values a run returns (`Returns`).

use crate::{Capability, Choice, Field, FieldValue, Localized, Property, RobotInfo, Value, ValueType};

impl Localized {
    /// `text` in language `lang`, such as `en` or `ru`.
    pub fn new(lang: impl Into<String>, text: impl Into<String>) -> Self {
        Localized {
            lang: lang.into(),
            text: text.into(),
        }
    }
}

impl RobotInfo {
    /// An entry for robot `code` with no names, capabilities or properties yet.
    pub fn new(code: impl Into<String>) -> Self {
        RobotInfo {
            code: code.into(),
            names: Vec::new(),
            descriptions: Vec::new(),
            capabilities: Vec::new(),
            properties: Vec::new(),
            returns: Vec::new(),
        }
    }

    /// Adds the robot's name in `lang`.
    pub fn name(mut self, lang: &str, text: &str) -> Self {
        self.names.push(Localized::new(lang, text));
        self
    }

    /// Adds what the robot does, in `lang`.
    pub fn description(mut self, lang: &str, text: &str) -> Self {
        self.descriptions.push(Localized::new(lang, text));
        self
    }

    /// Declares a capability the robot needs; host calls outside the declared
    /// ones are denied even when the admin granted them.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Adds a property the admin sets.
    pub fn property(mut self, property: Property) -> Self {
        self.properties.push(property);
        self
    }

    /// Adds a value the robot returns.
    pub fn returns(mut self, value: Property) -> Self {
        self.returns.push(value);
        self
    }
}

impl Property {
    /// An optional, single-valued property `code` of type `value_type`.
    pub fn new(code: impl Into<String>, value_type: ValueType) -> Self {
        Property {
            code: code.into(),
            names: Vec::new(),
            descriptions: Vec::new(),
            value_type,
            required: false,
            multiple: false,
            default: None,
            choices: Vec::new(),
        }
    }

    /// A text property.
    pub fn text(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Text)
    }

    /// A whole-number property.
    pub fn integer(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Integer)
    }

    /// An exact decimal property.
    pub fn decimal(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Decimal)
    }

    /// A money property.
    pub fn money(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Money)
    }

    /// A yes-or-no property.
    pub fn boolean(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Boolean)
    }

    /// A calendar date property.
    pub fn date(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Date)
    }

    /// A moment-in-time property.
    pub fn datetime(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Datetime)
    }

    /// A CRM user property.
    pub fn user(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::User)
    }

    /// An entity property.
    pub fn entity(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Entity)
    }

    /// A property whose value is one of the `choice`s added to it.
    pub fn option(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Option)
    }

    /// A stored file property.
    pub fn file(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::File)
    }

    /// A property that takes any value; the robot checks what it gets.
    pub fn any(code: impl Into<String>) -> Self {
        Property::new(code, ValueType::Any)
    }

    /// Makes the robot unable to run without it.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Makes it take several values.
    pub fn multiple(mut self) -> Self {
        self.multiple = true;
        self
    }

    /// Adds its name in `lang`.
    pub fn name(mut self, lang: &str, text: &str) -> Self {
        self.names.push(Localized::new(lang, text));
        self
    }

    /// Adds a longer explanation in `lang`.
    pub fn description(mut self, lang: &str, text: &str) -> Self {
        self.descriptions.push(Localized::new(lang, text));
        self
    }

    /// The value the host passes when the admin sets none.
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(FieldValue::Single(value.into()));
        self
    }

    /// The values the host passes when the admin sets none, for a multiple
    /// property.
    pub fn default_list(mut self, values: Vec<Value>) -> Self {
        self.default = Some(FieldValue::List(values));
        self
    }

    /// Adds a choice of an `option` property.
    pub fn choice(mut self, choice: Choice) -> Self {
        self.choices.push(choice);
        self
    }
}

impl Choice {
    /// The choice stored as `code`.
    pub fn new(code: impl Into<String>) -> Self {
        Choice {
            code: code.into(),
            names: Vec::new(),
        }
    }

    /// Adds its name in `lang`.
    pub fn name(mut self, lang: &str, text: &str) -> Self {
        self.names.push(Localized::new(lang, text));
        self
    }
}

/// The values a run returns, for later robots of the stage.
#[derive(Clone, Debug, Default)]
pub struct Returns {
    fields: Vec<Field>,
}

impl Returns {
    /// No values.
    pub fn new() -> Self {
        Returns::default()
    }

    /// Returns `value` as `code`, replacing an earlier value of `code`.
    pub fn set(self, code: &str, value: impl Into<Value>) -> Self {
        self.put(code, FieldValue::Single(value.into()))
    }

    /// Returns several values as `code`, for a multiple returned value.
    pub fn set_list(self, code: &str, values: Vec<Value>) -> Self {
        self.put(code, FieldValue::List(values))
    }

    fn put(mut self, code: &str, value: FieldValue) -> Self {
        match self.fields.iter_mut().find(|field| field.code == code) {
            Some(field) => field.value = value,
            None => self.fields.push(Field {
                code: code.into(),
                value,
            }),
        }
        self
    }

    /// The values so far.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The values, as `run` returns them to the host.
    pub fn into_fields(self) -> Vec<Field> {
        self.fields
    }
}

impl From<Returns> for Vec<Field> {
    fn from(returns: Returns) -> Self {
        returns.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_catalog_entry() {
        let info = RobotInfo::new("assign")
            .name("en", "Assign")
            .name("ru", "Назначить")
            .capability(Capability::ChangeResponsible)
            .property(Property::decimal("bounds").required().multiple().name("en", "Bounds"))
            .property(Property::text("field").default("OPPORTUNITY"))
            .returns(Property::user("assigned_user"));
        assert_eq!(info.names.len(), 2);
        assert_eq!(info.properties[0].value_type, ValueType::Decimal);
        assert!(info.properties[0].required && info.properties[0].multiple);
        assert!(matches!(
            &info.properties[1].default,
            Some(FieldValue::Single(Value::Text(text))) if text == "OPPORTUNITY"
        ));
        assert_eq!(info.returns[0].code, "assigned_user");
    }

    #[test]
    fn a_later_value_replaces_an_earlier_one() {
        let fields = Returns::new()
            .set("band", 1)
            .set("user", Value::User(5))
            .set("band", 2)
            .into_fields();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].code, "band");
        assert!(matches!(fields[0].value, FieldValue::Single(Value::Integer(2))));
    }
}
