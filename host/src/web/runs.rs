//! The run log for people: runs newest first, filtered by status and
//! entity and paged by id; a run's page with everything its report holds;
//! and, for admins, dead runs retried one or many at a time.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::session::{Session, same_token};
use super::{Frame, csrf_refused, field, form_fields, page};
use crate::api::{ApiError, Role};
use crate::domain::{EntityRef, Run, RunStatus, Timestamp};
use crate::engine::Engine;
use crate::storage::RunFilter;

/// Runs on one page of the log.
const PAGE: u32 = 50;

/// One run as a row of the log.
pub struct RunRow {
    pub id: u64,
    pub robot: String,
    pub entity: String,
    pub status: &'static str,
    /// When it came due.
    pub due: String,
    pub attempts: u32,
    /// Its outcome or why it did not run, in short.
    pub result: String,
}

impl RunRow {
    pub fn of(run: &Run) -> RunRow {
        RunRow {
            id: run.id,
            robot: robot_name(run),
            entity: run.entity.to_string(),
            status: run.status.as_str(),
            due: run.due_at.to_string(),
            attempts: run.attempts,
            result: result(run),
        }
    }
}

fn robot_name(run: &Run) -> String {
    match &run.report {
        Some(report) if !report.robot.title.is_empty() => report.robot.title.clone(),
        Some(report) => format!("{}/{}", report.robot.plugin, report.robot.code),
        None => format!("robot {}", run.robot_id),
    }
}

fn result(run: &Run) -> String {
    let Some(report) = &run.report else {
        return String::new();
    };
    if let Some(reason) = &report.reason {
        return serde_json::to_value(reason)
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_owned))
            .unwrap_or_default();
    }
    report.outcome.as_ref().map(|o| o.to_string()).unwrap_or_default()
}

#[derive(serde::Deserialize)]
pub struct LogQuery {
    status: Option<String>,
    entity: Option<String>,
    robot: Option<String>,
    plugin: Option<String>,
    /// Days, `2026-11-25`, in the portal's time zone.
    since: Option<String>,
    until: Option<String>,
    before: Option<u64>,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    frame: Frame,
    runs: Vec<RunRow>,
    entity: String,
    /// Each status, and whether the filter has it.
    statuses: Vec<(&'static str, bool)>,
    /// (id, name, chosen) of each robot placed.
    robots: Vec<(String, String, bool)>,
    /// (name, chosen) of each plugin with robots placed.
    plugins: Vec<(String, bool)>,
    since: String,
    until: String,
    /// The link to the next (older) page, when there may be one.
    older: Option<String>,
    can_retry: bool,
    error: Option<String>,
}

/// The start of `day` in `zone`.
pub(super) fn start_of(day: &str, zone: chrono_tz::Tz) -> Result<Timestamp, String> {
    use chrono::TimeZone as _;
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("`{day}` is not a date such as 2026-11-25"))?;
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let at = zone
        .from_local_datetime(&midnight)
        .earliest()
        .ok_or_else(|| format!("{day} has no midnight in {zone}"))?;
    Ok(Timestamp::from_datetime(at.with_timezone(&chrono::Utc)))
}

pub async fn log(State(engine): State<Arc<Engine>>, session: Session, Query(query): Query<LogQuery>) -> Response {
    let text = |value: Option<String>| value.unwrap_or_default().trim().to_owned();
    let (status, entity, robot, plugin) = (
        text(query.status),
        text(query.entity),
        text(query.robot),
        text(query.plugin),
    );
    let (since, until) = (text(query.since), text(query.until));
    let mut error = None;
    let mut filter = RunFilter {
        newest_first: true,
        before: query.before,
        ..RunFilter::default()
    };
    if !status.is_empty() {
        match status.parse::<RunStatus>() {
            Ok(s) => filter.status = Some(s),
            Err(e) => error = Some(e),
        }
    }
    if !entity.is_empty() {
        match entity.parse::<EntityRef>() {
            Ok(r) => filter.entity = Some(r),
            Err(e) => error = Some(e.to_string()),
        }
    }
    let placed = engine.all_robots();
    let mut nothing = false;
    if let Ok(id) = robot.parse::<u64>() {
        filter.robots.push(id);
    }
    if !plugin.is_empty() {
        let of_plugin: Vec<u64> = placed.iter().filter(|r| r.plugin == plugin).map(|r| r.id).collect();
        filter.robots = match filter.robots.is_empty() {
            true => of_plugin,
            false => filter.robots.into_iter().filter(|r| of_plugin.contains(r)).collect(),
        };
        nothing = filter.robots.is_empty();
    }
    let zone = engine.time_zone();
    for (day, bound, next_day) in [(&since, &mut filter.since, false), (&until, &mut filter.until, true)] {
        if day.is_empty() {
            continue;
        }
        match start_of(day, zone) {
            // Until a day means to its end: the next day's start.
            Ok(at) if next_day => *bound = Some(Timestamp(at.0 + 86_400_000)),
            Ok(at) => *bound = Some(at),
            Err(e) => error = Some(e),
        }
    }
    let runs = match (&error, nothing) {
        (Some(_), _) | (_, true) => Vec::new(),
        _ => match engine.store().runs_where(&filter, PAGE).await {
            Ok(runs) => runs,
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("status", &status),
            ("entity", &entity),
            ("robot", &robot),
            ("plugin", &plugin),
            ("since", &since),
            ("until", &until),
        ])
        .finish();
    let older = (runs.len() == PAGE as usize).then(|| {
        let last = runs.last().map_or(0, |r| r.id);
        format!("/runs?{query}&before={last}")
    });
    let robots = placed
        .iter()
        .map(|r| {
            let name = match r.title.as_str() {
                "" => format!("{}/{}", r.plugin, r.robot),
                title => title.to_owned(),
            };
            let id = r.id.to_string();
            let chosen = id == robot;
            (id, format!("{name} ({} · {})", r.pipeline, r.stage), chosen)
        })
        .collect();
    let mut plugins: Vec<String> = placed.iter().map(|r| r.plugin.clone()).collect();
    plugins.sort();
    plugins.dedup();
    page(&RunsPage {
        frame: Frame::of(&session, format!("/runs?{query}")),
        runs: runs.iter().map(RunRow::of).collect(),
        statuses: RunStatus::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str() == status))
            .collect(),
        robots,
        plugins: plugins.into_iter().map(|p| (p.clone(), p == plugin)).collect(),
        since,
        until,
        entity,
        older,
        can_retry: session.role == Role::Admin,
        error,
    })
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    frame: Frame,
    row: RunRow,
    cause: String,
    blame: String,
    plugin: String,
    fuel: u64,
    duration_ms: String,
    sections: Vec<(&'static str, String)>,
    logs: Vec<(String, String)>,
    dead: bool,
    can_retry: bool,
}

pub async fn run_page(State(engine): State<Arc<Engine>>, session: Session, Path(id): Path<u64>) -> Response {
    let run = match engine.store().run(id).await {
        Ok(Some(run)) => run,
        Ok(None) => return super::not_found(&session),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let json = |value: serde_json::Value| serde_json::to_string_pretty(&value).unwrap_or_default();
    let report = run.report.clone();
    let mut sections = Vec::new();
    let (mut blame, mut plugin, mut fuel, mut duration_ms, mut logs) =
        (String::new(), String::new(), 0, String::new(), Vec::new());
    if let Some(report) = &report {
        blame = report
            .blame
            .map(|b| json(serde_json::json!(b)).trim_matches('"').to_owned())
            .unwrap_or_default();
        plugin = match (&report.plugin, &report.version) {
            (Some(digest), Some(version)) => {
                format!("{}/{} {version} ({digest})", report.robot.plugin, report.robot.code)
            }
            (Some(digest), None) => format!("{}/{} ({digest})", report.robot.plugin, report.robot.code),
            _ => format!("{}/{}", report.robot.plugin, report.robot.code),
        };
        fuel = report.fuel_used;
        duration_ms = format!("{:.1}", report.duration_us as f64 / 1000.0);
        let t = session.lang.text();
        for (name, value) in [
            (t.properties, serde_json::to_value(&report.properties)),
            (t.effects, serde_json::to_value(&report.effects)),
            (t.returns, serde_json::to_value(&report.returns)),
            (t.denials, serde_json::to_value(&report.denials)),
        ] {
            let value = value.unwrap_or_default();
            let empty =
                value.as_object().is_some_and(|o| o.is_empty()) || value.as_array().is_some_and(|a| a.is_empty());
            if !empty {
                sections.push((name, json(value)));
            }
        }
        logs = report
            .logs
            .iter()
            .map(|line| {
                let level = serde_json::to_value(line.level)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
                (level.unwrap_or_default(), line.message.clone())
            })
            .collect();
    }
    page(&RunPage {
        frame: Frame::of(&session, format!("/runs/{id}")),
        row: RunRow::of(&run),
        cause: json(serde_json::to_value(&run.cause).unwrap_or_default()),
        blame,
        plugin,
        fuel,
        duration_ms,
        sections,
        logs,
        dead: run.status == RunStatus::Dead,
        can_retry: session.role == Role::Admin,
    })
}

/// Retries the dead runs a form names (`id`, once per run), as `POST
/// /api/runs/retry` does; admins only, with the session's CSRF token.
pub async fn retry(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if !same_token(&session.csrf, field(&fields, "csrf")) {
        return csrf_refused(session.lang);
    }
    if session.role != Role::Admin {
        return (StatusCode::FORBIDDEN, session.lang.text().admins_only).into_response();
    }
    let ids: Vec<u64> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    if !ids.is_empty()
        && let Err(e) = engine.retry_dead(&ids).await
    {
        return ApiError::from(e).into_response();
    }
    let back = match field(&fields, "back") {
        path if path.starts_with('/') && !path.starts_with("//") => path.to_owned(),
        _ => "/runs".to_owned(),
    };
    Redirect::to(&back).into_response()
}
