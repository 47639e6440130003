//! Bulk jobs on the board: a reassignment file uploaded and planned (what
//! it will do, and each line it cannot apply with why), then started or
//! cancelled by an admin, and watched by anyone until it ends.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::entities::local;
use super::forms::{admin_form, admin_only};
use super::session::{Session, same_token};
use super::{Frame, csrf_refused, form_fields, not_found, page};
use crate::api::ApiError;
use crate::domain::{EntityKind, Job, JobRow, JobStatus, ReassignSpec, RowStatus};
use crate::engine::{Engine, EngineError};

/// A job as a line of the list and the head of its page.
pub struct JobLine {
    pub id: u64,
    pub status: &'static str,
    pub created: String,
    pub applied: u64,
    pub failed: u64,
    pub pending: u64,
    pub done: u64,
    pub total: u64,
    pub percent: f64,
    /// "3 company, 1 deal".
    pub rows: String,
    /// "2 deal, 1 activity" at most.
    pub cascade: String,
    pub unusable: u64,
    pub cascaded: String,
}

impl JobLine {
    fn of(job: &Job, zone: chrono_tz::Tz) -> JobLine {
        let counts = |map: &std::collections::BTreeMap<EntityKind, u64>| {
            let items: Vec<String> = map.iter().map(|(k, n)| format!("{n} {}", k.as_str())).collect();
            if items.is_empty() {
                "—".to_owned()
            } else {
                items.join(", ")
            }
        };
        let p = &job.progress;
        JobLine {
            id: job.id,
            status: job.status.as_str(),
            created: local(job.created_at, zone),
            applied: p.applied,
            failed: p.failed,
            pending: p.pending,
            done: p.done(),
            total: p.total,
            percent: p.percent,
            rows: counts(&job.plan.rows),
            cascade: counts(&job.plan.cascade_at_most),
            unusable: job.plan.unusable,
            cascaded: format!("{} deal, {} activity, {} task", p.deals, p.activities, p.tasks),
        }
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    frame: Frame,
    jobs: Vec<JobLine>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    frame: Frame,
    job: JobLine,
    planned: bool,
    running: bool,
    failed: Vec<JobRow>,
}

async fn list(engine: &Engine, session: &Session, error: Option<String>) -> Response {
    let jobs = match engine.store().jobs(50).await {
        Ok(jobs) => jobs,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let zone = engine.time_zone();
    let refused = error.is_some();
    let mut response = page(&JobsPage {
        frame: Frame::of(session, "/jobs".into()),
        jobs: jobs.iter().map(|j| JobLine::of(j, zone)).collect(),
        error,
    });
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn jobs(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    list(&engine, &session, None).await
}

pub async fn job(State(engine): State<Arc<Engine>>, session: Session, Path(id): Path<u64>) -> Response {
    let job = match engine.job(id).await {
        Ok(job) => job,
        Err(EngineError::NotFound { .. }) => return not_found(&session),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let failed = match engine.store().job_rows(id, Some(RowStatus::Failed), 0, 200).await {
        Ok(rows) => rows,
        Err(e) => return ApiError::from(e).into_response(),
    };
    page(&JobPage {
        frame: Frame::of(&session, format!("/jobs/{id}")),
        planned: job.status == JobStatus::Planned,
        running: job.status == JobStatus::Running,
        job: JobLine::of(&job, engine.time_zone()),
        failed,
    })
}

/// Plans a reassignment from an uploaded CSV file and shows its plan.
pub async fn plan(State(engine): State<Arc<Engine>>, session: Session, mut form: Multipart) -> Response {
    let t = session.lang.text();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut file = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return list(&engine, &session, Some(t.upload_broken.into())).await;
                };
                if name == "file" {
                    file = Some(bytes);
                } else {
                    fields.push((name, String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
            Ok(None) => break,
            Err(e) => return list(&engine, &session, Some(format!("{}: {e}", t.upload_broken))).await,
        }
    }
    let value = |name: &str| fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
    if !same_token(&session.csrf, value("csrf")) {
        return csrf_refused(session.lang);
    }
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    let file = match file.filter(|b| !b.is_empty()).map(|b| String::from_utf8(b.to_vec())) {
        None => return list(&engine, &session, Some(t.choose_file.into())).await,
        Some(Err(_)) => return list(&engine, &session, Some(t.not_utf8.into())).await,
        Some(Ok(file)) => file,
    };
    let number = |name: &str, default: u64| value(name).trim().parse().unwrap_or(default);
    let defaults = ReassignSpec::default();
    let spec = ReassignSpec {
        kind: value("kind").parse().ok(),
        deals: value("deals") == "on",
        activities: value("activities") == "on",
        tasks: value("tasks") == "on",
        batch: number("batch", defaults.batch.into()).min(u64::from(u32::MAX)) as u32,
        pause_ms: number("pause_ms", defaults.pause_ms),
    };
    match engine.plan_reassignment(&file, spec, None).await {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
        Err(e) => list(&engine, &session, Some(e.to_string())).await,
    }
}

pub async fn start(State(engine): State<Arc<Engine>>, session: Session, Path(id): Path<u64>, body: Bytes) -> Response {
    steer(&engine, &session, id, &body, true).await
}

pub async fn cancel(State(engine): State<Arc<Engine>>, session: Session, Path(id): Path<u64>, body: Bytes) -> Response {
    steer(&engine, &session, id, &body, false).await
}

async fn steer(engine: &Engine, session: &Session, id: u64, body: &[u8], start: bool) -> Response {
    if let Some(refused) = admin_form(session, &form_fields(body)) {
        return refused;
    }
    let done = if start {
        engine.start_job(id).await
    } else {
        engine.cancel_job(id).await
    };
    match done {
        Ok(_) | Err(EngineError::InUse(_)) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        Err(EngineError::NotFound { .. }) => not_found(session),
        Err(e) => ApiError::from(e).into_response(),
    }
}
