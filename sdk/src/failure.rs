//! Building failures, and turning a host error into one so a robot or a
//! trigger can pass it on with `?`. The codes are stable: the host and
//! admins match on them.

use crate::{Failure, HostError};

impl Failure {
    /// A failure that running again will not fix.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that running again later may fix, such as an outside system
    /// being down.
    pub fn retry_later(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            retryable: true,
            ..Failure::new(code, message)
        }
    }

    /// Code `bad_property`: property `property` has a value the robot cannot
    /// use; `problem` says why.
    pub fn bad_property(property: &str, problem: impl core::fmt::Display) -> Self {
        Failure::new("bad_property", format!("property `{property}`: {problem}"))
    }

    /// Code `bad_property`: required property `property` has no value.
    pub fn missing_property(property: &str) -> Self {
        Failure::new("bad_property", format!("property `{property}` is required but not set"))
    }

    /// Code `bad_payload`: a trigger cannot read the inbound call it was
    /// handed; `message` names what is wrong. Sending the same call again
    /// will not help.
    pub fn bad_payload(message: impl Into<String>) -> Self {
        Failure::new("bad_payload", message)
    }
}

impl HostError {
    /// The failure code this error becomes: `host_denied`, `host_not_found`,
    /// `host_invalid`, `host_limit_exceeded` or `host_unavailable`.
    pub const fn code(&self) -> &'static str {
        match self {
            HostError::Denied(_) => "host_denied",
            HostError::NotFound(_) => "host_not_found",
            HostError::Invalid(_) => "host_invalid",
            HostError::LimitExceeded(_) => "host_limit_exceeded",
            HostError::Unavailable(_) => "host_unavailable",
        }
    }
}

/// Only `unavailable` is retryable: the others come from the robot's request
/// or its grants, which a retry does not change.
impl From<HostError> for Failure {
    fn from(error: HostError) -> Self {
        let code = error.code();
        match error {
            HostError::Denied(capability) => Failure::new(
                code,
                format!(
                    "the host denied capability `{capability}`: the robot must declare it \
                     and the admin must grant it"
                ),
            ),
            HostError::NotFound(what) => Failure::new(code, format!("not found: {what}")),
            HostError::Invalid(problem) => Failure::new(code, format!("the host rejected the request: {problem}")),
            HostError::LimitExceeded(limit) => Failure::new(code, format!("a run limit was reached: {limit}")),
            HostError::Unavailable(reason) => Failure::retry_later(code, format!("the host is unavailable: {reason}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Capability;

    #[test]
    fn host_errors_become_failures_naming_the_problem() {
        let denied = Failure::from(HostError::Denied(Capability::ChangeResponsible));
        assert_eq!(denied.code, "host_denied");
        assert_eq!(
            denied.message,
            "the host denied capability `change-responsible`: the robot must declare it and \
             the admin must grant it"
        );
        assert!(!denied.retryable);

        let missing = Failure::from(HostError::NotFound("deal 42".into()));
        assert_eq!(
            (missing.code.as_str(), missing.message.as_str()),
            ("host_not_found", "not found: deal 42")
        );
        assert!(!missing.retryable);

        let limit = Failure::from(HostError::LimitExceeded("64 effects".into()));
        assert_eq!(limit.code, "host_limit_exceeded");
        assert!(!limit.retryable);
    }

    #[test]
    fn only_unavailable_is_retryable() {
        let down = Failure::from(HostError::Unavailable("database".into()));
        assert_eq!(down.code, "host_unavailable");
        assert!(down.retryable);
        assert!(!Failure::from(HostError::Invalid("bad stage".into())).retryable);
    }
}
