//! The port through which the sandbox reaches CRM data during a run.
//!
//! The local run command serves it from JSON files; the engine serves it from
//! the database. Writes never go through here: they are effects, applied after
//! the run.

use crate::domain::{Entity, EntityId, EntityKind, EntityRef, Value};

/// Why data could not be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DataError {
    /// Temporarily unavailable (a database timeout): the guest is told and
    /// may retry; the run is not failed by the host.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault of the host: the run ends with a host error.
    #[error("{0}")]
    Fault(String),
}

/// Read access to the CRM for one run. Implementations are shared by many
/// runs at once.
pub trait CrmData: Send + Sync {
    fn get_entity(&self, target: EntityRef) -> Result<Option<Entity>, DataError>;

    /// The entities of `kind` linked to `target`.
    fn list_related(&self, target: EntityRef, kind: EntityKind) -> Result<Vec<Entity>, DataError>;

    /// At most `limit` entities of `kind` whose field `code` holds `value`.
    fn find(&self, kind: EntityKind, code: &str, value: &Value, limit: u32) -> Result<Vec<Entity>, DataError>;

    /// A value in a plugin's key-value store, as committed by earlier runs.
    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, DataError>;

    /// Reserves an id for an entity a robot asks to create.
    fn reserve_id(&self, kind: EntityKind) -> Result<EntityId, DataError>;
}
