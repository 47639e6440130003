//! A run's record: where a run is in its life and, once an attempt ends or
//! the run ends without one, what happened and why. The worker writes it,
//! storage keeps it, the API serves it (with a schema in `/openapi.json`),
//! and the admin board reads it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::automation::RobotBinding;
use super::digest::Digest;
use super::entity::{Cause, Effect, Fields};
use super::grant::Denied;
use super::kind::EntityRef;
use super::value::Timestamp;

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Waits for the previous robot of its stage to finish.
    Waiting,
    /// Waits for the date field its robot is timed by to get a value
    /// (`relative_to` with `if_empty: wait`); then due from it.
    WaitingForDate,
    /// Due at its time.
    Queued,
    /// A worker holds it.
    Leased,
    Succeeded,
    /// Succeeded; the robots after it wait until the task or activity it
    /// named is completed.
    Awaiting,
    /// Its condition was false.
    Skipped,
    /// Failed for good after its last attempt.
    Dead,
    /// Ended without running: see its report's `reason`.
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Waiting => "waiting",
            RunStatus::WaitingForDate => "waiting-for-date",
            RunStatus::Queued => "queued",
            RunStatus::Leased => "leased",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Awaiting => "awaiting",
            RunStatus::Skipped => "skipped",
            RunStatus::Dead => "dead",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub const ALL: [RunStatus; 9] = [
        RunStatus::Waiting,
        RunStatus::WaitingForDate,
        RunStatus::Queued,
        RunStatus::Leased,
        RunStatus::Succeeded,
        RunStatus::Awaiting,
        RunStatus::Skipped,
        RunStatus::Dead,
        RunStatus::Cancelled,
    ];
}

impl std::str::FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = RunStatus::ALL.iter().map(|status| status.as_str()).collect();
                format!("`{s}` is not a run status; use one of {}", all.join(", "))
            })
    }
}

/// A run as recorded.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Run {
    pub id: u64,
    /// The stage entry that started it.
    pub entry_id: u64,
    pub robot_id: u64,
    #[serde(with = "super::kind::as_text")]
    #[schema(value_type = String, example = "deal:42")]
    pub entity: EntityRef,
    pub status: RunStatus,
    #[schema(value_type = Object)]
    pub cause: Cause,
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    pub due_at: Timestamp,
    /// Attempts started so far.
    pub attempts: u32,
    /// How the last attempt ended, or why the run ended without one; absent
    /// while it has not ended an attempt.
    pub report: Option<RunReport>,
    #[schema(value_type = String, example = "2026-11-25T07:00:00.000Z")]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, example = "2026-11-25T07:00:00.000Z")]
    pub finished_at: Option<Timestamp>,
}

/// How a run's last attempt ended, or why the run ended without one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunReport {
    /// The robot as it was bound when the run ended.
    pub robot: RobotNote,
    /// The attempt this report is about. A worker counts an attempt when it
    /// takes the run, so a run cancelled before any worker took it says 0.
    pub attempt: u32,
    /// Why the run ended without running; absent when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<NotRun>,
    /// How the attempt ended; absent when the run did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Who caused a failure; absent on success and when the run did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blame: Option<Blame>,
    /// The plugin build that ran, by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub plugin: Option<Digest>,
    /// The version of the package that installed the plugin; absent for a
    /// plugin installed on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The properties the robot was given, expressions resolved.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Fields,
    /// The effects applied, in order. Empty unless the run succeeded.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub effects: Vec<Effect>,
    /// The values the robot returned, which later robots of the stage may
    /// read. Empty unless the run succeeded.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub returns: Fields,
    #[serde(default)]
    pub logs: Vec<LogLine>,
    /// Everything the host refused, whether or not the robot recovered.
    #[serde(default)]
    pub denials: Vec<Denial>,
    #[serde(default)]
    pub fuel_used: u64,
    /// How long the attempt took, in microseconds.
    #[serde(default)]
    pub duration_us: u64,
}

impl RunReport {
    /// A run that ended without running.
    pub fn not_run(robot: RobotNote, attempt: u32, reason: NotRun) -> RunReport {
        RunReport {
            reason: Some(reason),
            ..RunReport::blank(robot, attempt)
        }
    }

    /// A run that ended without its robot being called: it could not be
    /// prepared, or the host failed around it.
    pub fn failed(robot: RobotNote, attempt: u32, outcome: Outcome) -> RunReport {
        RunReport {
            blame: outcome.blame(),
            outcome: Some(outcome),
            ..RunReport::blank(robot, attempt)
        }
    }

    fn blank(robot: RobotNote, attempt: u32) -> RunReport {
        RunReport {
            robot,
            attempt,
            reason: None,
            outcome: None,
            blame: None,
            plugin: None,
            version: None,
            properties: Fields::new(),
            effects: Vec::new(),
            returns: Fields::new(),
            logs: Vec::new(),
            denials: Vec::new(),
            fuel_used: 0,
            duration_us: 0,
        }
    }
}

/// Which robot a run belongs to, as an admin reads it in the run log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RobotNote {
    /// What the admin calls it; empty when untitled.
    #[serde(default)]
    pub title: String,
    /// The plugin, by name, and the robot's code in it.
    pub plugin: String,
    pub code: String,
}

impl RobotNote {
    pub fn of(binding: &RobotBinding) -> RobotNote {
        RobotNote {
            title: binding.title.clone(),
            plugin: binding.plugin.clone(),
            code: binding.robot.clone(),
        }
    }

    /// For a run whose robot is no longer bound.
    pub fn removed() -> RobotNote {
        RobotNote {
            title: String::new(),
            plugin: String::new(),
            code: String::new(),
        }
    }
}

/// Why a run ended without running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum NotRun {
    /// The entity was deleted before the run was due.
    EntityGone,
    /// The entity left the stage the run belongs to.
    LeftStage,
    /// The robot was removed from the stage.
    RobotRemoved,
    /// The robot no longer runs, such as after its package was removed.
    RobotDisabled { because: String },
    /// The robot's condition was false for the entity (the run is skipped).
    ConditionFalse { because: String },
    /// The run came due outside working time and its robot runs only in
    /// it (the run is skipped).
    OutsideWorkingTime,
    /// The robot is timed relative to a date field the entity left empty,
    /// and its admin chose to skip it then (`if_empty: skip`).
    DateEmpty { field: String },
}

impl NotRun {
    /// The status a run ends in for this reason.
    pub fn status(&self) -> RunStatus {
        match self {
            NotRun::ConditionFalse { .. } | NotRun::OutsideWorkingTime | NotRun::DateEmpty { .. } => RunStatus::Skipped,
            _ => RunStatus::Cancelled,
        }
    }
}

impl fmt::Display for NotRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRun::EntityGone => f.write_str("the entity no longer exists"),
            NotRun::LeftStage => f.write_str("the entity left the stage"),
            NotRun::RobotRemoved => f.write_str("the robot was removed from the stage"),
            NotRun::RobotDisabled { because } => write!(f, "the robot is disabled: {because}"),
            NotRun::ConditionFalse { because } => write!(f, "condition is false: {because}"),
            NotRun::OutsideWorkingTime => f.write_str("it came due outside working time"),
            NotRun::DateEmpty { field } => write!(f, "the date field `{field}` it is timed by is empty"),
        }
    }
}

/// Who caused a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Blame {
    /// The plugin: its code, its limits, its requests.
    Guest,
    /// robohost itself, its configuration, or the data behind it.
    Host,
    /// A system outside robohost: a webhook robot's server.
    External,
}

/// One refusal during a run: what was refused and which call asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Denial {
    #[schema(value_type = Object)]
    pub denied: Denied,
    #[schema(value_type = String)]
    pub call: Cow<'static, str>,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// The robot returned its values; its effects are to be applied.
    Success,
    /// The robot returned a failure of its own.
    RobotError {
        code: String,
        message: String,
        retryable: bool,
    },
    /// The robot used its whole fuel budget.
    OutOfFuel { budget: u64 },
    /// The robot ran past its wall-clock limit.
    DeadlineExceeded { limit_ms: u64 },
    /// The robot tried to grow its memory past the limit.
    MemoryLimit { limit_bytes: usize },
    /// The robot recursed past the wasm stack limit.
    StackOverflow { limit_bytes: usize },
    /// The robot produced more output than a limit allows: logs, effects,
    /// or data passed to the host.
    OutputLimit { what: String },
    /// The robot made the host work more than a limit allows: host calls,
    /// rows read, resource handles held.
    HostCallLimit { what: String },
    /// The robot trapped: a panic, an out-of-bounds access, `unreachable`.
    GuestTrap { message: String, frames: Vec<String> },
    /// The robot failed after the sandbox refused it something.
    CapabilityDenied {
        #[schema(value_type = Object)]
        denied: Denied,
        call: String,
    },
    /// The robot's binding cannot be run as configured: its condition or a
    /// property cannot be evaluated, its recipient resolves to no user.
    ConfigurationError { message: String },
    /// robohost failed; the plugin is not to blame.
    HostError { message: String },
    /// An outside system failed: a webhook robot's server could not be
    /// reached, timed out or answered wrongly.
    ExternalError { message: String },
}

impl Outcome {
    /// A stable code for the outcome, used in the run record and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::RobotError { .. } => "robot-error",
            Outcome::OutOfFuel { .. } => "out-of-fuel",
            Outcome::DeadlineExceeded { .. } => "deadline-exceeded",
            Outcome::MemoryLimit { .. } => "memory-limit",
            Outcome::StackOverflow { .. } => "stack-overflow",
            Outcome::OutputLimit { .. } => "output-limit",
            Outcome::HostCallLimit { .. } => "host-call-limit",
            Outcome::GuestTrap { .. } => "guest-trap",
            Outcome::CapabilityDenied { .. } => "capability-denied",
            Outcome::ConfigurationError { .. } => "configuration-error",
            Outcome::HostError { .. } => "host-error",
            Outcome::ExternalError { .. } => "external-error",
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }

    /// Whether another attempt may end differently. A guest's failure is
    /// deterministic (the same input, fuel and limits give the same end)
    /// unless the robot itself says it is transient, and so is a binding
    /// that cannot be run; robohost's own and an outside system's failures
    /// may pass.
    pub fn is_retryable(&self) -> bool {
        match self {
            Outcome::RobotError { retryable, .. } => *retryable,
            Outcome::HostError { .. } | Outcome::ExternalError { .. } => true,
            _ => false,
        }
    }

    /// Who caused it; `None` for success.
    pub fn blame(&self) -> Option<Blame> {
        match self {
            Outcome::Success => None,
            Outcome::HostError { .. } | Outcome::ConfigurationError { .. } => Some(Blame::Host),
            Outcome::ExternalError { .. } => Some(Blame::External),
            _ => Some(Blame::Guest),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::RobotError { code, message, .. } => write!(f, "robot error `{code}`: {message}"),
            Outcome::OutOfFuel { budget } => {
                write!(
                    f,
                    "out of fuel: used its whole budget of {budget} (limit `sandbox.fuel`)"
                )
            }
            Outcome::DeadlineExceeded { limit_ms } => {
                write!(
                    f,
                    "deadline exceeded: ran longer than {limit_ms} ms (limit `sandbox.wall-time-ms`)"
                )
            }
            Outcome::MemoryLimit { limit_bytes } => write!(
                f,
                "memory limit: tried to use more than {limit_bytes} bytes (limit `sandbox.memory-bytes`)"
            ),
            Outcome::StackOverflow { limit_bytes } => write!(
                f,
                "stack overflow: recursed past {limit_bytes} bytes of stack (limit `sandbox.max-wasm-stack`)"
            ),
            Outcome::OutputLimit { what } => write!(f, "output limit: {what}"),
            Outcome::HostCallLimit { what } => write!(f, "host call limit: {what}"),
            Outcome::GuestTrap { message, frames } => {
                write!(f, "guest trap: {message}")?;
                if !frames.is_empty() {
                    write!(f, " in {}", frames.join(" <- "))?;
                }
                Ok(())
            }
            Outcome::CapabilityDenied { denied, call } => {
                write!(
                    f,
                    "capability denied: `{call}` needs {denied}, which this robot was not granted"
                )
            }
            Outcome::ConfigurationError { message } => write!(f, "configuration error: {message}"),
            Outcome::HostError { message } => write!(f, "host error: {message}"),
            Outcome::ExternalError { message } => write!(f, "external error: {message}"),
        }
    }
}

/// Where a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    /// The guest wrote it to stdout.
    Stdout,
    /// The guest wrote it to stderr.
    Stderr,
    /// The host's record of an outbound HTTP request the robot made: method,
    /// URL without its query, status, bytes sent and received.
    Http,
}

/// One line of a run's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EntityKind;

    /// One of each outcome; the match makes a new variant fail to compile
    /// here until it is listed.
    fn every_outcome() -> Vec<Outcome> {
        let text = String::new;
        let all = vec![
            Outcome::Success,
            Outcome::RobotError {
                code: text(),
                message: text(),
                retryable: false,
            },
            Outcome::OutOfFuel { budget: 0 },
            Outcome::DeadlineExceeded { limit_ms: 0 },
            Outcome::MemoryLimit { limit_bytes: 0 },
            Outcome::StackOverflow { limit_bytes: 0 },
            Outcome::OutputLimit { what: text() },
            Outcome::HostCallLimit { what: text() },
            Outcome::GuestTrap {
                message: text(),
                frames: Vec::new(),
            },
            Outcome::CapabilityDenied {
                denied: Denied::Filesystem,
                call: text(),
            },
            Outcome::ConfigurationError { message: text() },
            Outcome::HostError { message: text() },
            Outcome::ExternalError { message: text() },
        ];
        for outcome in &all {
            match outcome {
                Outcome::Success
                | Outcome::RobotError { .. }
                | Outcome::OutOfFuel { .. }
                | Outcome::DeadlineExceeded { .. }
                | Outcome::MemoryLimit { .. }
                | Outcome::StackOverflow { .. }
                | Outcome::OutputLimit { .. }
                | Outcome::HostCallLimit { .. }
                | Outcome::GuestTrap { .. }
                | Outcome::CapabilityDenied { .. }
                | Outcome::ConfigurationError { .. }
                | Outcome::HostError { .. }
                | Outcome::ExternalError { .. } => {}
            }
        }
        all
    }

    #[test]
    fn the_architecture_lists_every_outcome() {
        let map = include_str!("../../../ARCHITECTURE.md");
        let start = map.find("Outcomes: ").expect("ARCHITECTURE.md lists the outcomes");
        let list = &map[start..start + map[start..].find("\n\n").unwrap_or(map.len() - start)];
        let listed: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
        let codes: Vec<&str> = every_outcome().iter().map(Outcome::code).collect();
        for code in &codes {
            assert!(listed.contains(code), "ARCHITECTURE.md does not list `{code}`");
        }
        for name in listed.iter().filter(|name| name.contains('-') || **name == "success") {
            assert!(
                codes.contains(name),
                "ARCHITECTURE.md lists `{name}`, which is no outcome"
            );
        }
    }

    #[test]
    fn only_what_may_pass_is_retried() {
        let retried: Vec<&str> = every_outcome()
            .iter()
            .filter(|o| o.is_retryable())
            .map(Outcome::code)
            .collect();
        assert_eq!(retried, ["host-error", "external-error"]);
        let transient = Outcome::RobotError {
            code: "unavailable".into(),
            message: String::new(),
            retryable: true,
        };
        assert!(transient.is_retryable());
    }

    #[test]
    fn every_outcome_and_reason_reads_back_as_it_was_written() {
        let robot = RobotNote {
            title: "Call the client".into(),
            plugin: "standard".into(),
            code: "task".into(),
        };
        let mut reports: Vec<RunReport> = every_outcome()
            .into_iter()
            .map(|o| RunReport::failed(robot.clone(), 2, o))
            .collect();
        for reason in [
            NotRun::EntityGone,
            NotRun::LeftStage,
            NotRun::RobotRemoved,
            NotRun::RobotDisabled { because: "gone".into() },
            NotRun::ConditionFalse { because: "no".into() },
            NotRun::OutsideWorkingTime,
        ] {
            reports.push(RunReport::not_run(robot.clone(), 0, reason));
        }
        reports[0].denials.push(Denial {
            denied: Denied::Write(EntityKind::Deal),
            call: "effects.set-fields".into(),
        });
        reports[0].logs.push(LogLine {
            level: LogLevel::Http,
            message: "GET http://example.com/ 200".into(),
        });
        for report in reports {
            let text = serde_json::to_string(&report).unwrap();
            let back: RunReport = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, report, "{text}");
        }
    }
}
