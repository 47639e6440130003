//! Bulk jobs: a reassignment file planned and reported before anything
//! changes, then applied in paced batches by whichever process holds the
//! job's lease. A batch is one transaction: its rows' changes, their
//! history (`responsible-changed` with the job), their outcomes, and the
//! lease it commits under. So a job resumed after a crash applies no row
//! twice, and a cancelled one stops at the next batch.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::stage::{self, By};
use super::{Engine, EngineError, Result, Settings, invalid};
use crate::domain::{
    Author, Entity, EntityKind, EntityRef, Job, JobStatus, ReassignSpec, Semantic, Timestamp, UserId,
    read_reassignments,
};
use crate::storage::Tx;

/// What one batch did.
enum Step {
    /// Applied rows; more may be pending.
    Applied,
    /// No row was pending: the job is done.
    Finished,
    /// Another process holds the job now, or it was cancelled.
    Lost,
}

impl Engine {
    /// Reads a reassignment file and plans its job: every row stored,
    /// those it cannot apply failed with why, and what it would change
    /// counted. Nothing changes until it is started.
    pub async fn plan_reassignment(&self, file: &str, spec: ReassignSpec, by: Option<&Author>) -> Result<Job> {
        spec.check().map_err(|problem| invalid("spec", problem))?;
        let rows = read_reassignments(file, &spec, &self.settings().directory).map_err(|p| invalid("file", p))?;
        let mut tx = self.store.begin().await?;
        let id = tx.insert_job(&spec, by, self.now()).await?;
        tx.add_job_rows(id, &rows).await?;
        let plan = {
            tx.commit().await?;
            self.store.plan_counts(id, &spec.cascades()).await?
        };
        let mut tx = self.store.begin().await?;
        tx.set_job_plan(id, &plan).await?;
        tx.commit().await?;
        self.job(id).await
    }

    pub async fn job(&self, id: u64) -> Result<Job> {
        self.store.job(id).await?.ok_or_else(|| EngineError::NotFound {
            what: format!("job {id}"),
        })
    }

    /// Starts a planned job: the next free worker applies it.
    pub async fn start_job(&self, id: u64) -> Result<Job> {
        self.move_job(id, &[JobStatus::Planned], JobStatus::Running).await
    }

    /// Cancels a planned or running job: rows applied stay applied, the
    /// rest stay pending, and no batch commits after this.
    pub async fn cancel_job(&self, id: u64) -> Result<Job> {
        self.move_job(id, &[JobStatus::Planned, JobStatus::Running], JobStatus::Cancelled)
            .await
    }

    async fn move_job(&self, id: u64, from: &[JobStatus], to: JobStatus) -> Result<Job> {
        let mut tx = self.store.begin().await?;
        let moved = tx.set_job_status(id, from, to, self.now()).await?;
        tx.commit().await?;
        let job = self.job(id).await?;
        if !moved {
            return Err(EngineError::InUse(format!(
                "job {id} is {}; only a {} job can be made {}",
                job.status.as_str(),
                from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or "),
                to.as_str()
            )));
        }
        self.jobs_wake.notify_one();
        Ok(job)
    }

    /// The job loop of a host: takes running jobs no live process holds
    /// and applies them, one at a time. Started once per engine, by its
    /// first worker loop.
    pub(super) async fn run_jobs(self: Arc<Self>, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_ms);
        loop {
            let woken = self.jobs_wake.notified();
            match self.apply_any(None, &shutdown, &mut |_| {}).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "applying a bulk job failed; trying again"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = woken => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Applies job `id` from here to its end, or waits while another
    /// process holds it, calling `progress` after each batch or look; for
    /// the command line. Returns the job as it ended (done or cancelled).
    pub async fn drive_job(&self, id: u64, mut progress: impl FnMut(&Job) + Send) -> Result<Job> {
        let never = CancellationToken::new();
        let poll = Duration::from_millis(self.config.poll_ms);
        loop {
            let job = self.job(id).await?;
            progress(&job);
            match job.status {
                JobStatus::Done | JobStatus::Cancelled => return Ok(job),
                JobStatus::Planned => {
                    return Err(EngineError::InUse(format!("job {id} is planned; start it first")));
                }
                JobStatus::Running => {}
            }
            if !self.apply_any(Some(id), &never, &mut progress).await? {
                tokio::time::sleep(poll).await;
            }
        }
    }

    /// Leases a running job (`only` that one, when given) and applies its
    /// batches until it ends or this process loses it: `false` when there
    /// was none to take.
    async fn apply_any(
        &self,
        only: Option<u64>,
        shutdown: &CancellationToken,
        progress: &mut (dyn FnMut(&Job) + Send),
    ) -> Result<bool> {
        let now = self.now();
        let until = Timestamp(now.0 + self.config.lease_ms);
        let Some((id, spec)) = self.store.lease_job(&self.owner, only, now, until).await? else {
            return Ok(false);
        };
        tracing::info!(job = id, "applying bulk job");
        loop {
            match self.apply_batch(id, &spec).await? {
                Step::Applied => {}
                Step::Finished => {
                    tracing::info!(job = id, "bulk job done");
                    break;
                }
                Step::Lost => {
                    tracing::info!(job = id, "bulk job cancelled or taken over; stopping");
                    break;
                }
            }
            progress(&self.job(id).await?);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(spec.pause_ms)) => {}
            }
        }
        Ok(true)
    }

    /// One batch of a job, in one transaction that commits only while this
    /// process holds the job.
    async fn apply_batch(&self, id: u64, spec: &ReassignSpec) -> Result<Step> {
        let settings = self.settings();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // First, so the job's row stays locked while the batch runs.
        if !tx
            .hold_job(id, &self.owner, Timestamp(now.0 + self.config.lease_ms))
            .await?
        {
            return Ok(Step::Lost);
        }
        let rows = tx.pending_rows(id, spec.batch).await?;
        if rows.is_empty() {
            tx.set_job_status(id, &[JobStatus::Running], JobStatus::Done, now)
                .await?;
            tx.commit().await?;
            return Ok(Step::Finished);
        }
        let targets: Vec<EntityRef> = rows.iter().map(|(_, target, _)| *target).collect();
        tx.lock_entities(&targets).await?;
        for (line, target, user) in rows {
            let outcome = reassign_row(&mut tx, &settings, id, spec, target, user, now).await?;
            tx.end_row(id, line, outcome.as_ref().map(|c| *c).map_err(String::as_str))
                .await?;
        }
        tx.commit().await?;
        Ok(Step::Applied)
    }
}

/// Gives one row's entity to `user`, and the open deals, activities and
/// tasks linked to it (and to those deals) that had its responsible, as
/// the spec says: what it cascaded to (deals, activities, tasks), or why
/// the row fails with its entity unchanged.
async fn reassign_row(
    tx: &mut Tx,
    settings: &Settings,
    job: u64,
    spec: &ReassignSpec,
    target: EntityRef,
    user: UserId,
    now: Timestamp,
) -> Result<Result<[u64; 3], String>> {
    match settings.directory.user(user) {
        Some(u) if u.active => {}
        Some(u) => return Ok(Err(format!("RESPONSIBLE: {} (#{user}) is no longer active", u.name))),
        None => return Ok(Err(format!("RESPONSIBLE: user {user} no longer exists"))),
    }
    let Some((mut entity, entry)) = tx.entity_for_update(target).await? else {
        return Ok(Err(format!("{target} no longer exists")));
    };
    let previous = entity.responsible;
    let cascades = spec.cascades();
    let mut linked = tx.linked(target, &cascades).await?;
    let deals: Vec<EntityRef> = linked.iter().filter(|r| r.kind == EntityKind::Deal).copied().collect();
    let under_deals: Vec<EntityKind> = cascades.iter().copied().filter(|k| *k != EntityKind::Deal).collect();
    for deal in deals {
        linked.extend(tx.linked(deal, &under_deals).await?);
    }
    linked.sort();
    linked.dedup();
    linked.retain(|r| *r != target);
    tx.lock_entities(&linked).await?;
    let mut counts = [0; 3];
    for r in linked {
        let Some((mut other, other_entry)) = tx.entity_for_update(r).await? else {
            continue;
        };
        if other.responsible != previous || other.responsible == Some(user) || !is_open(settings, &other) {
            continue;
        }
        stage::reassign(tx, &mut other, user, By::Job(job), now);
        tx.put_entity(&other, other_entry).await?;
        let slot = match r.kind {
            EntityKind::Deal => 0,
            EntityKind::Activity => 1,
            _ => 2,
        };
        counts[slot] += 1;
    }
    if previous != Some(user) {
        stage::reassign(tx, &mut entity, user, By::Job(job), now);
        tx.put_entity(&entity, entry).await?;
    }
    Ok(Ok(counts))
}

/// Whether a cascade still concerns an entity: a deal not in a final
/// stage, a task or activity not completed.
fn is_open(settings: &Settings, entity: &Entity) -> bool {
    match entity.kind {
        EntityKind::Task | EntityKind::Activity => !stage::is_completed(entity),
        _ => {
            let semantic = (entity.pipeline.as_ref().zip(entity.stage.as_ref()))
                .and_then(|(p, s)| settings.pipelines.get(p)?.stage(s).map(|s| s.semantic));
            semantic.is_none_or(|s| s == Semantic::InProgress)
        }
    }
}
