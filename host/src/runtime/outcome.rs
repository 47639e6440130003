//! How a run ends: one typed outcome, who is to blame, and the run's report.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use crate::domain::Denied;
use crate::domain::{Digest, Effect, Fields, TriggerHit};

/// Who caused a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Blame {
    /// The plugin: its code, its limits, its requests.
    Guest,
    /// robohost itself or the data behind it.
    Host,
    /// A system outside robohost: a webhook robot's server.
    External,
}

/// One refusal during a run: what was refused and which call asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub denied: Denied,
    pub call: &'static str,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    CapabilityDenied { denied: Denied, call: String },
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
            Outcome::HostError { .. } => "host-error",
            Outcome::ExternalError { .. } => "external-error",
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }

    /// Whether another attempt may end differently. A guest's failure is
    /// deterministic (the same input, fuel and limits give the same end)
    /// unless the robot itself says it is transient; robohost's own and an
    /// outside system's failures may pass.
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
            Outcome::HostError { .. } => Some(Blame::Host),
            Outcome::ExternalError { .. } => Some(Blame::External),
            _ => Some(Blame::Guest),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::RobotError { code, message, .. } => {
                write!(f, "robot error `{code}`: {message}")
            }
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
            Outcome::MemoryLimit { limit_bytes } => {
                write!(
                    f,
                    "memory limit: tried to use more than {limit_bytes} bytes (limit `sandbox.memory-bytes`)"
                )
            }
            Outcome::StackOverflow { limit_bytes } => {
                write!(
                    f,
                    "stack overflow: recursed past {limit_bytes} bytes of stack (limit `sandbox.max-wasm-stack`)"
                )
            }
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
            Outcome::HostError { message } => write!(f, "host error: {message}"),
            Outcome::ExternalError { message } => write!(f, "external error: {message}"),
        }
    }
}

/// Where a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub plugin: Digest,
    pub robot: String,
    pub outcome: Outcome,
    pub blame: Option<Blame>,
    /// The effects to apply, in order. Empty unless the run succeeded.
    pub effects: Vec<Effect>,
    /// The values the robot returned. Empty unless the run succeeded.
    pub returns: Fields,
    pub logs: Vec<LogLine>,
    /// Everything the sandbox refused, whether or not the robot recovered.
    pub denials: Vec<Denial>,
    pub fuel_used: u64,
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// Everything a trigger plugin's handling of one webhook produced.
#[derive(Clone, Debug, Serialize)]
pub struct HandleReport {
    pub plugin: Digest,
    pub outcome: Outcome,
    pub blame: Option<Blame>,
    /// The hits to fire. Empty unless the handling succeeded.
    pub hits: Vec<TriggerHit>,
    pub logs: Vec<LogLine>,
    pub denials: Vec<Denial>,
    pub fuel_used: u64,
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
