//! What a successful run changes: checking that every effect it asks for
//! can be applied, before any is; applying them in the worker's
//! transaction; and releasing the robot that waits for it, or for the task
//! it awaits.

use serde_json::json;

use super::stage::{self, By, due_at};
use super::{Engine, Result, Settings};
use crate::domain::{Effect, Entity, EntityRef, Fields, RobotBinding, Timestamp};
use crate::storage::Tx;

/// The robot after `robot_id` in its stage, when it waits for that one.
pub(super) fn next_waiting(settings: &Settings, robot_id: u64) -> Option<&RobotBinding> {
    let robot = settings.robot(robot_id).filter(|r| r.timing.schedule.is_none())?;
    let mut robots = stage::entry_robots(settings, &robot.pipeline, &robot.stage);
    robots.find(|r| r.id == robot.id)?;
    robots.next().filter(|next| next.timing.after_previous)
}

impl Engine {
    /// Starts the next robot of the stage when it waits for this one.
    pub(super) async fn release_next(
        &self,
        tx: &mut Tx,
        settings: &Settings,
        robot_id: u64,
        target: EntityRef,
        entry: u64,
        now: Timestamp,
    ) -> Result<()> {
        let Some(next) = next_waiting(settings, robot_id) else {
            return Ok(());
        };
        let Some((entity, _)) = tx.entity_for_update(target).await? else {
            return Ok(());
        };
        // Its date field may still be empty: then it waits for that.
        let due = due_at(next, now, &entity, settings);
        tx.release_waiting(target, entry, next.id, due).await?;
        Ok(())
    }

    /// When `entity` is a task or an activity just completed, ends the runs
    /// that awaited it and starts the robots after them.
    pub(super) async fn completed(
        &self,
        tx: &mut Tx,
        settings: &Settings,
        entity: &Entity,
        now: Timestamp,
    ) -> Result<()> {
        if !stage::is_completed(entity) {
            return Ok(());
        }
        for (robot, target, entry) in tx.end_awaiting(entity.reference(), now).await? {
            self.release_next(tx, settings, robot, target, entry, now).await?;
        }
        Ok(())
    }

    /// Checks that every effect can be applied, before any is.
    pub(super) async fn check_effects(
        &self,
        settings: &Settings,
        own: &Entity,
        effects: &[Effect],
    ) -> Result<(), String> {
        // Entities the run creates may be linked and awaited in the same run.
        let created: Vec<EntityRef> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::CreateEntity { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        for effect in effects {
            match effect {
                Effect::MoveToStage { target, stage } => {
                    let entity = self.existing(own, *target).await?;
                    let pipeline = entity
                        .pipeline
                        .as_deref()
                        .ok_or_else(|| format!("{target} is in no pipeline"))?;
                    stage::target(settings, target.kind, pipeline, Some(stage)).map_err(|e| e.to_string())?;
                }
                Effect::MoveToPipeline {
                    target,
                    pipeline,
                    stage,
                } => {
                    stage::target(settings, target.kind, pipeline, stage.as_deref()).map_err(|e| e.to_string())?;
                }
                Effect::SetFields { target, fields } => {
                    self.existing(own, *target).await?;
                    settings
                        .fields
                        .conform_custom(target.kind, &mut fields.clone())
                        .map_err(|e| e.to_string())?;
                }
                Effect::ChangeResponsible { target, .. } => {
                    self.existing(own, *target).await?;
                }
                Effect::CreateEntity { id, entity } => {
                    let (_, mut custom) = stage::split_custom(entity.fields.clone());
                    (settings.fields.conform(id.kind, &mut custom))
                        .and_then(|()| settings.fields.check_required(id.kind, &custom))
                        .map_err(|e| format!("the new {}'s {e}", id.kind.as_str()))?;
                    if let Some(pipeline) = &entity.pipeline {
                        stage::target(settings, id.kind, pipeline, entity.stage.as_deref())
                            .map_err(|e| e.to_string())?;
                    }
                }
                Effect::Link { a, b } => {
                    for side in [a, b].into_iter().filter(|r| !created.contains(r)) {
                        self.existing(own, *side).await?;
                    }
                }
                Effect::WaitFor { target } => {
                    if !created.contains(target) {
                        self.existing(own, *target).await?;
                    }
                }
                Effect::AddComment { .. }
                | Effect::Notify { .. }
                | Effect::SendMessage(_)
                | Effect::KvSet { .. }
                | Effect::KvDelete { .. } => {}
            }
        }
        Ok(())
    }

    /// The effect's target: the run's own entity as prepared, or another read now.
    async fn existing(&self, own: &Entity, target: EntityRef) -> Result<Entity, String> {
        if target == own.reference() {
            return Ok(own.clone());
        }
        self.store
            .entity(target)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{target} does not exist"))
    }

    /// Applies one effect of a successful run.
    pub(super) async fn apply(
        &self,
        tx: &mut Tx,
        settings: &Settings,
        plugin: &str,
        run_id: u64,
        effect: Effect,
        now: Timestamp,
    ) -> Result<()> {
        let missing = |r: EntityRef| super::EngineError::NotFound { what: r.to_string() };
        match effect {
            Effect::SetFields { target, fields } => {
                let change = super::changes::FieldChange {
                    fields,
                    ..Default::default()
                };
                self.change_fields(tx, settings, target, change, By::Run(run_id), now)
                    .await?;
            }
            Effect::MoveToStage { target, stage: code } => {
                let (mut entity, mut entry) = tx.entity_for_update(target).await?.ok_or_else(|| missing(target))?;
                if entity.stage.as_deref() != Some(code.as_str()) {
                    let pipeline = entity.pipeline.clone().unwrap_or_default();
                    stage::enter(
                        tx,
                        settings,
                        &mut entity,
                        &mut entry,
                        &pipeline,
                        &code,
                        None,
                        By::Run(run_id),
                        now,
                    )
                    .await?;
                    tx.put_entity(&entity, entry).await?;
                }
            }
            Effect::MoveToPipeline {
                target,
                pipeline,
                stage: code,
            } => {
                let (mut entity, mut entry) = tx.entity_for_update(target).await?.ok_or_else(|| missing(target))?;
                let (pipeline, code) = stage::target(settings, target.kind, &pipeline, code.as_deref())?;
                stage::enter(
                    tx,
                    settings,
                    &mut entity,
                    &mut entry,
                    &pipeline,
                    &code,
                    None,
                    By::Run(run_id),
                    now,
                )
                .await?;
                tx.put_entity(&entity, entry).await?;
            }
            Effect::ChangeResponsible { target, user } => {
                let (mut entity, entry) = tx.entity_for_update(target).await?.ok_or_else(|| missing(target))?;
                stage::reassign(tx, &mut entity, user, By::Run(run_id), now);
                tx.put_entity(&entity, entry).await?;
            }
            Effect::CreateEntity { id, entity: new } => {
                let mut entity = Entity {
                    kind: id.kind,
                    id: id.id,
                    pipeline: None,
                    stage: None,
                    responsible: new.responsible,
                    fields: Fields::new(),
                    custom_fields: Fields::new(),
                    created_at: now,
                    updated_at: now,
                };
                (entity.fields, entity.custom_fields) = stage::split_custom(new.fields);
                settings.fields.conform(id.kind, &mut entity.custom_fields)?;
                tx.insert_event(id, "created", &json!({ "run": run_id }), now);
                let mut entry = None;
                if let Some(pipeline) = &new.pipeline {
                    let (pipeline, code) = stage::target(settings, id.kind, pipeline, new.stage.as_deref())?;
                    stage::enter(
                        tx,
                        settings,
                        &mut entity,
                        &mut entry,
                        &pipeline,
                        &code,
                        None,
                        By::Run(run_id),
                        now,
                    )
                    .await?;
                }
                tx.put_entity(&entity, entry).await?;
                if let Some(parent) = new.parent {
                    tx.link(id, parent).await?;
                }
            }
            Effect::AddComment { target, text } => tx.add_comment(target, &text, Some(run_id), now),
            Effect::Notify { user, text, about } => tx.add_notification(user, &text, about, Some(run_id), now),
            Effect::Link { a, b } => tx.link(a, b).await?,
            // Recorded on the run as what it awaits.
            Effect::WaitFor { .. } => {}
            Effect::SendMessage(message) => tx.add_message(message, Some(run_id), now),
            Effect::KvSet { key, value } => tx.kv_set(plugin, &key, Some(&value)).await?,
            Effect::KvDelete { key } => tx.kv_set(plugin, &key, None).await?,
        }
        Ok(())
    }
}
