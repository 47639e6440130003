//! Email tracking, public like an email's links must be: the image whose
//! loading says an email was opened, and the redirects of its links (see
//! [`crate::domain::tracked`]). A token is 128 random bits; an unknown one
//! gets the same image, and no redirect.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::PathParams;
use crate::engine::Engine;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

#[utoipa::path(
    get, path = "/t/{token}/open.gif", tag = "tracking",
    params(("token" = String, Path, description = "The email's tracking token")),
    responses((status = 200, description = "A transparent 1×1 GIF, whatever the token; a known token fires `email_opened` on what the email was about", content_type = "image/gif")),
)]
pub(super) async fn email_opened(State(engine): State<Arc<Engine>>, path: PathParams) -> Result<Response, ApiError> {
    engine.email_opened(path.text("token")?).await?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    Ok((headers, PIXEL).into_response())
}

#[utoipa::path(
    get, path = "/t/{token}/link/{n}", tag = "tracking",
    params(
        ("token" = String, Path, description = "The email's tracking token"),
        ("n" = u64, Path, description = "Which of the email's links, from 0"),
    ),
    responses(
        (status = 302, description = "To the email's `n`-th link; fires `link_clicked` on what the email was about"),
        (status = 404, description = "No email has this token, or it has no such link"),
    ),
)]
pub(super) async fn link_clicked(State(engine): State<Arc<Engine>>, path: PathParams) -> Result<Response, ApiError> {
    let n = path.id("n")?;
    let token = path.text("token")?;
    match engine.link_clicked(token, n as usize).await? {
        Some(link) => {
            let location = HeaderValue::from_str(&link).map_err(|e| ApiError::internal("a link is not a header", e))?;
            Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        None => Err(ApiError::not_found(None, "a tracked link with this token and number")),
    }
}
