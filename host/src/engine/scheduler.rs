//! The scheduler: the worker loop that runs due work and sleeps until the
//! next due run, a wake-up or the poll interval, and forgets old inbound
//! calls hourly ([`Engine::run`]); and cron schedules firing their triggers
//! ([`Engine::run_schedules`]). Leasing and running a batch is
//! `worker.rs`'s.

use std::str::FromStr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::changes::{Firing, Trace};
use super::{Engine, Result};
use crate::domain::{Cause, Entity, EntityRef, Fields, Timestamp};
use crate::storage::Scheduled;

impl Engine {
    /// Fires the scheduled triggers whose time has come, each once however
    /// many processes share the database, and sets their next time. Returns
    /// how many entities moved.
    pub async fn run_schedules(&self) -> Result<usize> {
        let settings = self.settings();
        let now = self.now();
        let tz = settings.calendar.time_zone();
        let mut moved = 0;
        for trigger in settings.triggers.values().flatten() {
            let Some(expr) = &trigger.schedule else { continue };
            let Ok(schedule) = cron::Schedule::from_str(expr) else {
                continue;
            };
            let next_after = |at: Timestamp| {
                schedule
                    .after(&at.to_datetime().with_timezone(&tz))
                    .next()
                    .map(|t| Timestamp::from_datetime(t.to_utc()))
            };
            let of = Scheduled::Trigger(trigger.id);
            let seen = self.store.schedule_next(of).await?;
            match seen {
                None => {
                    if let Some(next) = next_after(now) {
                        self.store.start_schedule(of, next).await?;
                    }
                }
                Some(due) if due <= now => {
                    let next = next_after(now).unwrap_or(Timestamp(i64::MAX));
                    // The move commits with what the firing moved, or
                    // neither does.
                    let mut tx = self.store.begin().await?;
                    if !tx.advance_schedule(of, due, next).await? {
                        continue;
                    }
                    let candidates: Vec<EntityRef> = self
                        .store
                        .entities_in(&trigger.pipeline)
                        .await?
                        .iter()
                        .map(Entity::reference)
                        .collect();
                    // Only this trigger: the others with its code have
                    // their own schedules, or none.
                    let none = Fields::new();
                    let firing = Firing {
                        code: &trigger.code,
                        triggers: std::slice::from_ref(trigger),
                        data: &none,
                        trace: Trace::MovesOnly,
                    };
                    let fired = self.fire(&mut tx, &settings, &firing, &candidates, now).await?;
                    tx.commit().await?;
                    self.wake.notify_waiters();
                    moved += fired.iter().filter(|f| f.moved_to.is_some()).count();
                }
                Some(_) => {}
            }
        }
        self.run_scheduled_robots(&settings, now).await?;
        Ok(moved)
    }

    /// Queues a run of each robot on a schedule whose time has come, for
    /// every entity in its stage then, each once however many processes
    /// share the database (the one that moves the schedule on queues
    /// them); their cause is the schedule. Returns how many runs it queued.
    async fn run_scheduled_robots(&self, settings: &super::Settings, now: Timestamp) -> Result<usize> {
        let tz = settings.calendar.time_zone();
        let mut queued = 0;
        for robot in settings.robots.values().flatten() {
            let Some(expr) = &robot.timing.schedule else { continue };
            let Ok(schedule) = cron::Schedule::from_str(expr) else {
                continue;
            };
            if robot.disabled.is_some() {
                continue;
            }
            let next_after = |at: Timestamp| {
                schedule
                    .after(&at.to_datetime().with_timezone(&tz))
                    .next()
                    .map(|t| Timestamp::from_datetime(t.to_utc()))
            };
            let of = Scheduled::Robot(robot.id);
            match self.store.schedule_next(of).await? {
                None => {
                    if let Some(next) = next_after(now) {
                        self.store.start_schedule(of, next).await?;
                    }
                }
                Some(due) if due <= now => {
                    let next = next_after(now).unwrap_or(Timestamp(i64::MAX));
                    // The runs commit with the move, or neither does: a
                    // firing is never lost to a process dying in between,
                    // and never taken by two. They are queued by one
                    // statement, whatever the stage holds.
                    let mut tx = self.store.begin().await?;
                    if !tx.advance_schedule(of, due, next).await? {
                        continue;
                    }
                    let cause = Cause::Schedule { name: expr.clone() };
                    let runs = tx
                        .queue_stage_runs(&robot.pipeline, &robot.stage, robot.id, &cause, now)
                        .await?;
                    tx.commit().await?;
                    tracing::info!(robot = robot.id, runs, schedule = %expr, "a robot's schedule came due");
                    self.wake.notify_waiters();
                    queued += runs as usize;
                }
                Some(_) => {}
            }
        }
        Ok(queued)
    }

    /// Runs due work until none is left, without sleeping; returns how
    /// many runs it finished. Tests drive the engine with this.
    #[cfg(feature = "test-support")]
    pub async fn run_until_idle(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.run_due(self.config.batch).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Works until `shutdown`: runs due work, then sleeps until the next
    /// due run, a wake-up, or at most `poll_ms` (other processes add work
    /// too). A batch in flight is finished before it returns.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        const HOUR: i64 = 3_600_000;
        let _running = Running::start(&self.running);
        if !self.jobs_started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::spawn(self.clone().run_jobs(shutdown.clone()));
        }
        let poll = std::time::Duration::from_millis(self.config.poll_ms);
        let mut forgot_calls_at = Timestamp(i64::MIN);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let woken = self.wake.notified();
            if let Err(error) = self.refresh().await {
                tracing::error!(%error, "reading configuration changes failed; trying again");
            }
            if self.now().0.saturating_sub(forgot_calls_at.0) >= HOUR {
                forgot_calls_at = self.now();
                if let Err(error) = self.forget_old_calls().await {
                    tracing::error!(%error, "forgetting old inbound calls failed; trying again in an hour");
                }
            }
            if let Err(error) = self.deliver_outbox().await {
                tracing::error!(%error, "delivering the outbox failed; trying again");
            }
            if let Err(error) = self.run_schedules().await {
                tracing::error!(%error, "firing scheduled triggers failed; trying again");
            }
            match self.run_due(self.config.batch).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "running due work failed; trying again"),
            }
            let wait = match self.store.next_due().await {
                Ok(Some(at)) => {
                    std::time::Duration::from_millis((at.0 - self.now().0).clamp(0, poll.as_millis() as i64) as u64)
                }
                _ => poll,
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Counts a worker loop as running while it lives: what `/health/ready`
/// reads ([`Engine::workers`]).
struct Running<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Running<'a> {
    fn start(count: &'a std::sync::atomic::AtomicUsize) -> Running<'a> {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
