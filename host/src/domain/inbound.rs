//! Calls outside services post to an endpoint, and the trigger hits a
//! trigger plugin makes of them.

use serde::{Deserialize, Serialize};

use super::entity::Fields;
use super::kind::{EntityKind, EntityRef};
use super::value::Value;

/// A call posted to an endpoint, as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundCall {
    pub method: String,
    /// The path after the endpoint's address.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Which entity a hit is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HitTarget {
    /// A known entity.
    Entity(EntityRef),
    /// The entities of `kind` whose field `code` holds `value`.
    Lookup {
        kind: EntityKind,
        code: String,
        value: Value,
    },
}

/// Fire trigger `trigger` for `target`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerHit {
    pub trigger: String,
    pub target: HitTarget,
    /// Data of the event, kept with it.
    pub data: Fields,
}
