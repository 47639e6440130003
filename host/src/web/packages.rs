//! Plugin packages for admins: those installed, with their publisher,
//! signature and approved permissions; an upload that first shows what the
//! package asks for (and, for an upgrade, what it adds and drops) and
//! installs only once the admin approves; rollback; and removal, with the
//! robots it would disable listed first.
//!
//! The approval form carries the archive back (base64) rather than keeping
//! it on this host between the two requests: with several hosts on one
//! database, the approval may reach another host. Installing checks the
//! archive whole again, signature included.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::forms::{admin_form, admin_only, value};
use super::session::{Session, same_token};
use super::text::Lang;
use super::{Frame, csrf_refused, form_fields, page};
use crate::api::ApiError;
use crate::domain::{Capability, Permission, RobotBinding};
use crate::engine::{Engine, PackagePreview};

/// One installed package, as listed.
pub struct PackageRow {
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub signed: bool,
    pub approved: Vec<String>,
    /// Whether an earlier version is kept to roll back to.
    pub has_previous: bool,
}

#[derive(Template)]
#[template(path = "packages.html")]
struct PackagesPage {
    frame: Frame,
    packages: Vec<PackageRow>,
    publishers: Vec<String>,
    allow_unsigned: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// The packages page, with what an action did or why it was refused.
async fn list(engine: &Engine, session: &Session, notice: Option<String>, error: Option<String>) -> Response {
    let (packages, trust) = match (engine.store().packages().await, engine.trust().await) {
        (Ok(packages), Ok(trust)) => (packages, trust),
        (Err(e), _) => return ApiError::from(e).into_response(),
        (_, Err(e)) => return ApiError::from(e).into_response(),
    };
    let mut rows = Vec::new();
    for p in packages {
        let has_previous = match engine.store().previous_package(&p.name).await {
            Ok(previous) => previous.is_some(),
            Err(e) => return ApiError::from(e).into_response(),
        };
        rows.push(PackageRow {
            approved: p.approved.iter().map(Permission::to_string).collect(),
            name: p.name,
            version: p.version,
            publisher: p.publisher,
            signed: p.signed,
            has_previous,
        });
    }
    let refused = error.is_some();
    let mut response = page(&PackagesPage {
        frame: Frame::of(session, "/packages".into()),
        packages: rows,
        publishers: trust.publishers.keys().cloned().collect(),
        allow_unsigned: trust.allow_unsigned,
        notice,
        error,
    });
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn packages(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    list(&engine, &session, None, None).await
}

/// A permission, with what it lets a robot do.
pub struct PermissionLine {
    pub code: String,
    pub words: String,
    /// New against the version installed.
    pub added: bool,
}

#[derive(Template)]
#[template(path = "package.html")]
struct PreviewPage {
    frame: Frame,
    preview: PackagePreview,
    permissions: Vec<PermissionLine>,
    dropped: Vec<PermissionLine>,
    plugins: Vec<(String, &'static str, String)>,
    archive: String,
    approve: String,
}

/// An uploaded package: what it asks for, and the form to approve it.
pub async fn upload(State(engine): State<Arc<Engine>>, session: Session, mut form: Multipart) -> Response {
    let t = session.lang.text();
    let (mut csrf, mut archive) = (String::new(), Vec::new());
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return list(&engine, &session, None, Some(t.upload_broken.into())).await;
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "archive" => archive = bytes.to_vec(),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return list(&engine, &session, None, Some(format!("{}: {e}", t.upload_broken))).await,
        }
    }
    if !same_token(&session.csrf, &csrf) {
        return csrf_refused(session.lang);
    }
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    if archive.is_empty() {
        return list(&engine, &session, None, Some(t.choose_file.into())).await;
    }
    let preview = match engine.preview_package(&archive).await {
        Ok(preview) => preview,
        Err(e) => return list(&engine, &session, None, Some(e.to_string())).await,
    };
    let lang = session.lang;
    let line = |p: &Permission| PermissionLine {
        code: p.to_string(),
        words: permission_words(p, lang),
        added: preview.previous.is_some() && preview.added.contains(p),
    };
    let permissions = preview.requested.iter().map(line).collect();
    let dropped = preview.removed.iter().map(line).collect();
    let plugins = preview
        .plugins
        .iter()
        .map(|(name, world, codes)| (name.clone(), world.as_str(), codes.join(", ")))
        .collect();
    let approve = preview
        .requested
        .iter()
        .map(Permission::to_string)
        .collect::<Vec<_>>()
        .join(",");
    page(&PreviewPage {
        frame: Frame::of(&session, "/packages".into()),
        permissions,
        dropped,
        plugins,
        archive: BASE64.encode(&archive),
        approve,
        preview,
    })
}

/// Installs an approved package: the permissions the admin saw and
/// approved are all it may be granted.
pub async fn install(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let t = session.lang.text();
    let Ok(archive) = BASE64.decode(value(&fields, "archive")) else {
        return list(&engine, &session, None, Some(t.upload_broken.into())).await;
    };
    let approved: Result<Vec<Permission>, _> = value(&fields, "approve")
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect();
    let Ok(approved) = approved else {
        return list(&engine, &session, None, Some(t.upload_broken.into())).await;
    };
    // Compiling components takes seconds of CPU: off the runtime's threads.
    let handle = tokio::runtime::Handle::current();
    let installer = engine.clone();
    let installed =
        tokio::task::spawn_blocking(move || handle.block_on(installer.install_package_trusted(&archive, &approved)))
            .await;
    match installed {
        Ok(Ok(report)) => {
            let mut notice = format!("{} {} {}", t.installed, report.name, report.version);
            for warning in &report.warnings {
                notice.push_str("; ");
                notice.push_str(warning);
            }
            list(&engine, &session, Some(notice), None).await
        }
        Ok(Err(e)) => list(&engine, &session, None, Some(e.to_string())).await,
        Err(e) => ApiError::internal("installing a package panicked", e).into_response(),
    }
}

pub async fn rollback(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let t = session.lang.text();
    match engine.rollback_package(&name).await {
        Ok(report) => {
            let notice = format!("{} {} {}", t.rolled_back, report.name, report.version);
            list(&engine, &session, Some(notice), None).await
        }
        Err(e) => list(&engine, &session, None, Some(e.to_string())).await,
    }
}

#[derive(Template)]
#[template(path = "package_remove.html")]
struct RemovePage {
    frame: Frame,
    name: String,
    /// (board link, robot title, where it stands).
    robots: Vec<(String, String, String)>,
}

/// What removing a package would disable, and the button that does it.
pub async fn confirm_remove(State(engine): State<Arc<Engine>>, session: Session, Path(name): Path<String>) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let users = match engine.package_users(&name).await {
        Ok(users) => users,
        Err(e) => return list(&engine, &session, None, Some(e.to_string())).await,
    };
    page(&RemovePage {
        frame: Frame::of(&session, format!("/packages/{name}/remove")),
        robots: users.iter().map(|r| robot_line(&engine, r, session.lang)).collect(),
        name,
    })
}

fn robot_line(engine: &Engine, robot: &RobotBinding, lang: Lang) -> (String, String, String) {
    let title = match robot.title.as_str() {
        "" => format!("{}/{}", robot.plugin, robot.robot),
        title => title.to_owned(),
    };
    let place = engine
        .pipelines()
        .into_iter()
        .find(|p| p.code == robot.pipeline)
        .map_or(format!("{} · {}", robot.pipeline, robot.stage), |p| {
            let stage = p
                .stage(&robot.stage)
                .map_or(robot.stage.as_str(), |s| lang.pick(&s.names, &s.code));
            format!("{} · {stage}", lang.pick(&p.names, &p.code))
        });
    (format!("/board/{}/robots/{}", robot.pipeline, robot.id), title, place)
}

/// Removes a package the admin confirmed, disabling the robots the
/// confirmation listed.
pub async fn remove(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let t = session.lang.text();
    match engine.remove_package(&name, true).await {
        Ok(disabled) => {
            let notice = format!("{} {name}; {}: {}", t.removed, t.robots_disabled, disabled.len());
            list(&engine, &session, Some(notice), None).await
        }
        Err(e) => list(&engine, &session, None, Some(e.to_string())).await,
    }
}

/// What a permission lets a package's robots do, in words.
pub fn permission_words(permission: &Permission, lang: Lang) -> String {
    let ru = lang == Lang::Ru;
    let kind = |k: &Option<crate::domain::EntityKind>| match k {
        Some(k) => k.as_str().to_owned(),
        None if ru => "всех типов".to_owned(),
        None => "of every kind".to_owned(),
    };
    match permission {
        Permission::Host(c) => capability_words(*c, ru).to_owned(),
        Permission::Read(k) if ru => format!("читать элементы: {}", kind(k)),
        Permission::Read(k) => format!("read entities: {}", kind(k)),
        Permission::Write(k) if ru => format!("изменять элементы: {}", kind(k)),
        Permission::Write(k) => format!("change entities: {}", kind(k)),
        Permission::Field(f) if ru => format!("менять поле {f}"),
        Permission::Field(f) => format!("set field {f}"),
        Permission::Http(target) if ru => format!("отправлять HTTP-запросы на {target}"),
        Permission::Http(target) => format!("send HTTP requests to {target}"),
    }
}

fn capability_words(capability: Capability, ru: bool) -> &'static str {
    match (capability, ru) {
        (Capability::CrmRead, false) => "read CRM data",
        (Capability::CrmRead, true) => "читать данные CRM",
        (Capability::SetFields, false) => "change fields of entities",
        (Capability::SetFields, true) => "менять поля элементов",
        (Capability::MoveStage, false) => "move entities to other stages",
        (Capability::MoveStage, true) => "переводить элементы на другие стадии",
        (Capability::ChangeResponsible, false) => "change who is responsible",
        (Capability::ChangeResponsible, true) => "менять ответственного",
        (Capability::CreateEntity, false) => "create entities (tasks, deals, contacts...)",
        (Capability::CreateEntity, true) => "создавать элементы (задачи, сделки, контакты...)",
        (Capability::AddComment, false) => "add comments to the timeline",
        (Capability::AddComment, true) => "добавлять комментарии в ленту",
        (Capability::Notify, false) => "send employees notifications",
        (Capability::Notify, true) => "отправлять уведомления сотрудникам",
        (Capability::SendMessage, false) => "send clients emails, SMS and messages",
        (Capability::SendMessage, true) => "отправлять клиентам письма, SMS и сообщения",
        (Capability::KvStore, false) => "keep its own data between runs",
        (Capability::KvStore, true) => "хранить свои данные между запусками",
        (Capability::Calendar, false) => "read the working-time calendar",
        (Capability::Calendar, true) => "читать календарь рабочего времени",
    }
}
