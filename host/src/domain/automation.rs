//! The CRM's structure and its automation: pipelines of stages, users and
//! departments, global constants, and the robots and triggers placed on
//! stages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use chrono::NaiveDate;

use super::calendar::{Calendar, WorkingHours};
use super::catalog::Localized;
use super::kind::{EntityKind, UserId};
use super::value::{FieldValue, Timestamp};

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
    /// On leave or otherwise away: distribution among those present skips
    /// them while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<Absence>,
    /// Their own working hours and time zone, where they differ from the
    /// portal's: a robot addressed to them counts working time by these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<WorkingHours>,
}

/// A stretch of days away, both ends included, in the user's time zone (or
/// the portal's): `{"until": "2026-12-14"}` is away until the end of the
/// 14th, from now; with `from`, from the start of that day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    pub until: NaiveDate,
}

impl Absence {
    /// Whether `day` falls in it.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|from| from <= day) && day <= self.until
    }
}

impl User {
    /// The calendar the user works by: the portal's with their own hours,
    /// or the portal's alone when they set none (or theirs do not fit it).
    pub fn calendar(&self, portal: &Calendar) -> Calendar {
        self.hours
            .as_ref()
            .and_then(|hours| portal.with_hours(hours).ok())
            .unwrap_or_else(|| portal.clone())
    }

    /// Why the user is not present at `at`, if they are not: inactive, or
    /// away that day in their time zone.
    pub fn absent_at(&self, at: Timestamp, portal: &Calendar) -> Option<String> {
        if !self.active {
            return Some(format!("user {} ({}) is inactive", self.id, self.name));
        }
        let away = self.away?;
        let day = self.calendar(portal).date_of(at);
        away.covers(day)
            .then(|| format!("user {} ({}) is away until {}", self.id, self.name, away.until))
    }
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

    pub fn department(&self, id: DepartmentId) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }

    /// The members of a department and of the departments under it, by id.
    pub fn members(&self, id: DepartmentId) -> Vec<UserId> {
        let mut within = vec![id];
        let mut i = 0;
        while let Some(&d) = within.get(i) {
            for below in self.departments.iter().filter(|x| x.parent == Some(d)) {
                if !within.contains(&below.id) {
                    within.push(below.id);
                }
            }
            i += 1;
        }
        let mut members: Vec<UserId> = self
            .users
            .iter()
            .filter(|u| u.department.is_some_and(|d| within.contains(&d)))
            .map(|u| u.id)
            .collect();
        members.sort_unstable();
        members
    }

    /// The people of a group recipient: its users, then its departments'
    /// members, each once.
    pub fn people(&self, users: &[UserId], departments: &[DepartmentId]) -> Vec<UserId> {
        let mut everyone: Vec<UserId> = Vec::new();
        let all = users
            .iter()
            .copied()
            .chain(departments.iter().flat_map(|&d| self.members(d)));
        for id in all {
            if !everyone.contains(&id) {
                everyone.push(id);
            }
        }
        everyone
    }

    /// The people of a group recipient ([`Directory::people`]) who are
    /// present at `at`; or, when none is, why each is not.
    pub fn present(
        &self,
        users: &[UserId],
        departments: &[DepartmentId],
        at: Timestamp,
        calendar: &Calendar,
    ) -> Result<Vec<UserId>, Vec<String>> {
        let everyone = self.people(users, departments);
        let mut present = Vec::new();
        let mut why = Vec::new();
        for id in everyone {
            match self.user(id).map(|u| u.absent_at(at, calendar)) {
                None => why.push(format!("user {id} does not exist")),
                Some(Some(reason)) => why.push(reason),
                Some(None) => present.push(id),
            }
        }
        if present.is_empty() {
            if why.is_empty() {
                why.push("the list is empty and the departments have no members".into());
            }
            return Err(why);
        }
        Ok(present)
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
    /// Several people, for a robot that picks one of them (its `recipient`
    /// takes several, as "change responsible" does): these users and the
    /// members of these departments (and of those under them). Only those
    /// present when the run starts, unless `skip_absent` is false.
    Among(Among),
}

/// The people of [`Recipient::Among`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Among {
    #[serde(default)]
    pub users: Vec<UserId>,
    #[serde(default)]
    pub departments: Vec<DepartmentId>,
    /// Leave out the inactive and those away (Bitrix24's "skip absent
    /// employees").
    #[serde(default = "yes")]
    pub skip_absent: bool,
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
    /// What happens when the field is empty as the entity enters the
    /// stage: the run waits for it to get a value (the default), or is
    /// skipped with the reason.
    #[serde(default, skip_serializing_if = "IfEmpty::is_wait")]
    pub if_empty: IfEmpty,
}

/// What a robot timed relative to an empty date field does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IfEmpty {
    /// Wait until the field gets a value, then count from it.
    #[default]
    Wait,
    /// Skip the run, recording that the field was empty.
    Skip,
}

impl IfEmpty {
    pub fn is_wait(&self) -> bool {
        *self == IfEmpty::Wait
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: UserId, name: &str, department: Option<DepartmentId>) -> User {
        User {
            id,
            name: name.into(),
            department,
            active: true,
            away: None,
            hours: None,
        }
    }

    fn at(text: &str) -> Timestamp {
        let t = chrono::DateTime::parse_from_rfc3339(text).unwrap();
        Timestamp::from_datetime(t.with_timezone(&chrono::Utc))
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn moscow() -> Calendar {
        serde_json::from_str(r#"{"time_zone": "Europe/Moscow"}"#).unwrap()
    }

    /// Sales (1) with Anna and Boris, and under it Export (2) with Vera;
    /// Gleb in no department.
    fn directory() -> Directory {
        let department = |id, name: &str, parent| Department {
            id,
            name: name.into(),
            head: None,
            parent,
        };
        Directory {
            users: vec![
                user(1, "Anna", Some(1)),
                user(2, "Boris", Some(1)),
                user(3, "Vera", Some(2)),
                user(4, "Gleb", None),
            ],
            departments: vec![department(1, "Sales", None), department(2, "Export", Some(1))],
        }
    }

    #[test]
    fn an_absence_covers_its_days_in_the_users_own_zone() {
        let mut boris = user(2, "Boris", None);
        boris.away = Some(serde_json::from_str(r#"{"from": "2026-12-01", "until": "2026-12-04"}"#).unwrap());
        let absent = |t: &str| boris.absent_at(at(t), &moscow());
        assert_eq!(absent("2026-11-30T23:59:59+03:00"), None);
        assert_eq!(
            absent("2026-12-01T00:00:00+03:00").as_deref(),
            Some("user 2 (Boris) is away until 2026-12-04")
        );
        assert!(absent("2026-12-04T23:59:59+03:00").is_some());
        assert_eq!(
            absent("2026-12-05T00:00:00+03:00"),
            None,
            "an absence that ended is over"
        );
        // In Vladivostok the 5th begins seven hours before it does in Moscow.
        boris.hours = Some(serde_json::from_str(r#"{"time_zone": "Asia/Vladivostok"}"#).unwrap());
        assert_eq!(boris.absent_at(at("2026-12-04T18:00:00+03:00"), &moscow()), None);
        // Without `from`, away from any day up to `until`.
        boris.away = Some(Absence {
            from: None,
            until: date("2026-12-04"),
        });
        assert!(boris.absent_at(at("2020-01-01T12:00:00+03:00"), &moscow()).is_some());
        boris.away = None;
        boris.active = false;
        assert_eq!(
            boris.absent_at(at("2026-12-01T12:00:00+03:00"), &moscow()).as_deref(),
            Some("user 2 (Boris) is inactive")
        );
    }

    #[test]
    fn a_group_is_its_users_then_its_departments_members_present() {
        let mut directory = directory();
        assert_eq!(directory.members(1), [1, 2, 3], "Export is under Sales");
        assert_eq!(directory.members(2), [3]);
        assert_eq!(directory.people(&[4, 2], &[1]), [4, 2, 1, 3], "each once, in order");
        directory.users[1].away = Some(Absence {
            from: None,
            until: date("2026-12-04"),
        });
        let now = at("2026-12-01T12:00:00+03:00");
        assert_eq!(directory.present(&[4], &[1], now, &moscow()), Ok(vec![4, 1, 3]));
        directory.users[0].active = false;
        directory.users[2].away = directory.users[1].away;
        assert_eq!(
            directory.present(&[9], &[1], now, &moscow()),
            Err(vec![
                "user 9 does not exist".to_owned(),
                "user 1 (Anna) is inactive".to_owned(),
                "user 2 (Boris) is away until 2026-12-04".to_owned(),
                "user 3 (Vera) is away until 2026-12-04".to_owned(),
            ])
        );
    }

    #[test]
    fn a_group_recipient_reads_from_json_and_skips_the_absent_by_default() {
        let among: Recipient = serde_json::from_str(r#"{"among": {"departments": [1]}}"#).unwrap();
        assert_eq!(
            among,
            Recipient::Among(Among {
                users: vec![],
                departments: vec![1],
                skip_absent: true
            })
        );
        let e = serde_json::from_str::<Recipient>(r#"{"among": {"department": [1]}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `department`"), "{e}");
    }
}
