//! Signing in to the board. An account (a name, a role and an Argon2id
//! password hash, set with `robohost account set`) signs in with its
//! password; its browser gets a session cookie (HttpOnly, SameSite=Strict,
//! Secure when the host is reached over HTTPS) that expires after
//! [`SESSION_HOURS`] and can be ended. Only the cookie's SHA-256 is stored.
//! Every form carries a CSRF token: a session's own, or for the sign-in
//! form (before any session) one that must match a cookie set with it.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest as _, Sha256};

use super::text::Lang;
use crate::api::Role;
use crate::engine::Engine;
use crate::storage::StoreError;

pub const SESSION_COOKIE: &str = "robohost_session";
/// The sign-in form's CSRF token, set with the form.
pub const LOGIN_COOKIE: &str = "robohost_login";
pub const LANG_COOKIE: &str = "robohost_lang";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// The shortest password an account may have.
pub const MIN_PASSWORD: usize = 8;

/// The Argon2id hash of `password`, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("the operating system gave no random bytes: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the stored hash.
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// 32 random bytes in hex: a session id or a CSRF token.
pub fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("the operating system gave no random bytes: {e}"))?;
    Ok(hex::encode(bytes))
}

/// How a session id is stored.
pub fn session_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for `path`, lasting
/// `max_age` seconds (0 ends it), Secure when `secure`.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Whether cookies must be Secure: the host is reached over HTTPS.
pub fn secure(engine: &Engine) -> bool {
    engine.public_url().starts_with("https://")
}

/// The board's language for this request: the switch's cookie, else the
/// browser's first choice among those the board speaks, else English.
pub fn lang(headers: &HeaderMap) -> Lang {
    if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
        return lang;
    }
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accepted
        .split(',')
        .filter_map(|part| part.split(';').next())
        .filter_map(|tag| Lang::parse(tag.trim().get(..2)?))
        .next()
        .unwrap_or(Lang::En)
}

/// A signed-in browser: whose, with which role, the token its forms carry,
/// and its language.
pub struct Session {
    pub account: String,
    pub role: Role,
    pub csrf: String,
    pub lang: Lang,
    /// The stored hash of its cookie, to end it.
    pub id_hash: String,
}

/// Not signed in: pages send the browser to sign in.
pub enum NoSession {
    SignIn,
    Failed(StoreError),
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::SignIn => Redirect::to("/login").into_response(),
            NoSession::Failed(error) => crate::api::ApiError::from(error).into_response(),
        }
    }
}

impl FromRequestParts<Arc<Engine>> for Session {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, engine: &Arc<Engine>) -> Result<Self, NoSession> {
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(NoSession::SignIn)?;
        let id_hash = session_hash(id);
        let stored = engine
            .store()
            .session(&id_hash, engine.now())
            .await
            .map_err(NoSession::Failed)?
            .ok_or(NoSession::SignIn)?;
        // An account whose role no longer reads is signed out.
        let role: Role = stored.role.parse().map_err(|_| NoSession::SignIn)?;
        Ok(Session {
            account: stored.account,
            role,
            csrf: stored.csrf,
            lang: lang(&parts.headers),
            id_hash,
        })
    }
}

impl OptionalFromRequestParts<Arc<Engine>> for Session {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, engine: &Arc<Engine>) -> Result<Option<Self>, NoSession> {
        match <Session as FromRequestParts<Arc<Engine>>>::from_request_parts(parts, engine).await {
            Ok(session) => Ok(Some(session)),
            Err(NoSession::SignIn) => Ok(None),
            Err(failed) => Err(failed),
        }
    }
}

/// Whether two tokens are equal, in time that does not depend on where
/// they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let stored = hash_password("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify_password(&stored, "correct horse"));
        assert!(!verify_password(&stored, "correct hors"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(stored, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; robohost_session=abc".parse().unwrap());
        headers.append(header::COOKIE, "robohost_lang=ru".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LANG_COOKIE), Some("ru"));
        assert_eq!(cookie(&headers, "b"), None);
        assert_eq!(lang(&headers), Lang::Ru);
    }

    #[test]
    fn the_language_follows_the_browser_without_a_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, "ru-RU,ru;q=0.9,en;q=0.8".parse().unwrap());
        assert_eq!(lang(&headers), Lang::Ru);
        headers.insert(header::ACCEPT_LANGUAGE, "de-DE,en;q=0.5".parse().unwrap());
        assert_eq!(lang(&headers), Lang::En);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}
