//! CRM data served from JSON files: the local run command's stand-in for the
//! database, so a plugin author can run a robot against an entity they wrote.
//!
//! The entity and the related entities are linked to each other: asking for
//! the entity's related deals returns the related deals, and asking a related
//! entity for its related entities of the main entity's kind returns the main
//! entity.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::{Entity, EntityId, EntityKind, EntityRef, FieldValue, Value};
use crate::runtime::{CrmData, DataError};

pub struct JsonCrm {
    main: EntityRef,
    /// The main entity first, then the related ones.
    entities: Vec<Entity>,
    kv: HashMap<String, Vec<u8>>,
    next_id: AtomicU64,
}

impl JsonCrm {
    pub fn new(entity: Entity, related: Vec<Entity>) -> Self {
        let main = entity.reference();
        let mut entities = vec![entity];
        entities.extend(related);
        let next_id = entities.iter().map(|e| e.id).max().unwrap_or(0) + 1;
        JsonCrm {
            main,
            entities,
            kv: HashMap::new(),
            next_id: AtomicU64::new(next_id),
        }
    }

    /// Values the plugin's key-value store starts with.
    pub fn with_kv(mut self, kv: HashMap<String, Vec<u8>>) -> Self {
        self.kv = kv;
        self
    }
}

fn holds(field: Option<&FieldValue>, value: &Value) -> bool {
    match field {
        Some(FieldValue::Single(v)) => v == value,
        Some(FieldValue::List(vs)) => vs.contains(value),
        _ => false,
    }
}

impl CrmData for JsonCrm {
    fn get_entity(&self, target: EntityRef) -> Result<Option<Entity>, DataError> {
        Ok(self.entities.iter().find(|e| e.reference() == target).cloned())
    }

    fn list_related(&self, target: EntityRef, kind: EntityKind) -> Result<Vec<Entity>, DataError> {
        let related = &self.entities[1..];
        Ok(if target == self.main {
            related.iter().filter(|e| e.kind == kind).cloned().collect()
        } else if related.iter().any(|e| e.reference() == target) && self.main.kind == kind {
            vec![self.entities[0].clone()]
        } else {
            Vec::new()
        })
    }

    fn find(&self, kind: EntityKind, code: &str, value: &Value, limit: u32) -> Result<Vec<Entity>, DataError> {
        Ok(self
            .entities
            .iter()
            .filter(|e| e.kind == kind && holds(e.field(code), value))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn kv_get(&self, _namespace: &str, key: &str) -> Result<Option<Vec<u8>>, DataError> {
        Ok(self.kv.get(key).cloned())
    }

    fn reserve_id(&self, _kind: EntityKind) -> Result<EntityId, DataError> {
        Ok(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}
