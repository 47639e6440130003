//! The run log as people read it: runs by id, by entity, filtered and
//! paged; and dead runs put back in the queue.

use super::{Backend, Result, Store, rows};
use crate::domain::{EntityRef, Run, RunStatus, Timestamp};

/// Which runs [`Store::runs_where`] lists: each field left empty selects all.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub entity: Option<EntityRef>,
    pub status: Option<RunStatus>,
    /// Runs of these robot bindings only; of any when empty.
    pub robots: Vec<u64>,
    /// Runs created at or after this moment only.
    pub since: Option<Timestamp>,
    /// Runs created before this moment only.
    pub until: Option<Timestamp>,
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
        // Only the filters given are in the query, so each finds its index
        // (`runs_entry`, `runs_status_id`, `runs_robot`).
        let mut conditions = vec!["id < $1".to_owned(), "id > $2".to_owned()];
        let mut texts: Vec<&str> = Vec::new();
        let mut numbers = vec![
            filter.before.map_or(i64::MAX, |r| r as i64),
            filter.after.map_or(-1, |r| r as i64),
        ];
        if let Some(entity) = filter.entity {
            texts.push(entity.kind.as_str());
            numbers.push(entity.id as i64);
        }
        if let Some(status) = filter.status {
            texts.push(status.as_str());
        }
        numbers.extend(filter.robots.iter().map(|&r| r as i64));
        numbers.extend(filter.since.map(|t| t.0));
        numbers.extend(filter.until.map(|t| t.0));
        // Numbers first ($1...), then texts, then the limit.
        let n = numbers.len();
        let mut next_number = 3;
        let mut next_text = n + 1;
        if filter.entity.is_some() {
            conditions.push(format!("kind = ${next_text} AND entity_id = ${next_number}"));
            (next_text, next_number) = (next_text + 1, next_number + 1);
        }
        if filter.status.is_some() {
            conditions.push(format!("status = ${next_text}"));
            next_text += 1;
        }
        if !filter.robots.is_empty() {
            let list: Vec<String> = (next_number..next_number + filter.robots.len())
                .map(|i| format!("${i}"))
                .collect();
            conditions.push(format!("robot_id IN ({})", list.join(", ")));
            next_number += filter.robots.len();
        }
        if filter.since.is_some() {
            conditions.push(format!("created_at >= ${next_number}"));
            next_number += 1;
        }
        if filter.until.is_some() {
            conditions.push(format!("created_at < ${next_number}"));
        }
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "{} WHERE {} ORDER BY id {order} LIMIT ${next_text}",
            rows::RUN_SELECT,
            conditions.join(" AND ")
        );
        let found: Vec<rows::RunRow> = on!(&*self.db, c => {
            let mut query = sqlx::query_as(&sql);
            for number in &numbers {
                query = query.bind(*number);
            }
            for text in &texts {
                query = query.bind(*text);
            }
            query.bind(limit as i64).fetch_all(c).await
        })?;
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

    /// Writes `count` finished runs of robot `robot` on deals 1..=`deals`,
    /// one in `dead_every` dead and the rest succeeded, as one statement:
    /// a log as long as a busy portal's, for benchmarks.
    #[cfg(feature = "test-support")]
    pub async fn insert_finished_runs(&self, count: u64, robot: u64, deals: u64, dead_every: u64) -> Result<()> {
        let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
            INSERT INTO runs (entry_id, robot_id, kind, entity_id, status, cause, due_at, attempts, created_at, finished_at) \
            SELECT 1, $2, 'deal', 1 + i % $3, CASE WHEN i % $4 = 0 THEN 'dead' ELSE 'succeeded' END, \
            '{\"cause\":\"manual\",\"user\":1}', i, 1, i, i FROM n";
        on!(&*self.writer, c => sqlx::query(sql).bind(count as i64).bind(robot as i64).bind(deals as i64)
            .bind(dead_every as i64).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
