//! The sandbox's view of CRM data, served from the database.
//!
//! Robots run on blocking threads; each read waits on the async store there.

use tokio::runtime::Handle;

use crate::domain::{Entity, EntityId, EntityKind, EntityRef, Value};
use crate::runtime::{CrmData, DataError};
use crate::storage::{Store, StoreError};

pub struct StoreData {
    pub store: Store,
    pub handle: Handle,
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
