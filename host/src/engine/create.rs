//! Creating entities, with group commit: each caller adds its new entity to
//! the pending commit, and whoever takes the commit turn writes everything
//! pending by then in one
//! transaction. Alone, a creation commits at once; under load, many share a
//! commit (and its multi-row statements) without waiting for a timer.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::oneshot;

use super::{Engine, Result, Settings, invalid, stage};
use crate::domain::{Author, Entity, EntityKind, EntityRef};
use crate::storage::Store;

/// A new entity, checked and ready to be written.
struct Creation {
    entity: Entity,
    /// Who made it through the API, for its `created` event.
    by: Option<Author>,
    /// The pipeline and stage it enters.
    target: Option<(String, String)>,
    links: Vec<EntityRef>,
}

type Answer = oneshot::Sender<Result<Entity>>;

/// Creations waiting for a commit, and the commit turn.
#[derive(Default)]
pub(super) struct GroupCommit {
    waiting: Mutex<Vec<(Creation, Answer)>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Engine {
    /// Creates `entity` (its id and times are the engine's to set; `UF_`
    /// codes among its standard fields are custom fields) linked to `links`.
    /// When it names a pipeline it enters its stage (the pipeline's first
    /// when none is named) and that stage's robots get their runs.
    pub async fn create_entity(&self, entity: Entity, links: Vec<EntityRef>) -> Result<Entity> {
        self.create_entity_by(entity, links, None).await
    }

    /// [`Engine::create_entity`] for `by`, recorded as the author of its
    /// `created` and `stage-entered` events.
    pub async fn create_entity_by(&self, entity: Entity, links: Vec<EntityRef>, by: Option<Author>) -> Result<Entity> {
        let settings = self.settings();
        let kind = entity.kind;
        let target = match &entity.pipeline {
            Some(code) => Some(stage::target(&settings, kind, code, entity.stage.as_deref())?),
            None if entity.stage.is_some() => {
                return Err(invalid("stage", "a stage needs its pipeline"));
            }
            None => None,
        };
        let now = self.now();
        let (fields, mut custom_fields) = stage::split_custom(entity.fields);
        custom_fields.extend(entity.custom_fields);
        settings.fields.conform(kind, &mut custom_fields)?;
        settings.fields.check_required(kind, &custom_fields)?;
        let entity = Entity {
            kind,
            id: self.next_id(kind).await?,
            pipeline: None,
            stage: None,
            responsible: entity.responsible,
            fields,
            custom_fields,
            created_at: now,
            updated_at: now,
        };
        let creation = Creation {
            entity,
            by,
            target,
            links,
        };

        let (done, mut answer) = oneshot::channel();
        self.creations
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((creation, done));
        // Wait for the turn, unless another caller's commit takes this
        // creation along first (waiting on would make every later commit a
        // commit of one).
        let turn = tokio::select! {
            biased;
            created = &mut answer => return self.created(created),
            turn = self.creations.turn.clone().lock_owned() => turn,
        };
        let batch = std::mem::take(&mut *self.creations.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        if !batch.is_empty() {
            // A task of its own, so a caller that goes away mid-commit does
            // not cut the others' commit short; it keeps the turn until done.
            let (store, settings) = (self.store.clone(), self.settings());
            let commit = tokio::spawn(async move {
                write(&store, &settings, batch).await;
                drop(turn);
            });
            commit.await.expect("the group commit does not panic");
        }
        self.created(answer.await)
    }

    fn created(&self, answer: Result<Result<Entity>, oneshot::error::RecvError>) -> Result<Entity> {
        let created = answer.expect("every pending creation is answered")?;
        self.wake.notify_waiters();
        Ok(created)
    }

    /// A new entity id: from this engine's block, or a new block reserved in
    /// its own transaction. Ids from a block left unused are never handed
    /// out again, so several engines never collide; ids only have gaps.
    pub(super) async fn next_id(&self, kind: EntityKind) -> Result<u64> {
        /// How many ids one reservation takes.
        const BLOCK: u64 = 64;
        let taken = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&kind)
            .and_then(Iterator::next);
        if let Some(id) = taken {
            return Ok(id);
        }
        let mut tx = self.store.begin().await?;
        let first = tx.reserve_ids(kind, BLOCK).await?;
        tx.commit().await?;
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind, first + 1..first + BLOCK);
        Ok(first)
    }
}

/// Writes a batch of creations in one transaction and answers each. If that
/// fails, each is written alone, so one bad creation fails only itself.
async fn write(store: &Store, settings: &Settings, batch: Vec<(Creation, Answer)>) {
    if batch.len() > 1 {
        let creations: Vec<&Creation> = batch.iter().map(|(c, _)| c).collect();
        match write_together(store, settings, &creations).await {
            Ok(created) => {
                for ((_, done), entity) in batch.into_iter().zip(created) {
                    let _ = done.send(Ok(entity));
                }
                return;
            }
            Err(error) => tracing::debug!(%error, "a group commit failed; writing its creations one by one"),
        }
    }
    for (creation, done) in batch {
        let created = write_together(store, settings, &[&creation]).await;
        let _ = done.send(created.map(|mut one| one.remove(0)));
    }
}

async fn write_together(store: &Store, settings: &Settings, creations: &[&Creation]) -> Result<Vec<Entity>> {
    let mut tx = store.begin().await?;
    let mut created = Vec::with_capacity(creations.len());
    for creation in creations {
        let mut entity = creation.entity.clone();
        let now = entity.created_at;
        let by = creation.by.as_ref();
        let data = by.map_or_else(|| json!({}), |by| json!({ "by": by }));
        tx.insert_event(entity.reference(), "created", &data, now);
        let mut entry = None;
        if let Some((pipeline, code)) = &creation.target {
            stage::enter(
                &mut tx,
                settings,
                &mut entity,
                &mut entry,
                pipeline,
                code,
                None,
                stage::By::of(by),
                now,
            )
            .await?;
        }
        tx.put_entity(&entity, entry).await?;
        for link in &creation.links {
            tx.link(entity.reference(), *link).await?;
        }
        created.push(entity);
    }
    tx.commit().await?;
    Ok(created)
}
