//! The run log as people read it: runs by id, by entity, filtered and
//! paged; and dead runs put back in the queue.

use super::{Backend, Result, Store, rows};
use crate::domain::{EntityRef, Run, RunStatus, Timestamp};

/// Which runs [`Store::runs_where`] lists: each field left empty selects all.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunFilter {
    pub entity: Option<EntityRef>,
    pub status: Option<RunStatus>,
    /// The robot binding's id.
    pub robot: Option<u64>,
    /// Only runs numbered below this (the next page, newest first).
    pub before: Option<u64>,
    /// Only runs numbered above this (the next page, oldest first).
    pub after: Option<u64>,
    pub newest_first: bool,
}

impl Store {
    pub async fn run(&self, id: u64) -> Result<Option<Run>> {
        let sql = format!("{} WHERE id = $1", rows::RUN_SELECT);
        let row: Option<rows::RunRow> =
            on!(&*self.db, c => sqlx::query_as(&sql).bind(id as i64).fetch_optional(c).await)?;
        row.map(rows::run).transpose()
    }

    /// The runs on `entity` (all runs, when none), oldest first.
    pub async fn runs(&self, entity: Option<EntityRef>, limit: u32) -> Result<Vec<Run>> {
        let filter = RunFilter {
            entity,
            ..RunFilter::default()
        };
        self.runs_where(&filter, limit).await
    }

    /// The runs `filter` selects, at most `limit`, oldest first or newest
    /// first; `before` pages newest first, `after` oldest first.
    pub async fn runs_where(&self, filter: &RunFilter, limit: u32) -> Result<Vec<Run>> {
        let (kind, id) = filter
            .entity
            .map(|e| (e.kind.as_str(), e.id as i64))
            .unwrap_or(("", -1));
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "{} WHERE ($1 = '' OR (kind = $1 AND entity_id = $2)) AND ($3 = '' OR status = $3) \
             AND ($4 < 0 OR robot_id = $4) AND id < $5 AND id > $6 ORDER BY id {order} LIMIT $7",
            rows::RUN_SELECT
        );
        let found: Vec<rows::RunRow> = on!(&*self.db, c => sqlx::query_as(&sql).bind(kind).bind(id)
            .bind(filter.status.map_or("", RunStatus::as_str))
            .bind(filter.robot.map_or(-1, |r| r as i64))
            .bind(filter.before.map_or(i64::MAX, |r| r as i64))
            .bind(filter.after.map_or(-1, |r| r as i64))
            .bind(limit as i64).fetch_all(c).await)?;
        found.into_iter().map(rows::run).collect()
    }

    /// Puts dead run `id` back in the queue, due `now` with its attempts
    /// anew; false when it is not dead (or does not exist).
    pub async fn requeue_dead(&self, id: u64, now: Timestamp) -> Result<bool> {
        let n = on!(&*self.writer, c => sqlx::query("UPDATE runs SET status = 'queued', due_at = $1, attempts = 0, \
            lease_owner = NULL, lease_until = NULL, finished_at = NULL, fence = fence + 1 WHERE id = $2 AND status = 'dead'")
            .bind(now.0).bind(id as i64).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
