//! Calls outside services post to an endpoint, the trigger hits a trigger
//! plugin makes of them, and the record of each call.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::digest::Digest;
use super::entity::Fields;
use super::form::FormSpec;
use super::kind::{EntityKind, EntityRef, as_text};
use super::run::{Blame, Denial, LogLine, Outcome};
use super::value::{Timestamp, Value};

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

impl InboundCall {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
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

/// The header a sender's idempotency key arrives in, unless an endpoint
/// names another.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// An inbound URL (`POST /hooks/{id}`) whose calls a trigger plugin handles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    /// Unguessable: it is the endpoint's address.
    pub id: String,
    #[serde(flatten)]
    pub spec: EndpointSpec,
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    pub created_at: Timestamp,
}

/// What an admin sets on an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EndpointSpec {
    /// The trigger plugin that handles its calls; or `form`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// A web form: its calls are submissions, each making a lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<FormSpec>,
    /// What the admin calls it, such as "Telephony".
    #[serde(default)]
    pub title: String,
    /// The secret the sender signs each call with (see
    /// [`SignatureCheck`]); calls to an endpoint without one are not
    /// checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The header carrying the sender's idempotency key, lower case, such
    /// as `x-github-delivery`: a call repeating a handled key changes
    /// nothing.
    #[serde(default = "idempotency_header")]
    pub idempotency_header: String,
    /// What a hit whose lookup finds no one does.
    #[serde(default)]
    pub unmatched: Unmatched,
}

/// What a hit whose lookup finds no entity does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", tag = "then", deny_unknown_fields)]
pub enum Unmatched {
    /// Nothing; the call's record says the hit found no one.
    #[default]
    Ignore,
    /// A lead is created at the first stage of `pipeline`, with the hit's
    /// data and the looked-up value as its fields, and the trigger fires on
    /// it: a message from an unknown number becomes a lead.
    CreateLead { pipeline: String },
}

fn idempotency_header() -> String {
    IDEMPOTENCY_HEADER.into()
}

/// What became of a call posted to `/hooks/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    /// The plugin handled it and its hits were fired.
    Handled,
    /// It repeated the idempotency key of a handled call: nothing done.
    Duplicate,
    /// No endpoint has that id.
    UnknownEndpoint,
    /// Its body was over the limit.
    TooLarge,
    /// The endpoint signs its calls and this one's signature did not hold.
    BadSignature,
    /// The endpoint's plugin is not installed or does not load.
    PluginUnavailable,
    /// The plugin failed on it; nothing was fired.
    PluginFailed,
    /// A form submission that is not what the form takes.
    Invalid,
    /// A form submission that filled the honeypot: taken and dropped.
    Spam,
    /// Too many form submissions from one address: answered, not recorded.
    RateLimited,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Handled => "handled",
            CallStatus::Duplicate => "duplicate",
            CallStatus::UnknownEndpoint => "unknown-endpoint",
            CallStatus::TooLarge => "too-large",
            CallStatus::BadSignature => "bad-signature",
            CallStatus::PluginUnavailable => "plugin-unavailable",
            CallStatus::PluginFailed => "plugin-failed",
            CallStatus::Invalid => "invalid",
            CallStatus::Spam => "spam",
            CallStatus::RateLimited => "rate-limited",
        }
    }
}

/// The verdict on a signed endpoint's call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", tag = "signature")]
pub enum SignatureCheck {
    Valid,
    /// The signature header is absent.
    Missing,
    /// The header is not `t=<unix seconds>,v1=<hex>`.
    Malformed,
    /// Signed too long ago or ahead (a replay, or a sender's clock far
    /// off): `skew_s` seconds from now, over `tolerance_s`.
    Stale {
        skew_s: i64,
        tolerance_s: i64,
    },
    /// No `v1` is the HMAC of this body and time with the secret.
    Mismatch,
}

/// A call as recorded: what arrived, the verdicts on it, what the plugin
/// did, and what each hit it returned did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallRecord {
    /// Assigned when stored.
    #[serde(default)]
    pub id: u64,
    pub endpoint: String,
    pub status: CallStatus,
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    pub received_at: Timestamp,
    /// The body's size in bytes (for a body over the limit, at least the
    /// limit).
    pub size: u64,
    /// Why the call was refused or failed, for a person to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The sender's idempotency key, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// For a duplicate: the call that was handled with its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<u64>,
    /// The signature's verdict; absent when the endpoint does not sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureCheck>,
    /// The plugin's run, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling: Option<Handling>,
    /// The hits the plugin returned and what each did.
    #[serde(default)]
    pub hits: Vec<HitRecord>,
}

/// How a trigger plugin's handling of a call went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Handling {
    #[schema(value_type = String, example = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub plugin: Digest,
    /// The version of the package that installed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blame: Option<Blame>,
    #[serde(default)]
    pub logs: Vec<LogLine>,
    #[serde(default)]
    pub denials: Vec<Denial>,
    #[serde(default)]
    pub fuel_used: u64,
    #[serde(default)]
    pub duration_us: u64,
}

/// A hit and what it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HitRecord {
    pub trigger: String,
    #[schema(value_type = Object)]
    pub target: HitTarget,
    #[schema(value_type = Object)]
    pub data: Fields,
    /// The lead made for a lookup that found no one, when the endpoint
    /// says to make one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "as_text::option")]
    #[schema(value_type = Option<String>, example = "lead:7")]
    pub created: Option<EntityRef>,
    /// For each entity the hit found: moved, or why not. Empty when it
    /// found none.
    pub fired: Vec<Fired>,
}

/// What a trigger did to one entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Fired {
    #[serde(with = "as_text")]
    #[schema(value_type = String, example = "deal:42")]
    pub entity: EntityRef,
    /// The stage it moved to; absent when it did not move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// Why it did not move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<Ignored>,
}

/// Why a trigger code fired for an entity did not move it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", tag = "why")]
pub enum Ignored {
    /// No trigger with the code is on the entity's pipeline.
    NoTrigger,
    /// The entity is in a final stage (success or failure) and no trigger
    /// with the code may take it out.
    FinalStage { stage: String },
    /// The triggers with the code are behind the entity (or at its stage)
    /// and none may move it backwards.
    Backwards { stage: String },
    /// Every trigger that could move it has a false condition.
    ConditionFalse { because: String },
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::NoTrigger => f.write_str("no trigger with this code is on its pipeline"),
            Ignored::FinalStage { stage } => write!(
                f,
                "it is in final stage `{stage}` and no trigger with this code may take it out"
            ),
            Ignored::Backwards { stage } => write!(
                f,
                "the triggers with this code are not ahead of its stage `{stage}` and none may move it backwards"
            ),
            Ignored::ConditionFalse { because } => write!(f, "the trigger's condition is false: {because}"),
        }
    }
}
