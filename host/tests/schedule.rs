//! A robot on a schedule with two real host processes (`robohost serve`) on
//! one PostgreSQL: each firing runs the robot once for every entity in its
//! stage, however many processes see the firing come due, and both
//! processes share the work. The schedule fires exactly twice, a few
//! seconds apart, on the real clock; every run leaves a timeline comment,
//! so a firing taken twice or missed shows on every deal.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DurationRound as _, Timelike as _, Utc};
use robohost::domain::{Cause, EntityRef, RunStatus, Timestamp};
use robohost_tests::db::{Db, fresh_url};
use support::*;

/// Deals in the scheduled robot's stage.
const DEALS: usize = 2_000;

/// Seconds between the two firings.
const GAP: u32 = 5;

/// A cron expression (the portal's zone is UTC) that fires exactly twice:
/// at least `lead` from now, and `GAP` seconds later, in the same minute.
fn twice_from(lead: chrono::Duration) -> (String, Timestamp, Timestamp) {
    let mut first = (Utc::now() + lead)
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    if first.second() + GAP > 59 {
        first = first.duration_trunc(chrono::Duration::minutes(1)).unwrap() + chrono::Duration::minutes(1);
    }
    let second = first + chrono::Duration::seconds(GAP.into());
    let cron = format!(
        "{},{} {} {} {} {} * {}",
        first.second(),
        second.second(),
        first.format("%-M"),
        first.format("%-H"),
        first.format("%-d"),
        first.format("%-m"),
        first.format("%Y"),
    );
    (cron, Timestamp::from_datetime(first), Timestamp::from_datetime(second))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_run_a_scheduled_robot_once_per_firing_for_every_deal_in_its_stage() {
    let url = fresh_url(Db::Postgres).await;
    let engine = portal(&url).await;
    let store = engine.store();
    // The deals, created concurrently so they share group commits.
    let mut creating = tokio::task::JoinSet::new();
    for worker in 0..50 {
        let engine = engine.clone();
        creating.spawn(async move {
            let mut made = Vec::new();
            for n in (worker..DEALS).step_by(50) {
                made.push(create_deal(&engine, &format!("d{n}")).await);
            }
            made
        });
    }
    let deals: Vec<EntityRef> = creating.join_all().await.into_iter().flatten().collect();
    assert_eq!(deals.len(), DEALS);

    let config = config_file("schedule", "batch = 16");
    let hosts = [Host::start(&url, &config), Host::start(&url, &config)];
    // Placed once both serve, so both see it (within `poll-ms`) before its
    // first firing.
    let (cron, first, second) = twice_from(chrono::Duration::seconds(3));
    let mut robot = comment("tick {=Document.TITLE}");
    robot["timing"] = serde_json::json!({"schedule": cron});
    place(&engine, "NEW", robot).await;

    // Each host is seen holding leased runs while the firings are worked;
    // the portal is settled once both firings are past, every run is done
    // and nothing changes for a second (a firing taken twice would show).
    let mut worked = [false, false];
    let start = std::time::Instant::now();
    let mut settled: Option<(std::time::Instant, u64)> = None;
    loop {
        for (host, seen) in hosts.iter().zip(&mut worked) {
            *seen |= store.leased_by(&host.owner()).await.unwrap() > 0;
        }
        let mut busy = 0;
        for status in UNFINISHED {
            busy += count(store, status).await;
        }
        let (done, total) = (count(store, RunStatus::Succeeded).await, all_runs(store).await);
        match settled {
            _ if busy > 0 || Timestamp::now() <= second || done < 2 * DEALS as u64 => settled = None,
            Some((since, seen)) if seen == total && since.elapsed() > Duration::from_secs(1) => break,
            Some((_, seen)) if seen == total => {}
            _ => settled = Some((std::time::Instant::now(), total)),
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "both firings worked within 120 s: {done} of {total} runs done, {busy} unfinished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fired: usize = hosts.iter().map(|h| h.lines("a robot's schedule came due")).sum();
    let pids: Vec<u32> = hosts.iter().map(Host::pid).collect();
    for host in hosts {
        host.kill();
    }

    let runs = store.runs(None, 10 * DEALS as u32).await.unwrap();
    let mut by_deal: HashMap<EntityRef, Vec<Timestamp>> = HashMap::new();
    for run in &runs {
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        assert_eq!(run.cause, Cause::Schedule { name: cron.clone() });
        by_deal.entry(run.entity).or_default().push(run.created_at);
    }
    for deal in &deals {
        let mut at = by_deal.remove(deal).unwrap_or_default();
        at.sort();
        assert!(
            at.len() == 2 && first <= at[0] && at[0] < second && second <= at[1],
            "{deal}: one run per firing, queued at {at:?} (firings at {first:?} and {second:?})"
        );
        assert_eq!(
            comments(store, *deal, "tick ").await,
            2,
            "{deal}: one comment per firing"
        );
    }
    assert!(by_deal.is_empty(), "runs for deals not in the stage: {by_deal:?}");
    assert_eq!(runs.len(), 2 * DEALS, "two firings, one run per deal each");
    assert_eq!(fired, 2, "each firing came due in one process only");
    assert_eq!(
        worked,
        [true, true],
        "both hosts {pids:?} took part of the firings' runs"
    );
    eprintln!("{DEALS} deals, schedule {cron:?}: 2 firings, {} runs", runs.len());
}
