//! Entering a stage: closing the entry left (cancelling its pending runs),
//! recording the events, and queueing the new stage's robots with their due
//! times. Runs inside the transaction of the change that caused it.

use serde_json::json;

use super::{EngineError, Result, Settings, invalid};
use crate::domain::{
    Author, Calendar, Cause, Entity, EntityKind, FieldValue, Fields, IfEmpty, Ignored, RobotBinding, RobotNote,
    RunStatus, Semantic, Timestamp, Timing, TriggerBinding, Value, evaluate_with,
};
use crate::storage::{NewRun, Tx};

/// Checks a pipeline and stage for an entity of `kind`; no stage means the
/// pipeline's first.
pub(super) fn target(
    settings: &Settings,
    kind: EntityKind,
    pipeline: &str,
    stage: Option<&str>,
) -> Result<(String, String)> {
    let p = settings
        .pipelines
        .get(pipeline)
        .ok_or_else(|| invalid("pipeline", format!("no pipeline `{pipeline}`")))?;
    if p.kind != kind {
        return Err(invalid(
            "pipeline",
            format!(
                "pipeline `{pipeline}` holds {}s, not {}s",
                p.kind.as_str(),
                kind.as_str()
            ),
        ));
    }
    let stage = match stage {
        Some(code) => p
            .stage(code)
            .ok_or_else(|| invalid("stage", format!("pipeline `{pipeline}` has no stage `{code}`")))?,
        None => &p.stages[0],
    };
    Ok((p.code.clone(), stage.code.clone()))
}

/// The robots of a stage that run when an entity enters it, in order: all
/// but those on a schedule, which run at their times instead.
pub(super) fn entry_robots<'s>(
    settings: &'s Settings,
    pipeline: &str,
    stage: &str,
) -> impl Iterator<Item = &'s RobotBinding> {
    let robots = settings.robots_at(pipeline, stage);
    robots.iter().filter(|r| r.timing.schedule.is_none())
}

/// Moves `entity` into a stage: closes its current entry, opens a new one,
/// records the events and queues the stage's robots. The caller stores the
/// entity with the new entry afterwards.
#[allow(clippy::too_many_arguments)]
pub(super) async fn enter(
    tx: &mut Tx,
    settings: &Settings,
    entity: &mut Entity,
    entry: &mut Option<u64>,
    pipeline: &str,
    stage: &str,
    cause: Option<Cause>,
    by: By<'_>,
    now: Timestamp,
) -> Result<()> {
    let r = entity.reference();
    let previous = entity
        .stage
        .clone()
        .filter(|_| entity.pipeline.as_deref() == Some(pipeline));
    // Entries are numbered per entity: the next is one past the current.
    let id = entry.map_or(1, |current| current + 1);
    if let Some(left) = entry.take() {
        let robot = |id| settings.robot(id).map_or_else(RobotNote::removed, RobotNote::of);
        tx.close_entry(r, left, now, robot).await?;
        let data = json!({ "pipeline": entity.pipeline, "stage": entity.stage });
        tx.insert_event(r, "stage-left", &data, now);
    }
    tx.open_entry(r, id, pipeline, stage, now);
    entity.pipeline = Some(pipeline.to_owned());
    entity.stage = Some(stage.to_owned());
    entity.updated_at = now;
    let mut data = json!({ "pipeline": pipeline, "stage": stage, "previous": previous });
    if let Some(cause) = &cause {
        // What moved it, for its timeline: a trigger and its event.
        data["cause"] = json!(cause);
    }
    by.mark(&mut data);
    tx.insert_event(r, "stage-entered", &data, now);
    let cause = cause.unwrap_or(Cause::StageEntered {
        pipeline: pipeline.to_owned(),
        stage: stage.to_owned(),
        previous_stage: previous,
    });
    for (i, robot) in entry_robots(settings, pipeline, stage).enumerate() {
        let waiting = robot.timing.after_previous && i > 0;
        let (status, due_at) = if waiting {
            (RunStatus::Waiting, now)
        } else if let Some(due) = due_at(robot, now, entity, settings) {
            (RunStatus::Queued, due)
        } else {
            // Its date field is empty: it waits for a value.
            (RunStatus::WaitingForDate, now)
        };
        tx.insert_run(NewRun {
            entry_id: id,
            robot_id: robot.id,
            entity: r,
            status,
            cause: cause.clone(),
            due_at,
            created_at: now,
            finished_at: None,
            report: None,
        });
    }
    *entry = Some(id);
    Ok(())
}

/// Whether `entity` is a task or an activity whose `STATUS` is `completed`.
pub(super) fn is_completed(entity: &Entity) -> bool {
    matches!(entity.kind, EntityKind::Task | EntityKind::Activity)
        && matches!(
            entity.field("STATUS").and_then(FieldValue::single),
            Some(Value::Text(s) | Value::Option(s)) if s == "completed"
        )
}

/// When `robot` is due, counting from `from`; working time by the calendar
/// of the person it is addressed to ([`Settings::calendar_for`]). `None`
/// when it is timed relative to a date field the entity leaves empty and
/// waits for it (`if_empty: wait`); with `if_empty: skip` it is due at
/// `from`, and the worker skips it with the reason.
pub(super) fn due_at(robot: &RobotBinding, from: Timestamp, entity: &Entity, settings: &Settings) -> Option<Timestamp> {
    let calendar = settings.calendar_for(robot, entity);
    let base = match &robot.timing.relative_to {
        None => from,
        Some(rel) => match date_of(entity, &rel.field, &settings.calendar) {
            Some(at) => Timestamp(at.0 + rel.offset_seconds * 1000),
            None if rel.if_empty == IfEmpty::Skip => return Some(from),
            None => return None,
        },
    };
    Some(timed(&robot.timing, base, &calendar))
}

/// The instant a date or date-time field of `entity` holds: a date counts
/// from midnight in the portal's time zone. `None` when it is empty or not
/// a date. `DATE_CREATE` is when the entity was created, as in Bitrix24.
pub(super) fn date_of(entity: &Entity, field: &str, portal: &Calendar) -> Option<Timestamp> {
    let created = Value::DateTime(entity.created_at);
    let value = match field {
        "DATE_CREATE" => &created,
        field => entity.field(field)?.single()?,
    };
    match value {
        Value::DateTime(t) => Some(*t),
        Value::Date(d) => Some(portal.start_of_day(*d)),
        _ => None,
    }
}

/// When a robot with `timing` is due, counting from `base`.
fn timed(timing: &Timing, base: Timestamp, calendar: &Calendar) -> Timestamp {
    let delay = chrono::Duration::seconds(timing.delay_seconds as i64);
    const DAY: u64 = 86_400;
    if timing.working_time {
        // Whole days count working days; other delays count working hours.
        let due = if timing.delay_seconds > 0 && timing.delay_seconds.is_multiple_of(DAY) {
            calendar.add_working_days(base, (timing.delay_seconds / DAY) as u32)
        } else {
            calendar.add_working_time(base, delay)
        };
        due.unwrap_or(Timestamp(base.0 + delay.num_milliseconds()))
    } else {
        Timestamp(base.0 + delay.num_milliseconds())
    }
}

/// Gives `entity` to `user`, recording on its timeline who had it and who
/// made the change (`responsible-changed`: `from`, `to` and the author),
/// which is how its previous responsibles are kept.
pub(super) fn reassign(tx: &mut Tx, entity: &mut Entity, user: u64, by: By<'_>, now: Timestamp) {
    let mut data = json!({ "from": entity.responsible, "to": user });
    by.mark(&mut data);
    tx.insert_event(entity.reference(), "responsible-changed", &data, now);
    entity.responsible = Some(user);
    entity.updated_at = now;
}

/// Who or what changes an entity, recorded on the events of the change: a
/// person through the API (a token, perhaps bound to a user), a robot's
/// run, a bulk job, or the host itself (a trigger's firing says more in its
/// cause).
#[derive(Clone, Copy)]
pub(super) enum By<'a> {
    Host,
    Person(&'a Author),
    Run(u64),
    Job(u64),
}

impl<'a> By<'a> {
    /// A person's, or the host's when the engine was called with no author.
    pub(super) fn of(author: Option<&'a Author>) -> By<'a> {
        author.map_or(By::Host, By::Person)
    }

    /// Adds the author to an event's data: `by`, `run` or `job`.
    pub(super) fn mark(self, data: &mut serde_json::Value) {
        match self {
            By::Host => {}
            By::Person(author) => data["by"] = json!(author),
            By::Run(run) => data["run"] = json!(run),
            By::Job(job) => data["job"] = json!(job),
        }
    }
}

/// Splits fields into standard ones and custom ones (`UF_...`), wherever a
/// caller put them.
pub(super) fn split_custom(fields: Fields) -> (Fields, Fields) {
    fields.into_iter().partition(|(code, _)| !code.starts_with("UF_"))
}

/// Applies field changes: an empty value removes the field.
pub(super) fn set_fields(target: &mut Fields, changes: Fields) {
    for (code, value) in changes {
        match value {
            FieldValue::Empty => target.remove(&code),
            value => target.insert(code, value),
        };
    }
}

/// The trigger of the entity's pipeline that moves it, or why none does.
/// A trigger moves an entity forward unless it may move it backwards, and
/// out of a final stage only if it may leave one; its condition must hold.
/// Of several, the furthest ahead.
pub(super) fn pick_trigger<'a>(
    settings: &Settings,
    triggers: &'a [TriggerBinding],
    entity: &Entity,
    event: &Fields,
) -> std::result::Result<&'a TriggerBinding, Ignored> {
    let (Some(pipeline), Some(stage)) = (
        entity.pipeline.as_deref().and_then(|p| settings.pipelines.get(p)),
        entity.stage.as_deref(),
    ) else {
        return Err(Ignored::NoTrigger);
    };
    let ours: Vec<(usize, &TriggerBinding)> = triggers
        .iter()
        .filter(|t| t.pipeline == pipeline.code)
        .filter_map(|t| Some((pipeline.position(&t.stage)?, t)))
        .collect();
    if ours.is_empty() {
        return Err(Ignored::NoTrigger);
    }
    let current = pipeline.position(stage);
    let is_final = pipeline
        .stage(stage)
        .is_some_and(|s| s.semantic != Semantic::InProgress);
    let leaving: Vec<_> = ours.into_iter().filter(|(_, t)| !is_final || t.leave_final).collect();
    if leaving.is_empty() {
        return Err(Ignored::FinalStage { stage: stage.into() });
    }
    let ahead: Vec<_> = leaving
        .into_iter()
        .filter(|(pos, t)| current.is_none_or(|c| *pos > c || (t.allow_backwards && *pos != c)))
        .collect();
    if ahead.is_empty() {
        return Err(Ignored::Backwards { stage: stage.into() });
    }
    let mut because = None;
    ahead
        .into_iter()
        .filter(|(_, t)| {
            let Some(condition) = &t.condition else { return true };
            match evaluate_with(condition, entity, event) {
                Ok(verdict) if verdict.passed => true,
                Ok(verdict) => {
                    because.get_or_insert(verdict.reason);
                    false
                }
                Err(e) => {
                    because.get_or_insert(e.to_string());
                    false
                }
            }
        })
        .max_by_key(|(pos, _)| *pos)
        .map(|(_, t)| t)
        .ok_or_else(|| Ignored::ConditionFalse {
            because: because.unwrap_or_default(),
        })
}

impl From<crate::domain::FieldError> for EngineError {
    fn from(e: crate::domain::FieldError) -> Self {
        invalid(e.field, e.problem)
    }
}

impl From<crate::domain::ExprError> for EngineError {
    fn from(e: crate::domain::ExprError) -> Self {
        invalid("properties", e.to_string())
    }
}
