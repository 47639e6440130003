//! Extractors that turn a request's body, path and query into typed input.
//!
//! axum's own extractors answer bad input with plain-text rejections; these
//! answer with an [`ApiError`] naming the field, segment or parameter at
//! fault, so every 4xx has the API's JSON shape.

use std::fmt::Display;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use super::error::ApiError;
use super::{JSON_BODY_LIMIT, PLUGIN_BODY_LIMIT};
use crate::domain::{EntityKind, EntityRef};

/// The longest path segment, as the longest code that becomes a key.
pub use crate::engine::MAX_CODE;

/// How much of a client's text an error message repeats.
const QUOTED: usize = 60;

/// `text` cut short: a message names the bad input without echoing
/// kilobytes of it.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn quote(text: &str) -> String {
    format!("`{}`", shorten(text))
}

/// The most items a list returns at once, and the default.
const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

/// A JSON body (`Content-Type: application/json`), deserialised into `T`.
pub struct JsonBody<T>(pub T);

/// A JSON object whose fields the handler completes (from the path) before
/// deserialising it with [`from_object`].
pub type JsonObject = JsonBody<Map<String, Json>>;

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let media = media_type(req.headers());
        let json = media
            .as_deref()
            .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")));
        if !json {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/json",
                got: media.unwrap_or_else(|| "one without a Content-Type".into()),
            });
        }
        let bytes = read_body(req, state, JSON_BODY_LIMIT).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A template file: UTF-8 text under the JSON body limit.
pub struct TomlBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TomlBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let media = media_type(req.headers());
        if !matches!(media.as_deref(), Some("application/toml" | "text/plain")) {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/toml or text/plain",
                got: media.unwrap_or_else(|| "one without a Content-Type".into()),
            });
        }
        let bytes = read_body(req, state, JSON_BODY_LIMIT).await?;
        String::from_utf8(bytes.to_vec())
            .map(TomlBody)
            .map_err(|e| ApiError::BadBody {
                detail: format!("a template is UTF-8 text: {e}"),
            })
    }
}

/// A bulk job's file: CSV as UTF-8 text, up to 16 MiB (about 800,000
/// `id, responsible` lines).
pub struct CsvBody(pub String);

/// How large a bulk job's file may be.
pub const CSV_BODY_LIMIT: usize = 16 * 1024 * 1024;

impl<S: Send + Sync> FromRequest<S> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let media = media_type(req.headers());
        if !matches!(media.as_deref(), Some("text/csv" | "text/plain")) {
            return Err(ApiError::UnsupportedMediaType {
                expected: "text/csv or text/plain",
                got: media.unwrap_or_else(|| "one without a Content-Type".into()),
            });
        }
        let bytes = read_body(req, state, CSV_BODY_LIMIT).await?;
        String::from_utf8(bytes.to_vec())
            .map(CsvBody)
            .map_err(|e| ApiError::BadBody {
                detail: format!("a CSV file is UTF-8 text: {e}"),
            })
    }
}

/// A package upload: the raw bytes of its archive.
pub struct PackageBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for PackageBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let media = media_type(req.headers());
        if !matches!(media.as_deref(), Some("application/gzip" | "application/octet-stream")) {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/gzip or application/octet-stream",
                got: media.unwrap_or_else(|| "one without a Content-Type".into()),
            });
        }
        read_body(req, state, PLUGIN_BODY_LIMIT).await.map(PackageBody)
    }
}

/// A plugin upload: the raw bytes of a component.
pub struct WasmBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for WasmBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let media = media_type(req.headers());
        if !matches!(media.as_deref(), Some("application/wasm" | "application/octet-stream")) {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/wasm or application/octet-stream",
                got: media.unwrap_or_else(|| "one without a Content-Type".into()),
            });
        }
        read_body(req, state, PLUGIN_BODY_LIMIT).await.map(WasmBody)
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or(value);
    Some(essence.trim().to_ascii_lowercase())
}

/// Reads the whole body under the route's `DefaultBodyLimit`, which is
/// `limit`; a body past it is refused as soon as the limit is reached.
async fn read_body<S: Send + Sync>(req: Request, state: &S, limit: usize) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::BadBody { detail: e.body_text() }
        }
    })
}

/// Parses JSON text into `T`; an error names the field it is about.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Json = serde_json::from_slice(bytes).map_err(|e| ApiError::BadJson {
        field: None,
        message: e.to_string(),
    })?;
    refuse_nul(&value, &mut String::new())?;
    serde_path_to_error::deserialize(value).map_err(json_error)
}

/// Deserialises a JSON object (completed by the handler) into `T`.
pub fn from_object<T: DeserializeOwned>(object: Map<String, Json>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Json::Object(object)).map_err(json_error)
}

/// Refuses text holding U+0000 anywhere in a body: PostgreSQL cannot store
/// it in a text column, and the database's refusal would be a 500.
fn refuse_nul(value: &Json, path: &mut String) -> Result<(), ApiError> {
    let nul = |path: &str| ApiError::BadJson {
        field: (!path.is_empty()).then(|| path.to_owned()),
        message: format!(
            "`{}`: text may not hold the NUL character (U+0000)",
            if path.is_empty() { "." } else { path }
        ),
    };
    let len = path.len();
    match value {
        Json::String(s) if s.contains('\0') => return Err(nul(path)),
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                refuse_nul(item, path)?;
                path.truncate(len);
            }
        }
        Json::Object(map) => {
            for (key, item) in map {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if key.contains('\0') {
                    return Err(nul(path));
                }
                refuse_nul(item, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// serde's message, prefixed with the path of the field it is about (for an
/// unknown field, the field itself).
fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.inner().to_string();
    if path == "." {
        return ApiError::BadJson {
            field: None,
            message: inner,
        };
    }
    ApiError::BadJson {
        message: format!("`{path}`: {inner}"),
        field: Some(path),
    }
}

/// A route's path segments, percent-decoded, parsed on demand.
pub struct PathParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadPath {
                field: "path".into(),
                message: e.body_text(),
            })?;
        let mut params = Vec::new();
        for (name, value) in raw.iter() {
            // See `refuse_nul`.
            if value.contains('\0') {
                return Err(ApiError::BadPath {
                    field: name.into(),
                    message: format!("`{name}` may not hold the NUL character (U+0000)"),
                });
            }
            if value.chars().count() > MAX_CODE {
                return Err(ApiError::BadPath {
                    field: name.into(),
                    message: format!("`{name}` is longer than {MAX_CODE} characters"),
                });
            }
            params.push((name.to_owned(), value.to_owned()));
        }
        Ok(PathParams(params))
    }
}

impl PathParams {
    /// The segment `name` as given.
    pub fn text(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            // The route and its handler disagree: our bug, not the client's.
            .ok_or_else(|| ApiError::internal("a route lacks a path segment", name))
    }

    /// The segment `name` as a numeric id.
    pub fn id(&self, name: &str) -> Result<u64, ApiError> {
        let text = self.text(name)?;
        text.parse().map_err(|_| ApiError::BadPath {
            field: name.into(),
            message: format!("`{name}` must be a whole number such as 42, not {}", quote(text)),
        })
    }

    /// The `{kind}` segment.
    pub fn kind(&self) -> Result<EntityKind, ApiError> {
        self.text("kind")?
            .parse()
            .map_err(|e: crate::domain::ValueError| ApiError::BadPath {
                field: "kind".into(),
                message: e.to_string(),
            })
    }

    /// The `{kind}/{id}` segments.
    pub fn entity(&self) -> Result<EntityRef, ApiError> {
        Ok(EntityRef {
            kind: self.kind()?,
            id: self.id("id")?,
        })
    }
}

/// A query string's parameters, checked against what the route takes.
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadQuery {
                field: "query".into(),
                message: e.body_text(),
            })?;
        if let Some((name, _)) = pairs.iter().find(|(k, v)| k.contains('\0') || v.contains('\0')) {
            // See `refuse_nul`.
            return Err(ApiError::BadQuery {
                field: name.clone(),
                message: "query parameters may not hold the NUL character (U+0000)".into(),
            });
        }
        Ok(QueryParams(pairs))
    }
}

impl QueryParams {
    /// Refuses parameters other than `allowed`, and any given twice, so a
    /// misspelt parameter is reported rather than silently ignored.
    pub fn allow(self, allowed: &[&str]) -> Result<Self, ApiError> {
        for (i, (name, _)) in self.0.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                let message = if allowed.is_empty() {
                    format!("unknown query parameter {}; this route takes none", quote(name))
                } else {
                    format!(
                        "unknown query parameter {}; this route takes {}",
                        quote(name),
                        allowed.join(", ")
                    )
                };
                return Err(ApiError::BadQuery {
                    field: name.clone(),
                    message,
                });
            }
            if self.0[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::BadQuery {
                    field: name.clone(),
                    message: format!("query parameter {} is given more than once", quote(name)),
                });
            }
        }
        Ok(self)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Parameter `name` parsed with its type's `FromStr`, whose message says
    /// what was expected.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.text(name)
            .map(|text| {
                text.parse().map_err(|e: T::Err| ApiError::BadQuery {
                    field: name.into(),
                    message: format!("`{name}`: {e}"),
                })
            })
            .transpose()
    }

    /// Parameter `name` as a whole number; 0 when absent.
    pub fn number(&self, name: &str) -> Result<u64, ApiError> {
        match self.text(name) {
            None => Ok(0),
            Some(text) => text.parse().map_err(|_| ApiError::BadQuery {
                field: name.into(),
                message: format!("`{name}` must be a whole number such as 42, not {}", quote(text)),
            }),
        }
    }

    /// The `limit` parameter: how many items a list returns.
    pub fn limit(&self) -> Result<u32, ApiError> {
        let bad = |text: &str| ApiError::BadQuery {
            field: "limit".into(),
            message: format!(
                "`limit` must be a whole number from 1 to {MAX_LIMIT}, not {}",
                quote(text)
            ),
        };
        match self.text("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(bad(text)),
            },
        }
    }
}
