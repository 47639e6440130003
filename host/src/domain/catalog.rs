//! What a plugin says it provides: its robots, their properties and the
//! values they return (Bitrix24's `PROPERTIES` and `RETURN_PROPERTIES`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::entity::Capability;
use super::value::FieldValue;

/// Texts by language code (`en`, `ru`).
pub type Localized = BTreeMap<String, String>;

/// The type of a property's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Text,
    Integer,
    Decimal,
    Money,
    Boolean,
    Date,
    Datetime,
    User,
    Entity,
    Option,
    File,
    /// Any value; the robot checks it.
    Any,
}

impl ValueType {
    /// The type's name, as written in declarations, JSON and messages.
    pub fn as_str(self) -> &'static str {
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
            ValueType::Any => "any",
        }
    }
}

/// One choice of an option property.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub code: String,
    pub names: Localized,
}

/// A robot's input property or returned value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertySpec {
    pub code: String,
    pub names: Localized,
    pub descriptions: Localized,
    pub value_type: ValueType,
    pub required: bool,
    pub multiple: bool,
    pub default: Option<FieldValue>,
    pub choices: Vec<Choice>,
}

/// One robot a plugin provides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobotInfo {
    pub code: String,
    pub names: Localized,
    pub descriptions: Localized,
    pub capabilities: Vec<Capability>,
    pub properties: Vec<PropertySpec>,
    pub returns: Vec<PropertySpec>,
}

/// Which world of the contract a plugin component implements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Robots: `describe` and `run`.
    #[default]
    Robot,
    /// Triggers: `describe` and `handle`, for an endpoint's calls.
    Trigger,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            World::Robot => "robot",
            World::Trigger => "trigger",
        }
    }
}

/// One trigger a plugin provides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerInfo {
    pub code: String,
    pub names: Localized,
    pub descriptions: Localized,
}
