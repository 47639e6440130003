//! The API's one error type and its JSON form.
//!
//! Every failure a handler or extractor can meet becomes an [`ApiError`]. A
//! client's mistake is a 4xx with a stable `code`, a message saying what is
//! wrong and, when known, the `field` it is about; a failure of robohost
//! itself is logged here and answered with a bare `internal` 500, so no
//! database text or host detail reaches the client.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::role::Role;
use crate::engine::EngineError;
use crate::storage::StoreError;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not JSON of the expected shape.
    #[error("{message}")]
    BadJson { field: Option<String>, message: String },
    /// The body could not be read (the client went away mid-body...).
    #[error("the body could not be read: {detail}")]
    BadBody { detail: String },
    /// A path segment is not what the route takes.
    #[error("{message}")]
    BadPath { field: String, message: String },
    /// A query parameter is unknown, repeated or malformed.
    #[error("{message}")]
    BadQuery { field: String, message: String },
    #[error("expected a body of type {expected}, not {got}")]
    UnsupportedMediaType { expected: &'static str, got: String },
    #[error("the body is larger than the limit of {} MiB for this route", limit / (1024 * 1024))]
    TooLarge { limit: usize },
    #[error("{message}")]
    Unauthorized { message: &'static str },
    #[error("this route needs the role {}; this token has the role {has}", roles(needs))]
    Forbidden { needs: &'static [Role], has: Role },
    #[error("{what} does not exist")]
    NotFound { field: Option<String>, what: String },
    #[error("no route {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("this route does not take the method {method}")]
    MethodNotAllowed { method: String },
    /// Well-formed input the engine refuses.
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
    /// A change refused while something depends on what it would remove.
    #[error("{0}")]
    Conflict(String),
    /// Uploaded bytes that are not a usable plugin.
    #[error("{0}")]
    BadPlugin(String),
    /// A template with problems, each with its line and column.
    #[error("the template has {} problem(s), nothing was installed: {}", .0.len(), .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    BadTemplate(Vec<crate::domain::Problem>),
    /// A failure of robohost itself; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `admin`, `admin or manager`...
fn roles(needs: &[Role]) -> String {
    let names: Vec<&str> = needs.iter().map(|r| r.as_str()).collect();
    names.join(" or ")
}

/// The JSON body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// An error's stable code, its explanation, and the field it is about.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable: `bad_json`, `bad_body`, `bad_path`, `bad_query`,
    /// `unsupported_media_type`, `too_large`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `invalid`, `bad_plugin`,
    /// `bad_template`, `internal`.
    pub code: &'static str,
    /// For people: what is wrong and, where it helps, what to send instead.
    pub message: String,
    /// The body field, path segment or query parameter at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `bad_template`: every problem with its line and column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<crate::domain::Problem>,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub fn not_found(field: Option<&str>, what: impl Into<String>) -> Self {
        ApiError::NotFound {
            field: field.map(str::to_owned),
            what: what.into(),
        }
    }

    /// Logs a host failure and hides it behind `internal`.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        ApiError::Internal(context.to_owned())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadJson { .. }
            | ApiError::BadBody { .. }
            | ApiError::BadPath { .. }
            | ApiError::BadQuery { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid { .. } | ApiError::BadPlugin(_) | ApiError::BadTemplate(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadJson { .. } => "bad_json",
            ApiError::BadBody { .. } => "bad_body",
            ApiError::BadPath { .. } => "bad_path",
            ApiError::BadQuery { .. } => "bad_query",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::Invalid { .. } => "invalid",
            ApiError::BadPlugin(_) => "bad_plugin",
            ApiError::BadTemplate(_) => "bad_template",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::BadJson { field, .. } | ApiError::NotFound { field, .. } => field.clone(),
            ApiError::BadPath { field, .. } | ApiError::BadQuery { field, .. } | ApiError::Invalid { field, .. } => {
                Some(field.clone())
            }
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            // The context was logged; the client learns only that it was us.
            ApiError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message(),
                field: self.field(),
                problems: match &self {
                    ApiError::BadTemplate(problems) => problems.clone(),
                    _ => Vec::new(),
                },
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized { .. }) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::NotFound { what } => ApiError::NotFound { field: None, what },
            EngineError::Invalid { field, problem } => ApiError::Invalid { field, problem },
            EngineError::InUse(message) => ApiError::Conflict(message),
            // The engine loads a plugin only when it is uploaded or at
            // start, so a load failure here is the upload's fault.
            EngineError::Plugin(e) => ApiError::BadPlugin(e.to_string()),
            EngineError::Template(problems) => ApiError::BadTemplate(problems),
            e @ (EngineError::Package(_) | EngineError::Unapproved { .. }) => ApiError::BadPlugin(e.to_string()),
            EngineError::Store(e) => ApiError::internal("the database failed", e),
            EngineError::Internal(e) => ApiError::internal("the host failed", e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::internal("the database failed", error)
    }
}
