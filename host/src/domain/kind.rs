//! What an entity is and how one is named: its kind, its id, a reference
//! written `deal:42`, and the id of a user. Below values and entities, so
//! both can name entities.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::ValueError;

pub type UserId = u64;
pub type EntityId = u64;

/// The kinds of CRM records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    Lead,
    Deal,
    Contact,
    Company,
    Task,
    Activity,
}

impl EntityKind {
    pub const ALL: [EntityKind; 6] = [
        EntityKind::Lead,
        EntityKind::Deal,
        EntityKind::Contact,
        EntityKind::Company,
        EntityKind::Task,
        EntityKind::Activity,
    ];

    pub fn as_str(self) -> &'static str {
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

impl FromStr for EntityKind {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            ValueError::new(format!(
                "`{s}` is not an entity kind; use lead, deal, contact, company, task or activity"
            ))
        })
    }
}

/// A reference to one entity, written `deal:42`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub kind: EntityKind,
    pub id: EntityId,
}

impl EntityRef {
    /// Its kind and number as people read them, such as `Deal #12`.
    pub fn caption(&self) -> String {
        let kind = self.kind.as_str();
        format!("{}{} #{}", kind[..1].to_uppercase(), &kind[1..], self.id)
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

impl FromStr for EntityRef {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || ValueError::new(format!("`{s}` is not an entity reference such as `deal:42`"));
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        Ok(EntityRef {
            kind: kind.parse()?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// An [`EntityRef`] in a record people read, written as text (`deal:42`):
/// `#[serde(with = "as_text")]`.
pub mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::EntityRef;

    pub fn serialize<S: Serializer>(r: &EntityRef, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(r)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EntityRef, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }

    /// The same for an optional one.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::EntityRef;

        pub fn serialize<S: Serializer>(r: &Option<EntityRef>, s: S) -> Result<S::Ok, S::Error> {
            match r {
                Some(r) => s.collect_str(r),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EntityRef>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| text.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
