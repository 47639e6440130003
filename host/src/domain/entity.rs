//! Entities, the effects robots ask for, and the capabilities that gate them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::ValueError;
use super::kind::{EntityId, EntityKind, EntityRef, UserId};
use super::value::{FieldValue, Timestamp, Value};

/// Field values by code. Ordered, so output and comparisons are stable.
pub type Fields = BTreeMap<String, FieldValue>;

/// An entity as robots see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    pub kind: EntityKind,
    pub id: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible: Option<UserId>,
    /// Standard fields: `TITLE`, `OPPORTUNITY`, `PHONE`...
    #[serde(default)]
    pub fields: Fields,
    /// Custom fields: `UF_...`.
    #[serde(default)]
    pub custom_fields: Fields,
    #[serde(default)]
    pub created_at: Timestamp,
    #[serde(default)]
    pub updated_at: Timestamp,
}

impl Entity {
    pub fn reference(&self) -> EntityRef {
        EntityRef {
            kind: self.kind,
            id: self.id,
        }
    }

    /// A standard or custom field.
    pub fn field(&self, code: &str) -> Option<&FieldValue> {
        self.fields.get(code).or_else(|| self.custom_fields.get(code))
    }

    /// The entity as people name it in a notification or a list: its kind,
    /// number and title (else name), such as `Deal #12 Pumps`.
    pub fn caption(&self) -> String {
        let mut caption = self.reference().caption();
        let title = ["TITLE", "NAME"].iter().find_map(|code| match self.field(code) {
            Some(FieldValue::Single(Value::Text(t))) if !t.trim().is_empty() => Some(t.trim()),
            _ => None,
        });
        if let Some(title) = title {
            caption.push(' ');
            caption.push_str(title);
        }
        caption
    }
}

/// An entity a robot asks to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEntity {
    pub kind: EntityKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible: Option<UserId>,
    #[serde(default)]
    pub fields: Fields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<EntityRef>,
}

/// A change a robot asks the host to make. A run's effects are applied
/// together, in order, only when the run succeeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum Effect {
    SetFields {
        target: EntityRef,
        fields: Fields,
    },
    MoveToStage {
        target: EntityRef,
        stage: String,
    },
    MoveToPipeline {
        target: EntityRef,
        pipeline: String,
        stage: Option<String>,
    },
    ChangeResponsible {
        target: EntityRef,
        user: UserId,
    },
    /// `id` was reserved when the robot asked, so it could return it.
    CreateEntity {
        id: EntityRef,
        entity: NewEntity,
    },
    AddComment {
        target: EntityRef,
        text: String,
    },
    Notify {
        user: UserId,
        text: String,
        about: Option<EntityRef>,
    },
    /// Links two entities both ways.
    Link {
        a: EntityRef,
        b: EntityRef,
    },
    /// Holds the robots after this one until `target` (a task or an
    /// activity) is completed.
    WaitFor {
        target: EntityRef,
    },
    /// A message to a client, through the outbox.
    SendMessage(Message),
    /// A write to the plugin's key-value store.
    KvSet {
        key: String,
        value: Vec<u8>,
    },
    KvDelete {
        key: String,
    },
}

impl Effect {
    /// The capability that allows this effect.
    pub fn capability(&self) -> Capability {
        match self {
            Effect::SetFields { .. } => Capability::SetFields,
            Effect::MoveToStage { .. } | Effect::MoveToPipeline { .. } => Capability::MoveStage,
            Effect::ChangeResponsible { .. } => Capability::ChangeResponsible,
            Effect::CreateEntity { .. } | Effect::Link { .. } | Effect::WaitFor { .. } => Capability::CreateEntity,
            Effect::SendMessage(_) => Capability::SendMessage,
            Effect::AddComment { .. } => Capability::AddComment,
            Effect::Notify { .. } => Capability::Notify,
            Effect::KvSet { .. } | Effect::KvDelete { .. } => Capability::KvStore,
        }
    }

    /// The existing entity this effect changes, if any.
    pub fn changes(&self) -> Option<EntityRef> {
        match self {
            Effect::SetFields { target, .. }
            | Effect::MoveToStage { target, .. }
            | Effect::MoveToPipeline { target, .. }
            | Effect::ChangeResponsible { target, .. } => Some(*target),
            Effect::CreateEntity { .. }
            | Effect::AddComment { .. }
            | Effect::Notify { .. }
            | Effect::Link { .. }
            | Effect::WaitFor { .. }
            | Effect::SendMessage(_)
            | Effect::KvSet { .. }
            | Effect::KvDelete { .. } => None,
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::SetFields { target, fields } => {
                write!(f, "set fields of {target}:")?;
                for (code, value) in fields {
                    write!(f, " {code} = {value};")?;
                }
                Ok(())
            }
            Effect::MoveToStage { target, stage } => write!(f, "move {target} to stage {stage}"),
            Effect::MoveToPipeline {
                target,
                pipeline,
                stage,
            } => match stage {
                Some(stage) => write!(f, "move {target} to pipeline {pipeline}, stage {stage}"),
                None => write!(f, "move {target} to pipeline {pipeline}, first stage"),
            },
            Effect::ChangeResponsible { target, user } => {
                write!(f, "make user {user} responsible for {target}")
            }
            Effect::CreateEntity { id, entity } => {
                write!(f, "create {id}")?;
                if let Some(parent) = entity.parent {
                    write!(f, " on {parent}")?;
                }
                if let Some(user) = entity.responsible {
                    write!(f, " for user {user}")?;
                }
                for (code, value) in &entity.fields {
                    write!(f, "; {code} = {value}")?;
                }
                Ok(())
            }
            Effect::AddComment { target, text } => write!(f, "comment on {target}: {text}"),
            Effect::Notify { user, text, about } => match about {
                Some(about) => write!(f, "notify user {user} about {about}: {text}"),
                None => write!(f, "notify user {user}: {text}"),
            },
            Effect::Link { a, b } => write!(f, "link {a} and {b}"),
            Effect::WaitFor { target } => write!(f, "hold the next robots until {target} is completed"),
            Effect::SendMessage(m) => write!(f, "send {} to {}: {}", m.channel.as_str(), m.to, m.body),
            Effect::KvSet { key, value } => write!(f, "store {} bytes under `{key}`", value.len()),
            Effect::KvDelete { key } => write!(f, "delete `{key}`"),
        }
    }
}

/// How a message to a client travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Email,
    Sms,
    Messenger,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Messenger => "messenger",
        }
    }
}

/// A message to a client: an email, an SMS or a messenger message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub channel: Channel,
    /// An email address, a phone number or a messenger handle.
    pub to: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub body: String,
    /// The entity it concerns.
    #[serde(default)]
    pub about: Option<EntityRef>,
}

/// What a plugin may be allowed to touch. A host call needs its capability
/// both requested by the robot and granted by the admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    CrmRead,
    SetFields,
    MoveStage,
    ChangeResponsible,
    CreateEntity,
    AddComment,
    Notify,
    SendMessage,
    KvStore,
    Calendar,
}

impl Capability {
    pub const ALL: [Capability; 10] = [
        Capability::CrmRead,
        Capability::SetFields,
        Capability::MoveStage,
        Capability::ChangeResponsible,
        Capability::CreateEntity,
        Capability::AddComment,
        Capability::Notify,
        Capability::SendMessage,
        Capability::KvStore,
        Capability::Calendar,
    ];

    pub fn as_str(self) -> &'static str {
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
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            let all: Vec<_> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            ValueError::new(format!("`{s}` is not a capability; use one of {}", all.join(", ")))
        })
    }
}

/// Who changed an entity through the API: the token's name and, when the
/// token is bound to one, the CRM user it acts for. Recorded as the `by`
/// of the change's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
}

/// Why a robot runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "cause")]
pub enum Cause {
    /// The entity entered the robot's stage.
    StageEntered {
        pipeline: String,
        stage: String,
        previous_stage: Option<String>,
    },
    /// A trigger with this code moved the entity, on an event with this
    /// data (`{=Event.X}` in the robots' properties).
    Trigger {
        code: String,
        #[serde(default, skip_serializing_if = "Fields::is_empty")]
        data: Fields,
    },
    /// A schedule with this name came due.
    Schedule { name: String },
    /// A user started the robot by hand.
    Manual { user: UserId },
}

impl Cause {
    /// The data of the event that caused the run; none but a trigger's.
    pub fn event(&self) -> &Fields {
        static NONE: Fields = Fields::new();
        match self {
            Cause::Trigger { data, .. } => data,
            _ => &NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entity_is_named_by_its_kind_number_and_title() {
        let entity = |fields: serde_json::Value| -> Entity {
            serde_json::from_value(serde_json::json!({"kind": "deal", "id": 12, "fields": fields})).unwrap()
        };
        assert_eq!(
            entity(serde_json::json!({"TITLE": "Pumps"})).caption(),
            "Deal #12 Pumps"
        );
        assert_eq!(entity(serde_json::json!({"NAME": "Ivan"})).caption(), "Deal #12 Ivan");
        assert_eq!(entity(serde_json::json!({"TITLE": "  "})).caption(), "Deal #12");
        let lead = EntityRef {
            kind: EntityKind::Lead,
            id: 3,
        };
        assert_eq!(lead.caption(), "Lead #3");
    }
}
