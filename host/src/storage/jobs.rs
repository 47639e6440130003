//! Bulk jobs and their rows: planned, leased by one process at a time,
//! applied row by row in the same transactions as their changes.

use sqlx::QueryBuilder;

use super::{Backend, Result, Store, StoreError, Tx, from_json, rows, to_json};
use crate::domain::{
    Author, EntityKind, EntityRef, Job, JobRow, JobStatus, Plan, Progress, ReassignSpec, RowStatus, Timestamp, UserId,
};

/// A row to store: its line, and the entity and user it names or why not.
pub type NewRow = (u64, Result<(EntityRef, UserId), String>);

type JobTuple = (
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);
type RowTuple = (
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    i64,
    i64,
    i64,
);

const JOB_SELECT: &str = "SELECT id, status, spec, plan, author, created_at, started_at, finished_at FROM jobs";
const ROW_SELECT: &str =
    "SELECT line, kind, entity_id, user_id, status, error, deals, activities, tasks FROM job_rows WHERE job_id = $1";

fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.into(),
    }
}

fn job_of(row: JobTuple, progress: Progress) -> Result<Job> {
    let (id, status, spec, plan, author, created_at, started_at, finished_at) = row;
    Ok(Job {
        id: id as u64,
        status: JobStatus::parse(&status).ok_or_else(|| corrupt("job status", status))?,
        spec: from_json("job spec", &spec)?,
        plan: from_json("job plan", &plan)?,
        author: author.map(|a| from_json("job author", &a)).transpose()?,
        progress,
        created_at: Timestamp(created_at),
        started_at: started_at.map(Timestamp),
        finished_at: finished_at.map(Timestamp),
    })
}

fn row_of(row: RowTuple) -> Result<JobRow> {
    let (line, kind, id, user, status, error, deals, activities, tasks) = row;
    let entity = match (kind, id) {
        (Some(kind), Some(id)) => Some(EntityRef {
            kind: rows::kind(&kind)?,
            id: id as u64,
        }),
        _ => None,
    };
    Ok(JobRow {
        line: line as u64,
        entity,
        user: user.map(|u| u as u64),
        status: RowStatus::parse(&status).ok_or_else(|| corrupt("job row status", status))?,
        error,
        deals: deals as u64,
        activities: activities as u64,
        tasks: tasks as u64,
    })
}

impl Store {
    pub async fn job(&self, id: u64) -> Result<Option<Job>> {
        let sql = format!("{JOB_SELECT} WHERE id = $1");
        let row: Option<JobTuple> = on!(&*self.db, c => sqlx::query_as(&sql).bind(id as i64).fetch_optional(c).await)?;
        match row {
            Some(row) => Ok(Some(job_of(row, self.progress(id).await?)?)),
            None => Ok(None),
        }
    }

    /// The newest jobs first.
    pub async fn jobs(&self, limit: u32) -> Result<Vec<Job>> {
        let sql = format!("{JOB_SELECT} ORDER BY id DESC LIMIT $1");
        let found: Vec<JobTuple> = on!(&*self.db, c => sqlx::query_as(&sql).bind(i64::from(limit)).fetch_all(c).await)?;
        let mut jobs = Vec::new();
        for row in found {
            let progress = self.progress(row.0 as u64).await?;
            jobs.push(job_of(row, progress)?);
        }
        Ok(jobs)
    }

    /// A job's rows after line `after`, of one status when given.
    pub async fn job_rows(&self, job: u64, status: Option<RowStatus>, after: u64, limit: u32) -> Result<Vec<JobRow>> {
        let sql = format!("{ROW_SELECT} AND ($2 = '' OR status = $2) AND line > $3 ORDER BY line LIMIT $4");
        let found: Vec<RowTuple> = on!(&*self.db, c => sqlx::query_as(&sql)
            .bind(job as i64).bind(status.map_or("", RowStatus::as_str)).bind(after as i64).bind(i64::from(limit))
            .fetch_all(c).await)?;
        found.into_iter().map(row_of).collect()
    }

    async fn progress(&self, job: u64) -> Result<Progress> {
        let counts: Vec<(String, i64, i64, i64, i64)> = on!(&*self.db, c => sqlx::query_as(
            "SELECT status, COUNT(*), CAST(COALESCE(SUM(deals), 0) AS BIGINT), CAST(COALESCE(SUM(activities), 0) AS BIGINT), \
             CAST(COALESCE(SUM(tasks), 0) AS BIGINT) FROM job_rows WHERE job_id = $1 GROUP BY status")
            .bind(job as i64).fetch_all(c).await)?;
        let mut p = Progress::default();
        for (status, n, deals, activities, tasks) in counts {
            let n = n as u64;
            p.total += n;
            match RowStatus::parse(&status) {
                Some(RowStatus::Pending) => p.pending += n,
                Some(RowStatus::Applied) => p.applied += n,
                Some(RowStatus::Failed) => p.failed += n,
                None => return Err(corrupt("job row status", status)),
            }
            (p.deals, p.activities, p.tasks) = (
                p.deals + deals as u64,
                p.activities + activities as u64,
                p.tasks + tasks as u64,
            );
        }
        if p.total > 0 {
            p.percent = (p.done() as f64 * 1000.0 / p.total as f64).floor() / 10.0;
        }
        Ok(p)
    }

    /// What a planned job's pending rows would change: rows by kind, and
    /// the linked deals, activities and tasks (and those of the deals) that
    /// have the same responsible as the row's entity.
    pub async fn plan_counts(&self, job: u64, cascades: &[EntityKind]) -> Result<Plan> {
        let by_kind: Vec<(String, i64)> = on!(&*self.db, c => sqlx::query_as(
            "SELECT kind, COUNT(*) FROM job_rows WHERE job_id = $1 AND status = 'pending' GROUP BY kind")
            .bind(job as i64).fetch_all(c).await)?;
        let unusable: i64 = on!(&*self.db, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_rows WHERE job_id = $1 AND status = 'failed'")
            .bind(job as i64).fetch_one(c).await)?;
        let mut plan = Plan {
            unusable: unusable as u64,
            ..Plan::default()
        };
        for (kind, n) in by_kind {
            plan.rows.insert(rows::kind(&kind)?, n as u64);
        }
        // The rows' entities, then their deals, each materialized first so
        // that every join after is a lookup by key (SQLite would otherwise
        // start from all of a kind's links and scan for each).
        let same = |a: &str, b: &str| {
            format!("({a}.responsible = {b}.responsible OR ({a}.responsible IS NULL AND {b}.responsible IS NULL))")
        };
        let rows = "rows AS MATERIALIZED (SELECT r.kind, r.entity_id AS id, e.responsible FROM job_rows r \
             JOIN entities e ON e.kind = r.kind AND e.id = r.entity_id WHERE r.job_id = $1 AND r.status = 'pending')";
        let direct = format!(
            "WITH {rows} SELECT l.other_kind, COUNT(*) FROM rows \
             JOIN links l ON l.kind = rows.kind AND l.id = rows.id \
             JOIN entities o ON o.kind = l.other_kind AND o.id = l.other_id WHERE {} GROUP BY l.other_kind",
            same("o", "rows")
        );
        let through_deals = format!(
            "WITH {rows}, deals AS MATERIALIZED (SELECT d.id, d.responsible FROM rows \
             JOIN links l ON l.kind = rows.kind AND l.id = rows.id \
             JOIN entities d ON d.kind = l.other_kind AND d.id = l.other_id \
             WHERE l.other_kind = 'deal' AND rows.kind <> 'deal' AND {}) \
             SELECT l2.other_kind, COUNT(*) FROM deals JOIN links l2 ON l2.kind = 'deal' AND l2.id = deals.id \
             JOIN entities o ON o.kind = l2.other_kind AND o.id = l2.other_id WHERE {} GROUP BY l2.other_kind",
            same("d", "rows"),
            same("o", "deals")
        );
        for sql in [direct, through_deals] {
            let counts: Vec<(String, i64)> =
                on!(&*self.db, c => sqlx::query_as(&sql).bind(job as i64).fetch_all(c).await)?;
            for (kind, n) in counts {
                let kind = rows::kind(&kind)?;
                if cascades.contains(&kind) {
                    *plan.cascade_at_most.entry(kind).or_default() += n as u64;
                }
            }
        }
        Ok(plan)
    }

    /// Takes a running job (job `only`, when given) that no live process
    /// holds, for `owner` until `until`: its id and spec.
    pub async fn lease_job(
        &self,
        owner: &str,
        only: Option<u64>,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<(u64, ReassignSpec)>> {
        let free = "status = 'running' AND (lease_until IS NULL OR lease_until < $3) AND ($4 = 0 OR id = $4)";
        let sql = format!(
            "UPDATE jobs SET lease_owner = $1, lease_until = $2 WHERE id = (SELECT id FROM jobs WHERE {free} \
             ORDER BY id LIMIT 1) AND {free} RETURNING id, spec"
        );
        let only = only.map_or(0, |id| id as i64);
        let found: Option<(i64, String)> = on!(&*self.db, c => sqlx::query_as(&sql)
            .bind(owner).bind(until.0).bind(now.0).bind(only).fetch_optional(c).await)?;
        found
            .map(|(id, spec)| Ok((id as u64, from_json("job spec", &spec)?)))
            .transpose()
    }
}

impl Store {
    /// The process holding a job's lease, if any: for tests that must know
    /// a kill landed while a host was applying it.
    pub async fn job_holder(&self, job: u64) -> Result<Option<String>> {
        let holder: Option<Option<String>> = on!(&*self.db, c => sqlx::query_scalar(
            "SELECT lease_owner FROM jobs WHERE id = $1").bind(job as i64).fetch_optional(c).await)?;
        Ok(holder.flatten())
    }
}

impl Tx {
    /// A new job, planned; its rows are added with [`Tx::add_job_rows`].
    pub async fn insert_job(&mut self, spec: &ReassignSpec, author: Option<&Author>, now: Timestamp) -> Result<u64> {
        let (spec, plan, author) = (to_json(spec), to_json(&Plan::default()), author.map(to_json));
        let id: i64 = on!(&mut self.conn, t => sqlx::query_scalar(
            "INSERT INTO jobs (status, spec, plan, author, created_at) VALUES ('planned', $1, $2, $3, $4) RETURNING id")
            .bind(&spec).bind(&plan).bind(&author).bind(now.0).fetch_one(&mut **t).await)?;
        Ok(id as u64)
    }

    /// Adds a job's rows: pending, or failed with why. Then fails those
    /// whose entity does not exist.
    pub async fn add_job_rows(&mut self, job: u64, rows: &[NewRow]) -> Result<()> {
        // Seven values a row.
        for chunk in rows.chunks(super::tx::MAX_BINDS / 7) {
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new("INSERT INTO job_rows (job_id, line, kind, entity_id, user_id, status, error) ");
                q.push_values(chunk, |mut b, (line, read)| {
                    let (target, user, error) = match read {
                        Ok((target, user)) => (Some(*target), Some(*user as i64), None),
                        Err(why) => (None, None, Some(why.as_str())),
                    };
                    b.push_bind(job as i64)
                        .push_bind(*line as i64)
                        .push_bind(target.map(|r| r.kind.as_str()))
                        .push_bind(target.map(|r| r.id as i64))
                        .push_bind(user)
                        .push_bind(if error.is_some() { "failed" } else { "pending" })
                        .push_bind(error);
                });
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        on!(&mut self.conn, t => sqlx::query(
            "UPDATE job_rows SET status = 'failed', error = kind || ':' || CAST(entity_id AS TEXT) || ' does not exist' \
             WHERE job_id = $1 AND status = 'pending' AND NOT EXISTS \
             (SELECT 1 FROM entities e WHERE e.kind = job_rows.kind AND e.id = job_rows.entity_id)")
            .bind(job as i64).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_job_plan(&mut self, job: u64, plan: &Plan) -> Result<()> {
        let plan = to_json(plan);
        on!(&mut self.conn, t => sqlx::query("UPDATE jobs SET plan = $2 WHERE id = $1")
            .bind(job as i64).bind(&plan).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Moves a job from one of `from` to `to`; `false` when it was in none.
    pub async fn set_job_status(
        &mut self,
        job: u64,
        from: &[JobStatus],
        to: JobStatus,
        now: Timestamp,
    ) -> Result<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let (started, finished) = match to {
            JobStatus::Running => (Some(now.0), None),
            JobStatus::Done | JobStatus::Cancelled => (None, Some(now.0)),
            JobStatus::Planned => (None, None),
        };
        let n = on!(&mut self.conn, t => {
            let mut q = QueryBuilder::new("UPDATE jobs SET status = ");
            q.push_bind(to.as_str())
                .push(", started_at = COALESCE(started_at, ")
                .push_bind(started)
                .push("), finished_at = ")
                .push_bind(finished)
                .push(", lease_owner = NULL, lease_until = NULL WHERE id = ")
                .push_bind(job as i64)
                .push(" AND status IN (");
            let mut list = q.separated(", ");
            for s in &from {
                list.push_bind(*s);
            }
            q.push(")");
            q.build().execute(&mut **t).await.map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Keeps `owner`'s lease on a running job until `until`: `false` when
    /// it lost it (another process took the job over, or it was cancelled).
    pub async fn hold_job(&mut self, job: u64, owner: &str, until: Timestamp) -> Result<bool> {
        let n = on!(&mut self.conn, t => sqlx::query(
            "UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'running'")
            .bind(job as i64).bind(owner).bind(until.0).execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The next pending rows of a job, in line order.
    pub async fn pending_rows(&mut self, job: u64, limit: u32) -> Result<Vec<(u64, EntityRef, UserId)>> {
        let found: Vec<(i64, String, i64, i64)> = on!(&mut self.conn, t => sqlx::query_as(
            "SELECT line, kind, entity_id, user_id FROM job_rows WHERE job_id = $1 AND status = 'pending' ORDER BY line LIMIT $2")
            .bind(job as i64).bind(i64::from(limit)).fetch_all(&mut **t).await)?;
        found
            .into_iter()
            .map(|(line, kind, id, user)| {
                let target = EntityRef {
                    kind: rows::kind(&kind)?,
                    id: id as u64,
                };
                Ok((line as u64, target, user as u64))
            })
            .collect()
    }

    /// Records a pending row's outcome: applied with what it cascaded to
    /// (deals, activities, tasks), or failed with why.
    pub async fn end_row(&mut self, job: u64, line: u64, outcome: Result<[u64; 3], &str>) -> Result<bool> {
        let (status, error, [deals, activities, tasks]) = match outcome {
            Ok(counts) => ("applied", None, counts),
            Err(why) => ("failed", Some(why), [0; 3]),
        };
        let n = on!(&mut self.conn, t => sqlx::query(
            "UPDATE job_rows SET status = $3, error = $4, deals = $5, activities = $6, tasks = $7 \
             WHERE job_id = $1 AND line = $2 AND status = 'pending'")
            .bind(job as i64).bind(line as i64).bind(status).bind(error)
            .bind(deals as i64).bind(activities as i64).bind(tasks as i64)
            .execute(&mut **t).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The entities of `kinds` linked to `target`.
    pub async fn linked(&mut self, target: EntityRef, kinds: &[EntityKind]) -> Result<Vec<EntityRef>> {
        let found: Vec<(String, i64)> = on!(&mut self.conn, t => sqlx::query_as(
            "SELECT other_kind, other_id FROM links WHERE kind = $1 AND id = $2 ORDER BY other_kind, other_id")
            .bind(target.kind.as_str()).bind(target.id as i64).fetch_all(&mut **t).await)?;
        let mut linked = Vec::new();
        for (kind, id) in found {
            let kind = rows::kind(&kind)?;
            if kinds.contains(&kind) {
                linked.push(EntityRef { kind, id: id as u64 });
            }
        }
        Ok(linked)
    }
}
