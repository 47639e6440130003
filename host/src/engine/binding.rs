//! What a valid robot or trigger binding is, decided here once. Placing or
//! replacing one through the API ([`Engine::add_robot`],
//! [`Engine::replace_robot`], [`Engine::add_trigger`],
//! [`Engine::replace_trigger`]) and
//! checking a template ([`Engine::check_template`]) ask the same functions
//! with the pipelines they know, and so must any later way to change a
//! binding; a package upgrade asks them of the robots already placed. A
//! template checks one thing more on its own: that the fields and constants
//! its bindings use are declared.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::{Engine, EngineError, Handler, Installed, Result, invalid};
use crate::domain::{
    Among, Directory, EntityKind, Pipeline, Recipient, RobotBinding, Schema, Timing, TriggerBinding, check,
};
use crate::runtime::Plugin;

/// The longest code that becomes a database key (a trigger's code, a
/// stage's, a path segment): PostgreSQL refuses index entries past about
/// 2.7 kB, and that refusal would be a 500.
pub const MAX_CODE: usize = 200;

/// The longest delay, either way: ten years. Past it a due time is no longer
/// a date anyone means, and far past it arithmetic on milliseconds overflows.
const MAX_DELAY_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// One reason a binding cannot be placed. The API answers with the first,
/// naming the field of its body ([`first`]); a template lists every one
/// under the binding's name and line.
#[derive(Debug)]
pub(super) enum Refusal {
    NoPipeline {
        pipeline: String,
    },
    NoStage {
        pipeline: String,
        stage: String,
    },
    NoPlugin {
        plugin: String,
    },
    /// A property value that is not a valid expression.
    Value {
        code: String,
        problem: String,
    },
    /// Anything else, by the field of the binding it is about.
    Field {
        field: String,
        problem: String,
    },
}

impl Refusal {
    fn field(field: impl Into<String>, problem: impl Into<String>) -> Refusal {
        Refusal::Field {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Refusal {
    /// The reason, without the field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoPipeline { pipeline } => write!(f, "no pipeline `{pipeline}`"),
            Refusal::NoStage { pipeline, stage } => write!(f, "pipeline `{pipeline}` has no stage `{stage}`"),
            Refusal::NoPlugin { plugin } => write!(f, "no plugin `{plugin}` is installed"),
            Refusal::Value { problem, .. } | Refusal::Field { problem, .. } => f.write_str(problem),
        }
    }
}

impl Refusal {
    /// The field of the binding it is about, as the API names it
    /// (`properties.text`, `timing.delay_seconds`...).
    fn field_name(&self) -> String {
        match self {
            Refusal::NoPipeline { .. } => "pipeline".to_owned(),
            Refusal::NoStage { .. } => "stage".to_owned(),
            Refusal::NoPlugin { .. } => "plugin".to_owned(),
            Refusal::Value { code, .. } => format!("properties.{code}"),
            Refusal::Field { field, .. } => field.clone(),
        }
    }
}

impl From<Refusal> for EngineError {
    fn from(refusal: Refusal) -> EngineError {
        invalid(refusal.field_name(), refusal.to_string())
    }
}

/// The API's answer: the first refusal, if any.
pub(super) fn first(refusals: Vec<Refusal>) -> Result<()> {
    match refusals.into_iter().next() {
        Some(refusal) => Err(refusal.into()),
        None => Ok(()),
    }
}

/// The pipeline a binding is placed on, if it has the binding's stage.
fn place<'p>(
    pipelines: &'p HashMap<String, Pipeline>,
    pipeline: &str,
    stage: &str,
    refusals: &mut Vec<Refusal>,
) -> Option<&'p Pipeline> {
    let Some(found) = pipelines.get(pipeline) else {
        refusals.push(Refusal::NoPipeline {
            pipeline: pipeline.into(),
        });
        return None;
    };
    if found.stage(stage).is_none() {
        refusals.push(Refusal::NoStage {
            pipeline: pipeline.into(),
            stage: stage.into(),
        });
        return None;
    }
    Some(found)
}

/// Every reason `trigger` cannot be placed on one of `pipelines` (the
/// portal's, or those with a template's own): its stage exists, it has a
/// code short enough to be a key, and its schedule, if any, is a cron
/// expression. Returns the pipeline it is placed on too, when it is.
pub(super) fn check_trigger<'p>(
    pipelines: &'p HashMap<String, Pipeline>,
    trigger: &TriggerBinding,
) -> (Option<&'p Pipeline>, Vec<Refusal>) {
    let mut refusals = Vec::new();
    let pipeline = place(pipelines, &trigger.pipeline, &trigger.stage, &mut refusals);
    if trigger.code.is_empty() {
        refusals.push(Refusal::field("code", "a trigger needs a code"));
    }
    if trigger.code.chars().count() > MAX_CODE {
        refusals.push(Refusal::field(
            "code",
            format!("a code is at most {MAX_CODE} characters"),
        ));
    }
    if let Some(expr) = &trigger.schedule
        && let Err(e) = cron::Schedule::from_str(expr)
    {
        let problem = format!("`{expr}` is not a cron expression such as `0 0 9 * * Mon` ({e})");
        refusals.push(Refusal::field("schedule", problem));
    }
    (pipeline, refusals)
}

fn check_timing(timing: &Timing) -> Option<Refusal> {
    if let Some(expr) = &timing.schedule {
        if let Err(e) = cron::Schedule::from_str(expr) {
            let problem = format!("`{expr}` is not a cron expression such as `0 0 3 * * *` ({e})");
            return Some(Refusal::field("timing.schedule", problem));
        }
        if timing.after_previous || timing.delay_seconds > 0 || timing.relative_to.is_some() {
            let problem = "a robot on a schedule runs at its times only: drop the delay, the date and `after_previous`";
            return Some(Refusal::field("timing.schedule", problem));
        }
    }
    let too_far = |field: &str| {
        let problem = format!("a delay is at most {MAX_DELAY_SECONDS} seconds (ten years)");
        Some(Refusal::field(field, problem))
    };
    if timing.delay_seconds > MAX_DELAY_SECONDS {
        return too_far("timing.delay_seconds");
    }
    if timing.working_time && timing.skip_outside_working_time {
        let problem =
            "choose `working_time` (wait for working time) or `skip_outside_working_time` (skip outside it), not both";
        return Some(Refusal::field("timing.skip_outside_working_time", problem));
    }
    match &timing.relative_to {
        Some(relative) if relative.offset_seconds.unsigned_abs() > MAX_DELAY_SECONDS => {
            too_far("timing.relative_to.offset_seconds")
        }
        _ => None,
    }
}

/// Why a robot on a pipeline of `kind` may not be timed as `timing` says
/// by the custom fields `fields` declares, if it may not: relative to an
/// undeclared `UF_` field, or one that holds no date.
pub(super) fn date_field_refusal(fields: &Schema, kind: EntityKind, timing: &Timing) -> Option<Refusal> {
    let relative = timing.relative_to.as_ref()?;
    let problem = fields.date_field_problem(kind, &relative.field)?;
    Some(Refusal::field("timing.relative_to.field", problem))
}

/// Checks a robot binding against the robot's catalog entry: the robot
/// exists, every property is known, every required one is given.
fn check_against_catalog(robot: &RobotBinding, plugin: &Plugin) -> Vec<Refusal> {
    let Some(info) = plugin.robots().iter().find(|r| r.code == robot.robot) else {
        let problem = format!("plugin `{}` has no robot `{}`", robot.plugin, robot.robot);
        return vec![Refusal::field("robot", problem)];
    };
    let unknown = robot
        .properties
        .keys()
        .filter(|code| !info.properties.iter().any(|p| &p.code == *code))
        .map(|code| {
            let problem = format!("robot `{}` has no property `{code}`", robot.robot);
            Refusal::field(format!("properties.{code}"), problem)
        });
    let mut refusals = Vec::new();
    if matches!(robot.recipient, Some(Recipient::Among(_)))
        && !info.properties.iter().any(|p| p.code == "recipient" && p.multiple)
    {
        let problem = format!(
            "robot `{}` is addressed to one person: choose a user, the responsible, the supervisor or a constant \
             (several people are for a robot that picks one of them, such as change_responsible)",
            robot.robot
        );
        refusals.push(Refusal::field("recipient", problem));
    }
    let given = |code: &str| robot.properties.contains_key(code) || (code == "recipient" && robot.recipient.is_some());
    let missing = info
        .properties
        .iter()
        .filter(|p| p.required && p.default.is_none() && !given(&p.code))
        .map(|spec| Refusal::field(format!("properties.{}", spec.code), "is required"));
    refusals.extend(unknown.chain(missing));
    refusals
}

/// A group recipient names people who exist: at least one, each user and
/// department known.
fn check_among(directory: &Directory, among: &Among) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    if among.users.is_empty() && among.departments.is_empty() {
        let problem = "name at least one user or department to choose among";
        refusals.push(Refusal::field("recipient", problem));
    }
    for id in among.users.iter().filter(|id| directory.user(**id).is_none()) {
        let problem = format!("there is no user {id}; add them under settings, people first");
        refusals.push(Refusal::field("recipient", problem));
    }
    for id in among
        .departments
        .iter()
        .filter(|id| directory.department(**id).is_none())
    {
        let problem = format!("there is no department {id}; add it under settings, people first");
        refusals.push(Refusal::field("recipient", problem));
    }
    refusals
}

impl Engine {
    /// Every reason `robot` cannot be placed on one of `pipelines` (the
    /// portal's, or those with a template's own): its stage exists, its
    /// delays are within ten years, its plugin is installed, and its
    /// property values are expressions; then what it asks of its plugin
    /// ([`Engine::check_against_plugin`]). Returns the pipeline it is placed
    /// on too, when it is.
    pub(super) fn check_robot<'p>(
        &self,
        pipelines: &'p HashMap<String, Pipeline>,
        robot: &RobotBinding,
    ) -> (Option<&'p Pipeline>, Vec<Refusal>) {
        let mut refusals = Vec::new();
        let pipeline = place(pipelines, &robot.pipeline, &robot.stage, &mut refusals);
        refusals.extend(check_timing(&robot.timing));
        match self.plugin(&robot.plugin) {
            None => refusals.push(Refusal::NoPlugin {
                plugin: robot.plugin.clone(),
            }),
            Some(installed) => refusals.extend(self.check_against_plugin(robot, &installed)),
        }
        if let Some(Recipient::Among(among)) = &robot.recipient {
            refusals.extend(check_among(&self.settings().directory, among));
        }
        for (code, value) in &robot.properties {
            if let Err(e) = check(value) {
                let (code, problem) = (code.clone(), e.to_string());
                refusals.push(Refusal::Value { code, problem });
            }
        }
        let decls = &self.settings().constant_decls;
        let misused = self.constant_type_problems(robot, decls).into_iter();
        refusals.extend(misused.map(|(field, problem)| Refusal::Field { field, problem }));
        (pipeline, refusals)
    }

    /// What a robot binding may ask of the plugin it names: fuel up to its
    /// package's `fuel.max` (and `sandbox.max-fuel`), a robot the plugin
    /// describes, and the properties that robot takes. A webhook describes
    /// no catalog: its properties are its own.
    pub(super) fn check_against_plugin(&self, robot: &RobotBinding, installed: &Installed) -> Vec<Refusal> {
        let max_fuel = installed
            .fuel
            .max
            .unwrap_or(u64::MAX)
            .min(self.sandbox.config().max_fuel);
        if let Some(fuel) = robot.fuel
            && fuel > max_fuel
        {
            let problem = format!(
                "{fuel} is more than this robot may get, {max_fuel} (its package's fuel.max, or sandbox.max-fuel)"
            );
            return vec![Refusal::field("fuel", problem)];
        }
        match &installed.handler {
            Handler::Wasm(plugin) => check_against_catalog(robot, plugin),
            Handler::Webhook { .. } => Vec::new(),
            Handler::Trigger(_) => {
                let problem = format!("`{}` is a trigger plugin: it has no robots", robot.plugin);
                vec![Refusal::field("plugin", problem)]
            }
        }
    }

    /// Every reason `robot` cannot be placed on the portal's pipelines, as
    /// (field, problem) pairs naming the fields as the API does: what a
    /// form shows next to each field.
    pub fn robot_problems(&self, robot: &RobotBinding) -> Vec<(String, String)> {
        let refusals = self.check_placed_robot(robot);
        refusals.iter().map(|r| (r.field_name(), r.to_string())).collect()
    }

    /// [`Engine::check_robot`] on the portal's pipelines, and the date field
    /// a robot is timed by must be one the portal declares
    /// ([`date_field_refusal`]; a template checks its own declarations).
    pub(super) fn check_placed_robot(&self, robot: &RobotBinding) -> Vec<Refusal> {
        let settings = self.settings();
        let (pipeline, mut refusals) = self.check_robot(&settings.pipelines, robot);
        if let Some(pipeline) = pipeline {
            refusals.extend(date_field_refusal(&settings.fields, pipeline.kind, &robot.timing));
        }
        refusals
    }

    /// Every reason `trigger` cannot be placed, as [`Engine::robot_problems`].
    pub fn trigger_problems(&self, trigger: &TriggerBinding) -> Vec<(String, String)> {
        let (_, refusals) = check_trigger(&self.settings().pipelines, trigger);
        refusals.iter().map(|r| (r.field_name(), r.to_string())).collect()
    }
}
