//! The CRM's structure and its automation: pipelines of stages, users and
//! departments, global constants, and the robots and triggers placed on
//! stages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::Localized;
use super::kind::{EntityKind, UserId};
use super::value::FieldValue;

/// What reaching a stage means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Semantic {
    InProgress,
    /// Final: won.
    Success,
    /// Final: lost, for one of several reasons.
    Failure,
}

/// One step of a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Unique within its pipeline, such as `NEW` or `PREPARATION`.
    pub code: String,
    pub names: Localized,
    pub semantic: Semantic,
}

/// An ordered list of stages for one entity kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Unique in the portal, such as `general` or `shipment`.
    pub code: String,
    pub kind: EntityKind,
    pub names: Localized,
    /// In order: an entity moves forward by going to a later stage.
    pub stages: Vec<Stage>,
}

impl Pipeline {
    pub fn stage(&self, code: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.code == code)
    }

    /// The position of a stage, for telling forward from backward moves.
    pub fn position(&self, code: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.code == code)
    }
}

pub type DepartmentId = u64;

/// An employee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: UserId,
    pub name: String,
    #[serde(default)]
    pub department: Option<DepartmentId>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn is_unset(id: &u64) -> bool {
    *id == 0
}

fn yes() -> bool {
    true
}

/// A department; its head is the supervisor of its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub id: DepartmentId,
    pub name: String,
    #[serde(default)]
    pub head: Option<UserId>,
    /// The department above, whose head supervises this one's head.
    #[serde(default)]
    pub parent: Option<DepartmentId>,
}

/// The portal's people, for resolving "the responsible's supervisor" and
/// user names in expressions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub users: Vec<User>,
    pub departments: Vec<Department>,
}

impl Directory {
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The head of the user's department; for a department's own head, the
    /// head of the department above.
    pub fn supervisor(&self, id: UserId) -> Option<UserId> {
        let mut department = self.user(id)?.department;
        while let Some(d) = department.and_then(|d| self.departments.iter().find(|x| x.id == d)) {
            match d.head {
                Some(head) if head != id => return Some(head),
                _ => department = d.parent,
            }
        }
        None
    }
}

/// Portal-wide named values, such as `Clerk` = a user.
pub type Constants = BTreeMap<String, FieldValue>;

/// To whom a robot's work goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipient {
    /// The entity's responsible.
    Responsible,
    /// The head of the responsible's department.
    Supervisor,
    /// A named user.
    User(UserId),
    /// The user a global constant holds.
    Constant(String),
}

/// When a robot runs after the entity enters its stage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Run after the previous robot of the stage has finished, not at entry.
    #[serde(default)]
    pub after_previous: bool,
    /// How long to wait, in seconds.
    #[serde(default)]
    pub delay_seconds: u64,
    /// Wait from this date or date-time field of the entity instead of from
    /// the stage entry; with a negative delay, run before it.
    #[serde(default)]
    pub relative_to: Option<RelativeTo>,
    /// Count only working time, and run only in working time. A delay of
    /// whole days counts working days (the same time of day, weekends and
    /// holidays skipped); any other delay counts working hours.
    #[serde(default)]
    pub working_time: bool,
    /// Run only if the run comes due in working time, and skip it
    /// otherwise (instead of `working_time`'s postponing): an escalation
    /// that only makes sense on a working day.
    #[serde(default)]
    pub skip_outside_working_time: bool,
    /// A cron expression (`sec min hour day month weekday`, in the portal's
    /// time zone): the robot runs on it, for every entity in its stage at
    /// the time, and not when an entity enters the stage. A nightly
    /// recomputation, say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// A date field a delay counts from, with a signed offset in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelativeTo {
    pub field: String,
    pub offset_seconds: i64,
}

/// A comparison of entity fields, combined with all/any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Compare { field: String, op: Op, value: FieldValue },
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// Text containing the value, or a list holding it.
    Contains,
    Empty,
    NotEmpty,
}

/// A plugin's fuel budgets, from its package's manifest (`[fuel]`): what
/// each run of its robots gets unless the admin sets the robot's own, and
/// the most an admin may set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fuel {
    pub default: Option<u64>,
    pub max: Option<u64>,
}

/// A robot placed on a stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotBinding {
    /// Assigned when stored; absent in templates.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub id: u64,
    pub pipeline: String,
    pub stage: String,
    /// The plugin, by name, and the robot's code in it.
    pub plugin: String,
    pub robot: String,
    /// What the admin calls it; shown in the run log.
    #[serde(default)]
    pub title: String,
    /// Property values; text may hold expressions such as `{=Document.TITLE}`.
    #[serde(default)]
    pub properties: BTreeMap<String, FieldValue>,
    /// Passed to the robot as the `recipient` property when set.
    #[serde(default)]
    pub recipient: Option<Recipient>,
    #[serde(default)]
    pub timing: Timing,
    #[serde(default)]
    pub condition: Option<Condition>,
    /// Fuel for each run; the plugin's default (else `sandbox.fuel`) when
    /// not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Why the robot no longer runs, such as its package being removed;
    /// its runs end cancelled with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
}

/// A trigger placed on a stage: moves an entity there when an event with its
/// code happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerBinding {
    /// Assigned when stored; absent in templates.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub id: u64,
    pub pipeline: String,
    pub stage: String,
    pub code: String,
    #[serde(default)]
    pub condition: Option<Condition>,
    /// Whether it may move an entity back to an earlier stage.
    #[serde(default)]
    pub allow_backwards: bool,
    /// Whether it may take an entity out of a final stage (success or
    /// failure), such as to reopen a lost lead when the client calls.
    #[serde(default)]
    pub leave_final: bool,
    /// A cron expression (`sec min hour day month weekday`, in the portal's
    /// time zone): the trigger also fires by itself on this schedule, for
    /// every entity of its pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}
