//! Changes to existing entities: fields and the responsible
//! ([`Engine::update_entity`], and a robot's `set-fields` through
//! [`Engine::change_fields`]), stage moves, and triggers moving the entities
//! they find. Each change is one transaction with its events, the stage
//! entry it closes and the runs it queues. Creating entities is `create.rs`'s.

use serde_json::json;

use super::{Engine, EngineError, Result, Settings, UPDATED, invalid, stage};
use crate::domain::{Cause, Entity, EntityRef, Fields, HitTarget, Timestamp, TriggerBinding};
use crate::storage::Tx;

/// What [`Engine::change_fields`] changes.
#[derive(Default)]
pub(super) struct FieldChange {
    /// Fields to set; `UF_` codes are custom fields. An empty value removes one.
    pub fields: Fields,
    /// Custom fields to set, whatever their codes.
    pub custom_fields: Fields,
    pub responsible: Option<u64>,
}

impl Engine {
    /// Changes fields (an empty value removes one) and the responsible.
    /// Then fires the triggers with code [`UPDATED`] for the entity, so a
    /// stage can be reached when a field gets a value.
    pub async fn update_entity(
        &self,
        target: EntityRef,
        fields: Fields,
        custom_fields: Fields,
        responsible: Option<u64>,
    ) -> Result<Entity> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let change = FieldChange {
            fields,
            custom_fields,
            responsible,
        };
        let entity = self
            .change_fields(&mut tx, &self.settings(), target, change, None, now)
            .await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        // The change is committed: a trigger that fails to fire is logged,
        // not reported as a failed update.
        if self.settings().triggers.contains_key(UPDATED)
            && let Err(error) = self
                .fire_trigger(UPDATED, &HitTarget::Entity(target), &Fields::new())
                .await
        {
            tracing::error!(%error, entity = %target, "the `updated` trigger could not fire");
        }
        Ok(entity)
    }

    /// Changes `target` in `tx`: records the `updated` event (naming the
    /// run that asked, if one did), stores it, and ends what waited for it
    /// if it is a task now completed. A user's update and a robot's
    /// `set-fields` both change fields here.
    pub(super) async fn change_fields(
        &self,
        tx: &mut Tx,
        settings: &Settings,
        target: EntityRef,
        change: FieldChange,
        run: Option<u64>,
        now: Timestamp,
    ) -> Result<Entity> {
        let (mut entity, entry) = tx
            .entity_for_update(target)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: target.to_string(),
            })?;
        let codes: Vec<&String> = change.fields.keys().chain(change.custom_fields.keys()).collect();
        let mut data = json!({ "fields": codes });
        if let Some(run) = run {
            data["run"] = json!(run);
        }
        tx.insert_event(target, "updated", &data, now);
        let (fields, custom) = stage::split_custom(change.fields);
        stage::set_fields(&mut entity.fields, fields);
        stage::set_fields(&mut entity.custom_fields, custom);
        stage::set_fields(&mut entity.custom_fields, change.custom_fields);
        if let Some(user) = change.responsible {
            entity.responsible = Some(user);
        }
        entity.updated_at = now;
        tx.put_entity(&entity, entry).await?;
        self.completed(tx, settings, &entity, now).await?;
        Ok(entity)
    }

    /// Moves an entity to a stage of its pipeline, or of another pipeline.
    /// Moving it to the stage it is in changes nothing.
    pub async fn move_entity(&self, target: EntityRef, pipeline: Option<&str>, stage_code: &str) -> Result<Entity> {
        let settings = self.settings();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let (mut entity, mut entry) = tx
            .entity_for_update(target)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: target.to_string(),
            })?;
        let pipeline = match pipeline.or(entity.pipeline.as_deref()) {
            Some(p) => p.to_owned(),
            None => {
                return Err(invalid("pipeline", format!("{target} is in no pipeline; name one")));
            }
        };
        let (pipeline, stage_code) = stage::target(&settings, entity.kind, &pipeline, Some(stage_code))?;
        // Already there: nothing enters, so no robot runs again.
        if entity.pipeline.as_deref() == Some(pipeline.as_str()) && entity.stage.as_deref() == Some(stage_code.as_str())
        {
            return Ok(entity);
        }
        stage::enter(
            &mut tx,
            &settings,
            &mut entity,
            &mut entry,
            &pipeline,
            &stage_code,
            None,
            now,
        )
        .await?;
        tx.put_entity(&entity, entry).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(entity)
    }

    /// Fires trigger `code` for `target`: each entity it finds (or the
    /// entities of a trigger's kind linked to it) moves to the stage of a
    /// matching trigger of its pipeline, forward only unless allowed.
    /// Returns the entities moved.
    pub async fn fire_trigger(&self, code: &str, target: &HitTarget, data: &Fields) -> Result<Vec<Entity>> {
        let settings = self.settings();
        let Some(triggers) = settings.triggers.get(code) else {
            return Err(EngineError::NotFound {
                what: format!("a trigger with code `{code}`"),
            });
        };
        let found = match target {
            HitTarget::Entity(r) => vec![*r],
            HitTarget::Lookup { kind, code, value } => self
                .store
                .find(*kind, code, value, 20)
                .await?
                .iter()
                .map(Entity::reference)
                .collect(),
        };
        let mut candidates = Vec::new();
        for r in found {
            for trigger in triggers {
                let kind = settings.pipelines.get(&trigger.pipeline).map(|p| p.kind);
                match kind {
                    Some(k) if k == r.kind => candidates.push(r),
                    Some(k) => candidates.extend(self.store.related(r, k).await?.iter().map(Entity::reference)),
                    None => {}
                }
            }
        }
        candidates.sort();
        candidates.dedup();
        self.move_by_triggers(&settings, triggers, code, &candidates, data)
            .await
    }

    /// Moves each candidate by the trigger of its pipeline that applies
    /// (see [`stage::pick_trigger`]), in one transaction. Returns the moved.
    pub(super) async fn move_by_triggers(
        &self,
        settings: &Settings,
        triggers: &[TriggerBinding],
        code: &str,
        candidates: &[EntityRef],
        data: &Fields,
    ) -> Result<Vec<Entity>> {
        let now = self.now();
        let mut moved = Vec::new();
        let mut tx = self.store.begin().await?;
        for &r in candidates {
            let Some((mut entity, mut entry)) = tx.entity_for_update(r).await? else {
                continue;
            };
            let Some(trigger) = stage::pick_trigger(settings, triggers, &entity) else {
                continue;
            };
            let data = json!({ "code": code, "stage": trigger.stage, "data": data });
            tx.insert_event(r, "trigger-fired", &data, now);
            let cause = Cause::Trigger { code: code.into() };
            let (pipeline, stage_code) = (trigger.pipeline.clone(), trigger.stage.clone());
            stage::enter(
                &mut tx,
                settings,
                &mut entity,
                &mut entry,
                &pipeline,
                &stage_code,
                Some(cause),
                now,
            )
            .await?;
            tx.put_entity(&entity, entry).await?;
            moved.push(entity);
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(moved)
    }
}
