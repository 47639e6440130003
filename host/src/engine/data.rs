//! The sandbox's view of CRM data, served from the database.
//!
//! Robots run on blocking threads; each read waits on the async store there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use crate::domain::{Entity, EntityId, EntityKind, EntityRef, Value};
use crate::runtime::{CrmData, DataError};
use crate::storage::{Store, StoreError};

pub struct StoreData {
    pub store: Store,
    pub handle: Handle,
    /// The key-value writes of the runs before this one in its batch.
    pub written: Written,
}

/// Key-value writes of a batch's runs that succeeded, by namespace and key
/// (`None`: deleted). They commit with the batch, and a later run of the
/// batch reads them rather than the store, so runs that take turns (a
/// counter, "in turn" distribution) each see the turn before theirs.
#[derive(Clone, Default)]
pub struct Written(Arc<Mutex<HashMap<NamespacedKey, Option<Vec<u8>>>>>);

/// A plugin's namespace and a key in it.
type NamespacedKey = (String, String);

impl Written {
    /// Records a successful run's writes in `namespace`.
    pub(super) fn record(&self, namespace: &str, effects: &[crate::domain::Effect]) {
        use crate::domain::Effect;
        let mut written = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for effect in effects {
            match effect {
                Effect::KvSet { key, value } => written.insert((namespace.into(), key.clone()), Some(value.clone())),
                Effect::KvDelete { key } => written.insert((namespace.into(), key.clone()), None),
                _ => continue,
            };
        }
    }

    fn get(&self, namespace: &str, key: &str) -> Option<Option<Vec<u8>>> {
        let written = self.0.lock().unwrap_or_else(|e| e.into_inner());
        written.get(&(namespace.to_owned(), key.to_owned())).cloned()
    }
}

fn unavailable(e: StoreError) -> DataError {
    DataError::Unavailable(e.to_string())
}

impl CrmData for StoreData {
    fn get_entity(&self, target: EntityRef) -> Result<Option<Entity>, DataError> {
        self.handle.block_on(self.store.entity(target)).map_err(unavailable)
    }

    fn list_related(&self, target: EntityRef, kind: EntityKind) -> Result<Vec<Entity>, DataError> {
        self.handle
            .block_on(self.store.related(target, kind))
            .map_err(unavailable)
    }

    fn find(&self, kind: EntityKind, code: &str, value: &Value, limit: u32) -> Result<Vec<Entity>, DataError> {
        self.handle
            .block_on(self.store.find(kind, code, value, limit))
            .map_err(unavailable)
    }

    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, DataError> {
        if let Some(written) = self.written.get(namespace, key) {
            return Ok(written);
        }
        self.handle
            .block_on(self.store.kv_get(namespace, key))
            .map_err(unavailable)
    }

    fn reserve_id(&self, kind: EntityKind) -> Result<EntityId, DataError> {
        self.handle
            .block_on(async {
                let mut tx = self.store.begin().await?;
                let id = tx.reserve_ids(kind, 1).await?;
                tx.commit().await?;
                Ok(id)
            })
            .map_err(unavailable)
    }
}
