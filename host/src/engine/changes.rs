//! Changes to existing entities: fields and the responsible
//! ([`Engine::update_entity`], and a robot's `set-fields` through
//! [`Engine::change_fields`]), stage moves, and triggers moving the entities
//! they find. Each change is one transaction with its events, the stage
//! entry it closes and the runs it queues. Creating entities is `create.rs`'s.

use serde_json::json;

use super::stage::By;
use super::{Engine, EngineError, Result, Settings, UPDATED, invalid, stage};
use crate::domain::{
    Author, Cause, Entity, EntityKind, EntityRef, Fields, Fired, HitTarget, Matching, Timestamp, TriggerBinding,
};
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

/// Queues the runs of the entity's stage entry that waited for a date field
/// now given a value, due from it.
async fn release_dated(
    tx: &mut Tx,
    settings: &Settings,
    entity: &Entity,
    entry: u64,
    changed: &[String],
    now: Timestamp,
) -> Result<()> {
    let (Some(pipeline), Some(stage)) = (entity.pipeline.as_deref(), entity.stage.as_deref()) else {
        return Ok(());
    };
    for robot in stage::entry_robots(settings, pipeline, stage) {
        let Some(rel) = &robot.timing.relative_to else { continue };
        if !changed.contains(&rel.field) {
            continue;
        }
        if let Some(due) = stage::due_at(robot, now, entity, settings) {
            tx.release_dated(entity.reference(), entry, robot.id, due).await?;
        }
    }
    Ok(())
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
        self.update_entity_by(target, fields, custom_fields, responsible, None)
            .await
    }

    /// [`Engine::update_entity`] for `by`, recorded as the author of its
    /// `updated` event.
    pub async fn update_entity_by(
        &self,
        target: EntityRef,
        fields: Fields,
        custom_fields: Fields,
        responsible: Option<u64>,
        by: Option<&Author>,
    ) -> Result<Entity> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let change = FieldChange {
            fields,
            custom_fields,
            responsible,
        };
        let entity = self
            .change_fields(&mut tx, &self.settings(), target, change, By::of(by), now)
            .await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        // The change is committed: a trigger that fails to fire is logged,
        // not reported as a failed update.
        if self.settings().triggers.contains_key(UPDATED)
            && let Err(error) = self.fire_updated(target).await
        {
            tracing::error!(%error, entity = %target, "the `updated` trigger could not fire");
        }
        Ok(entity)
    }

    /// Fires the `updated` triggers for an entity a user changed.
    async fn fire_updated(&self, target: EntityRef) -> Result<()> {
        let settings = self.settings();
        let candidates = self.candidates(&settings, UPDATED, &HitTarget::Entity(target)).await?;
        let mut tx = self.store.begin().await?;
        let now = self.now();
        let none = Fields::new();
        let firing = Firing::of(&settings, UPDATED, &none, Trace::MovesOnly);
        self.fire(&mut tx, &settings, &firing, &candidates, now).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(())
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
        by: By<'_>,
        now: Timestamp,
    ) -> Result<Entity> {
        let (mut entity, entry) = tx
            .entity_for_update(target)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: target.to_string(),
            })?;
        let (fields, mut custom) = stage::split_custom(change.fields);
        custom.extend(change.custom_fields);
        settings.fields.conform(target.kind, &mut custom)?;
        let changed: Vec<String> = fields.keys().chain(custom.keys()).cloned().collect();
        let mut data = json!({ "fields": changed });
        by.mark(&mut data);
        tx.insert_event(target, "updated", &data, now);
        stage::set_fields(&mut entity.fields, fields);
        stage::set_fields(&mut entity.custom_fields, custom);
        if let Some(user) = change.responsible.filter(|u| entity.responsible != Some(*u)) {
            stage::reassign(tx, &mut entity, user, by, now);
        }
        entity.updated_at = now;
        tx.put_entity(&entity, entry).await?;
        self.completed(tx, settings, &entity, now).await?;
        if let Some(entry) = entry {
            release_dated(tx, settings, &entity, entry, &changed, now).await?;
        }
        Ok(entity)
    }

    /// Moves an entity to a stage of its pipeline, or of another pipeline.
    /// Moving it to the stage it is in changes nothing.
    pub async fn move_entity(&self, target: EntityRef, pipeline: Option<&str>, stage_code: &str) -> Result<Entity> {
        self.move_entity_by(target, pipeline, stage_code, None).await
    }

    /// [`Engine::move_entity`] for `by`, recorded as the author of its
    /// `stage-entered` event.
    pub async fn move_entity_by(
        &self,
        target: EntityRef,
        pipeline: Option<&str>,
        stage_code: &str,
        by: Option<&Author>,
    ) -> Result<Entity> {
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
            By::of(by),
            now,
        )
        .await?;
        tx.put_entity(&entity, entry).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(entity)
    }

    /// Fires trigger `code` for `target` in a transaction of its own: each
    /// entity it finds moves to the stage of a trigger of its pipeline (see
    /// [`stage::pick_trigger`]), or is told on its timeline why it did not
    /// (`trigger-ignored`). Returns what it did to each.
    pub async fn fire_trigger(&self, code: &str, target: &HitTarget, data: &Fields) -> Result<Vec<Fired>> {
        let settings = self.settings();
        let candidates = self.candidates(&settings, code, target).await?;
        let mut tx = self.store.begin().await?;
        let firing = Firing::of(&settings, code, data, Trace::Ignored);
        let fired = self.fire(&mut tx, &settings, &firing, &candidates, self.now()).await?;
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(fired)
    }

    /// The entities a hit is about: the entity it names or those its lookup
    /// finds, and for each, the entities of another kind linked to it where
    /// a trigger with the code is on a pipeline of that kind (a call from a
    /// contact moves the contact's deals).
    pub(super) async fn candidates(
        &self,
        settings: &Settings,
        code: &str,
        target: &HitTarget,
    ) -> Result<Vec<EntityRef>> {
        let found = self.found(target).await?;
        self.spread(settings, code, found).await
    }

    /// The entity a hit names if it exists, or those its lookup finds (at
    /// most 20): of the kind it names, or, when none has the value and the
    /// field is a phone or an email, of the first kind in [`LOOKUP_ORDER`]
    /// that does, as a CRM finds a client by their contact details (so a
    /// second message from an unknown number finds the lead the first one
    /// made).
    pub(super) async fn found(&self, target: &HitTarget) -> Result<Vec<EntityRef>> {
        let (kind, code, value) = match target {
            HitTarget::Entity(r) => return Ok(self.store.entity(*r).await?.iter().map(Entity::reference).collect()),
            HitTarget::Lookup { kind, code, value } => (kind, code, value),
        };
        let mut kinds = vec![*kind];
        if Matching::of(code) != Matching::Exact {
            kinds.extend(LOOKUP_ORDER.iter().filter(|k| *k != kind));
        }
        for kind in kinds {
            let found = self.store.find(kind, code, value, 20).await?;
            if !found.is_empty() {
                return Ok(found.iter().map(Entity::reference).collect());
            }
        }
        Ok(Vec::new())
    }

    /// The entities found, and those linked to them of the kinds whose
    /// pipelines have a trigger with `code`.
    pub(super) async fn spread(
        &self,
        settings: &Settings,
        code: &str,
        found: Vec<EntityRef>,
    ) -> Result<Vec<EntityRef>> {
        let triggers = settings.triggers.get(code).map_or(&[][..], Vec::as_slice);
        let mut kinds: Vec<EntityKind> = triggers
            .iter()
            .filter_map(|t| settings.pipelines.get(&t.pipeline).map(|p| p.kind))
            .collect();
        kinds.sort();
        kinds.dedup();
        let mut candidates = Vec::new();
        for r in found {
            if kinds.is_empty() || kinds.contains(&r.kind) {
                // Told why nothing moved it, if nothing does.
                candidates.push(r);
            }
            for &kind in kinds.iter().filter(|k| **k != r.kind) {
                candidates.extend(self.store.related(r, kind).await?.iter().map(Entity::reference));
            }
        }
        candidates.sort();
        candidates.dedup();
        Ok(candidates)
    }

    /// Fires a trigger code for each candidate in `tx`: moves it by the
    /// trigger of its pipeline that applies, or, when the firing says so,
    /// records on its timeline why none did.
    pub(super) async fn fire(
        &self,
        tx: &mut Tx,
        settings: &Settings,
        firing: &Firing<'_>,
        candidates: &[EntityRef],
        now: Timestamp,
    ) -> Result<Vec<Fired>> {
        let Firing {
            code,
            triggers,
            data,
            trace,
        } = *firing;
        let mut fired = Vec::new();
        for &r in candidates {
            let Some((mut entity, mut entry)) = tx.entity_for_update(r).await? else {
                continue;
            };
            let trigger = match stage::pick_trigger(settings, triggers, &entity, data) {
                Ok(trigger) => trigger,
                Err(why) => {
                    if trace == Trace::Ignored {
                        let event = json!({ "code": code, "ignored": why, "data": data });
                        tx.insert_event(r, "trigger-ignored", &event, now);
                    }
                    fired.push(Fired {
                        entity: r,
                        moved_to: None,
                        ignored: Some(why),
                    });
                    continue;
                }
            };
            let event = json!({ "code": code, "stage": trigger.stage, "data": data });
            tx.insert_event(r, "trigger-fired", &event, now);
            let cause = Cause::Trigger {
                code: code.into(),
                data: data.clone(),
            };
            let (pipeline, stage_code) = (trigger.pipeline.clone(), trigger.stage.clone());
            stage::enter(
                tx,
                settings,
                &mut entity,
                &mut entry,
                &pipeline,
                &stage_code,
                Some(cause),
                By::Host,
                now,
            )
            .await?;
            tx.put_entity(&entity, entry).await?;
            fired.push(Fired {
                entity: r,
                moved_to: Some(stage_code),
                ignored: None,
            });
        }
        Ok(fired)
    }
}

/// Where a lookup by phone or email looks after the kind it names: a
/// client is a contact, a company, or still a lead.
pub const LOOKUP_ORDER: [EntityKind; 3] = [EntityKind::Contact, EntityKind::Company, EntityKind::Lead];

/// One trigger code fired: the bindings that may move an entity, the
/// event's data, and whether to trace what did not move.
#[derive(Clone, Copy)]
pub(super) struct Firing<'a> {
    pub(super) code: &'a str,
    pub(super) triggers: &'a [TriggerBinding],
    pub(super) data: &'a Fields,
    pub(super) trace: Trace,
}

impl<'a> Firing<'a> {
    /// Every trigger with `code` in the settings.
    pub(super) fn of(settings: &'a Settings, code: &'a str, data: &'a Fields, trace: Trace) -> Firing<'a> {
        let triggers = settings.triggers.get(code).map_or(&[][..], Vec::as_slice);
        Firing {
            code,
            triggers,
            data,
            trace,
        }
    }
}

/// Whether firing a trigger records on an entity's timeline why it did not
/// move it. An event from outside does; the host's own firings (the
/// `updated` trigger on every change, a schedule over a whole pipeline) do
/// not, or timelines would fill with them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Trace {
    Ignored,
    MovesOnly,
}
