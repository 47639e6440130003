//! What the sandbox hands back: everything one attempt of a robot, or one
//! handling of an inbound call by a trigger plugin, produced. The outcome types
//! themselves are the domain's ([`crate::domain::Outcome`]), shared with the
//! run record.

use std::time::Duration;

use serde::Serialize;

pub use crate::domain::{Blame, Denial, Denied, LogLevel, LogLine, Outcome};
use crate::domain::{Digest, Effect, Fields, TriggerHit};

/// Everything one attempt of a robot produced.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptReport {
    pub plugin: Digest,
    pub robot: String,
    pub outcome: Outcome,
    pub blame: Option<Blame>,
    /// The effects to apply, in order. Empty unless the run succeeded.
    pub effects: Vec<Effect>,
    /// The values the robot returned. Empty unless the run succeeded.
    pub returns: Fields,
    pub logs: Vec<LogLine>,
    /// Everything the sandbox refused, whether or not the robot recovered.
    pub denials: Vec<Denial>,
    pub fuel_used: u64,
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// Everything a trigger plugin's handling of one inbound call produced.
#[derive(Clone, Debug, Serialize)]
pub struct HandleReport {
    pub plugin: Digest,
    pub outcome: Outcome,
    pub blame: Option<Blame>,
    /// The hits to fire. Empty unless the handling succeeded.
    pub hits: Vec<TriggerHit>,
    /// Its key-value writes (`kv-set`, `kv-delete`), to make with the hits.
    /// Empty unless the handling succeeded.
    pub kv: Vec<Effect>,
    pub logs: Vec<LogLine>,
    pub denials: Vec<Denial>,
    pub fuel_used: u64,
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
}
