//! The admin board: server-rendered HTML pages served by the host itself
//! (askama templates in `host/web/`, the stylesheet embedded), for people
//! in a browser where the API is for programs. A page reads through the
//! engine as the API does and checks the role the API would; see
//! [`session`] for signing in, [`board`] for a pipeline's board.

pub mod board;
mod edit;
mod entities;
mod fields;
mod forms;
mod jobs;
mod packages;
mod robot;
pub mod runs;
pub mod session;
mod settings;
pub mod text;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use self::board::BoardView;
use self::session::{LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, SESSION_HOURS, Session, same_token, set_cookie};
use self::text::{Lang, Text};
use crate::api::ApiError;
use crate::domain::Timestamp;
use crate::engine::Engine;

/// The board's pages and the forms they post.
pub fn router() -> Router<Arc<Engine>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{lang}", get(switch_lang))
        .route("/board", get(pipelines))
        .route("/board/new", get(edit::new_pipeline).post(edit::post_pipeline))
        .route("/board/{code}", get(pipeline_board))
        .route("/board/{code}/stages/new", get(edit::new_stage).post(edit::post_stage))
        .route("/board/{code}/stages/{stage}/delete", post(edit::delete_stage))
        .route(
            "/board/{code}/stages/{stage}/robots/new",
            get(robot::new_robot).post(robot::post_new_robot),
        )
        .route(
            "/board/{code}/robots/{id}",
            get(robot::edit_robot).post(robot::post_robot),
        )
        .route("/board/{code}/robots/{id}/delete", post(robot::delete_robot))
        .route("/board/{code}/robots/{id}/move", post(robot::move_robot))
        .route(
            "/board/{code}/stages/{stage}/triggers/new",
            get(edit::new_trigger).post(edit::post_new_trigger),
        )
        .route(
            "/board/{code}/triggers/{id}",
            get(edit::edit_trigger).post(edit::post_trigger),
        )
        .route("/board/{code}/triggers/{id}/delete", post(edit::delete_trigger))
        .route("/runs", get(runs::log))
        .route("/runs/{id}", get(runs::run_page))
        .route("/runs/retry", post(runs::retry))
        .route(
            "/jobs",
            get(jobs::jobs)
                .post(jobs::plan)
                .layer(DefaultBodyLimit::max(crate::api::CSV_BODY_LIMIT + 64 * 1024)),
        )
        .route("/jobs/{id}", get(jobs::job))
        .route("/jobs/{id}/start", post(jobs::start))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/entities/{pipeline}", get(entities::kanban))
        .route("/entities/{kind}/{id}", get(entities::entity))
        .route("/packages", get(packages::packages))
        .route(
            "/packages/upload",
            post(packages::upload).layer(DefaultBodyLimit::max(crate::api::PLUGIN_BODY_LIMIT + 64 * 1024)),
        )
        .route(
            "/packages/install",
            // The archive comes back in base64, a third larger.
            post(packages::install).layer(DefaultBodyLimit::max(crate::api::PLUGIN_BODY_LIMIT * 2)),
        )
        .route("/packages/{name}/rollback", post(packages::rollback))
        .route(
            "/packages/{name}/remove",
            get(packages::confirm_remove).post(packages::remove),
        )
        .route("/settings", get(settings::settings))
        .route("/settings/template", post(settings::install_template))
        .route("/settings/constants/{code}", post(settings::bind_constant))
        .route("/settings/people", get(settings::people))
        .route(
            "/settings/users/new",
            get(settings::new_user).post(settings::post_new_user),
        )
        .route(
            "/settings/users/{id}",
            get(settings::edit_user).post(settings::post_user),
        )
        .route(
            "/settings/departments/new",
            get(settings::new_department).post(settings::post_new_department),
        )
        .route(
            "/settings/departments/{id}",
            get(settings::edit_department).post(settings::post_department),
        )
        .route(
            "/settings/calendar",
            get(settings::calendar).post(settings::post_calendar),
        )
        .route("/settings/tokens", get(settings::tokens).post(settings::create_token))
        .route("/settings/fields", get(fields::fields))
        .route("/settings/fields/new", get(fields::new_field).post(fields::post_field))
        .route("/settings/fields/{kind}/{code}/remove", post(fields::remove_field))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/static/board.css", get(stylesheet))
        .route("/static/board.js", get(script))
}

/// What every page's frame shows: its language, who is signed in, and the
/// token the sign-out form carries.
pub struct Frame {
    pub lang: Lang,
    pub t: &'static Text,
    pub other: Lang,
    pub account: Option<String>,
    pub csrf: String,
    /// Whether the account is an admin, who may change the portal.
    pub admin: bool,
    /// This page's path and query, for the language switch and forms to
    /// come back to.
    pub here: String,
}

impl Frame {
    /// [`Frame::here`] encoded for a query parameter.
    pub fn back(&self) -> String {
        form_urlencoded::byte_serialize(self.here.as_bytes()).collect()
    }
}

impl Frame {
    fn of(session: &Session, here: String) -> Frame {
        Frame {
            lang: session.lang,
            t: session.lang.text(),
            other: session.lang.other(),
            account: Some(session.account.clone()),
            csrf: session.csrf.clone(),
            admin: session.role == crate::api::Role::Admin,
            here,
        }
    }
}

/// Renders a template as a page.
pub(super) fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal("rendering a page failed", e).into_response(),
    }
}

async fn home(session: Option<Session>) -> Redirect {
    match session {
        Some(_) => Redirect::to("/board"),
        None => Redirect::to("/login"),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Frame,
    csrf: String,
    name: String,
    error: Option<&'static str>,
}

/// The sign-in form, with a fresh CSRF token in it and in a cookie.
fn login_form(engine: &Engine, headers: &HeaderMap, name: String, error: Option<&'static str>) -> Response {
    let lang = session::lang(headers);
    let csrf = match session::random_token() {
        Ok(token) => token,
        Err(e) => return ApiError::internal("no random token for a form", e).into_response(),
    };
    let cookie = set_cookie(LOGIN_COOKIE, &csrf, "/login", 3_600, session::secure(engine));
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let frame = Frame {
        lang,
        t: lang.text(),
        other: lang.other(),
        account: None,
        csrf: String::new(),
        admin: false,
        here: "/login".into(),
    };
    let mut response = page(&LoginPage {
        frame,
        csrf,
        name,
        error,
    });
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn login_page(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Response {
    login_form(&engine, &headers, String::new(), None)
}

/// The fields of a URL-encoded form.
pub(super) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

async fn login(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let fields = form_fields(&body);
    let name = field(&fields, "name").trim().to_owned();
    let t = session::lang(&headers).text();
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(expected, field(&fields, "csrf")) {
        return Ok(login_form(&engine, &headers, name, Some(t.expired_form)));
    }
    let account = engine.store().account(&name).await?;
    let password = field(&fields, "password");
    let verified = match &account {
        Some(account) => session::verify_password(&account.password, password),
        // The same work for an unknown name, so timing does not tell
        // which names exist.
        None => {
            session::verify_password(dummy_hash(), password);
            false
        }
    };
    let Some(account) = account.filter(|_| verified) else {
        tracing::info!(name = %name, "a sign-in to the board failed");
        return Ok(login_form(&engine, &headers, name, Some(t.wrong_password)));
    };
    let id = session::random_token().map_err(|e| ApiError::internal("no random session id", e))?;
    let csrf = session::random_token().map_err(|e| ApiError::internal("no random CSRF token", e))?;
    let now = engine.now();
    let expires = Timestamp(now.0 + SESSION_HOURS * 3_600_000);
    engine
        .store()
        .add_session(&session::session_hash(&id), &account.name, &csrf, now, expires)
        .await?;
    tracing::info!(account = %account.name, "signed in to the board");
    let secure = session::secure(&engine);
    let mut response = Redirect::to("/board").into_response();
    for cookie in [
        set_cookie(SESSION_COOKIE, &id, "/", SESSION_HOURS * 3_600, secure),
        set_cookie(LOGIN_COOKIE, "", "/login", 0, secure),
    ] {
        let value = HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal("a cookie", e))?;
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// A hash no password matches, verified against for unknown names.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| session::hash_password("no account has this password").unwrap_or_default())
}

async fn logout(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Result<Response, ApiError> {
    let fields = form_fields(&body);
    if !same_token(&session.csrf, field(&fields, "csrf")) {
        return Ok(csrf_refused(session.lang));
    }
    engine.store().end_session(&session.id_hash, engine.now()).await?;
    let mut response = Redirect::to("/login").into_response();
    let cookie = set_cookie(SESSION_COOKIE, "", "/", 0, session::secure(&engine));
    let value = HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal("a cookie", e))?;
    response.headers_mut().append(header::SET_COOKIE, value);
    Ok(response)
}

/// No such page, in the session's language.
pub(super) fn not_found(session: &Session) -> Response {
    (StatusCode::NOT_FOUND, session.lang.text().not_found).into_response()
}

/// A form posted without its session's CSRF token: nothing is done.
pub(super) fn csrf_refused(lang: Lang) -> Response {
    (StatusCode::FORBIDDEN, lang.text().csrf_refused).into_response()
}

#[derive(serde::Deserialize)]
struct Back {
    back: Option<String>,
}

/// Sets the board's language and goes back to the page it was switched on
/// (a path of this host only: no open redirect).
async fn switch_lang(
    State(engine): State<Arc<Engine>>,
    Path(lang): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let Some(lang) = Lang::parse(&lang) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let back = back
        .back
        .filter(|path| path.starts_with('/') && !path.starts_with("//") && !path.contains('\\'))
        .unwrap_or_else(|| "/board".into());
    let mut response = Redirect::to(&back).into_response();
    let cookie = set_cookie(LANG_COOKIE, lang.code(), "/", 365 * 86_400, session::secure(&engine));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Template)]
#[template(path = "pipelines.html")]
struct PipelinesPage {
    frame: Frame,
    pipelines: Vec<(String, String, &'static str, usize)>,
    can_edit: bool,
}

async fn pipelines(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    let lang = session.lang;
    let pipelines = engine
        .pipelines()
        .iter()
        .map(|p| {
            let name = lang.pick(&p.names, &p.code).to_owned();
            (p.code.clone(), name, p.kind.as_str(), p.stages.len())
        })
        .collect();
    page(&PipelinesPage {
        frame: Frame::of(&session, "/board".into()),
        pipelines,
        can_edit: session.role == crate::api::Role::Admin,
    })
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    frame: Frame,
    board: BoardView,
    /// Test mode's entity as typed, and what the board says of it.
    entity: String,
    testing: Option<String>,
    /// Whether the session may change the board (admins).
    can_edit: bool,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct BoardQuery {
    entity: Option<String>,
}

async fn pipeline_board(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(code): Path<String>,
    Query(query): Query<BoardQuery>,
) -> Result<Response, ApiError> {
    let entity = query.entity.unwrap_or_default().trim().to_owned();
    board_page(&engine, &session, &code, entity, None).await
}

/// Pipeline `code`'s board; in test mode for `entity` when one is given;
/// with `problem` on top when an action on it was refused.
async fn board_page(
    engine: &Engine,
    session: &Session,
    code: &str,
    entity: String,
    problem: Option<String>,
) -> Result<Response, ApiError> {
    let t = session.lang.text();
    let Some(pipeline) = engine.pipelines().into_iter().find(|p| p.code == code) else {
        return Ok(not_found(session));
    };
    let refused = problem.is_some();
    let (mut testing, mut summary, mut error) = (None, None, problem);
    if !entity.is_empty() {
        match entity.parse::<crate::domain::EntityRef>() {
            Err(e) => error = Some(e.to_string()),
            Ok(r) => {
                let found = engine.store().entities_with_entry(&[r]).await?.remove(&r);
                match found {
                    Some((e, entry)) if e.pipeline.as_deref() == Some(code) => {
                        let stage = e.stage.clone().unwrap_or_default();
                        let runs = engine.store().runs(Some(r), 10_000).await?;
                        let runs = runs
                            .into_iter()
                            .filter(|run| Some(run.entry_id) == entry)
                            .map(|run| (run.robot_id, run))
                            .collect();
                        let name = pipeline
                            .stage(&stage)
                            .map_or(stage.clone(), |s| session.lang.pick(&s.names, &s.code).to_owned());
                        summary = Some(format!("{r} {} {name}", t.in_stage));
                        testing = Some(board::Testing { stage, runs });
                    }
                    Some(_) => error = Some(format!("{r} {}", t.not_in_pipeline)),
                    None => error = Some(format!("{r}: {}", t.not_found)),
                }
            }
        }
    }
    let board = board::board(engine, &pipeline, session.lang, testing.as_ref());
    let here = match entity.as_str() {
        "" => format!("/board/{code}"),
        entity => format!("/board/{code}?entity={entity}"),
    };
    let mut response = page(&BoardPage {
        frame: Frame::of(session, here),
        board,
        entity,
        testing: summary,
        can_edit: session.role == crate::api::Role::Admin,
        error,
    });
    if refused {
        *response.status_mut() = StatusCode::CONFLICT;
    }
    Ok(response)
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../web/board.js"),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../web/board.css"),
    )
}
