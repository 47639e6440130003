//! `robohost bulk`: reassignment files applied as bulk jobs, with what
//! they will do shown first and a progress bar while they run.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::open_engine;
use crate::domain::{EntityKind, Job, JobStatus, ReassignSpec, RowStatus};
use crate::engine::{Engine, EngineConfig};
use crate::runtime::SandboxConfig;

#[derive(Subcommand)]
pub(super) enum BulkCommand {
    /// Gives many leads, contacts, companies or deals new responsibles from
    /// a CSV file of `id, new responsible` lines. Shows what it will do and
    /// asks first; then applies it in paced batches, with a progress bar.
    Reassign(ReassignArgs),
    /// Follows a started job to its end, applying it from here when no host
    /// holds it (so a job whose host stopped goes on).
    Watch {
        id: u64,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
    /// Cancels a job: rows applied stay so, the rest are left.
    Cancel {
        id: u64,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
}

#[derive(Args)]
pub(super) struct ReassignArgs {
    /// The CSV file: `id, new responsible` per line. The id is `42` (of
    /// `--kind`) or `company:42`; the responsible a user's number or name.
    file: PathBuf,
    /// The kind of the entities a line names by number alone: lead,
    /// contact, company or deal.
    #[arg(long)]
    kind: Option<String>,
    /// Leave the entities' open deals to their responsible.
    #[arg(long)]
    no_deals: bool,
    /// Leave their activities.
    #[arg(long)]
    no_activities: bool,
    /// Leave their tasks.
    #[arg(long)]
    no_tasks: bool,
    /// Rows applied per transaction.
    #[arg(long, default_value_t = 100)]
    batch: u32,
    /// The pause after each batch, so the portal stays responsive.
    #[arg(long, default_value_t = 50)]
    pause_ms: u64,
    /// Only show what it would do; the job stays planned.
    #[arg(long)]
    dry_run: bool,
    /// Start without asking.
    #[arg(long)]
    yes: bool,
    #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
    database_url: String,
}

pub(super) async fn run(
    sandbox: SandboxConfig,
    config: EngineConfig,
    command: BulkCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        BulkCommand::Reassign(args) => reassign(sandbox, config, args).await,
        BulkCommand::Watch { id, database_url } => {
            let engine = open_engine(sandbox, config, &database_url).await?;
            follow(&engine, id).await
        }
        BulkCommand::Cancel { id, database_url } => {
            let engine = open_engine(sandbox, config, &database_url).await?;
            let job = engine.cancel_job(id).await?;
            eprintln!(
                "robohost: job {id} cancelled with {} of {} rows applied",
                job.progress.applied, job.progress.total
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn reassign(sandbox: SandboxConfig, config: EngineConfig, args: ReassignArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let kind = args
        .kind
        .as_deref()
        .map(str::parse::<EntityKind>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
    let spec = ReassignSpec {
        kind,
        deals: !args.no_deals,
        activities: !args.no_activities,
        tasks: !args.no_tasks,
        batch: args.batch,
        pause_ms: args.pause_ms,
    };
    let engine = open_engine(sandbox, config, &args.database_url).await?;
    let job = engine.plan_reassignment(&file, spec, None).await?;
    report_plan(&engine, &job, &args.file).await?;
    if args.dry_run {
        eprintln!(
            "robohost: nothing changed; start job {} with `robohost bulk watch {}` after POST /api/jobs/{}/start",
            job.id, job.id, job.id
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "give --yes to apply job {} without a terminal to ask on, or --dry-run",
                job.id
            );
        }
        eprint!("Apply it? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            engine.cancel_job(job.id).await?;
            eprintln!("robohost: job {} cancelled; nothing changed", job.id);
            return Ok(ExitCode::SUCCESS);
        }
    }
    engine.start_job(job.id).await?;
    follow(&engine, job.id).await
}

/// Prints what a planned job will do.
async fn report_plan(engine: &Engine, job: &Job, file: &std::path::Path) -> anyhow::Result<()> {
    let plan = &job.plan;
    let rows: Vec<String> = plan.rows.iter().map(|(k, n)| format!("{n} {}", k.as_str())).collect();
    eprintln!("robohost: job {} from {}", job.id, file.display());
    eprintln!(
        "  to reassign: {}",
        if rows.is_empty() {
            "nothing".into()
        } else {
            rows.join(", ")
        }
    );
    let cascade: Vec<String> = plan
        .cascade_at_most
        .iter()
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect();
    if !cascade.is_empty() {
        eprintln!(
            "  with, at most: {} (open and of the same responsible)",
            cascade.join(", ")
        );
    }
    if plan.unusable > 0 {
        eprintln!("  cannot apply: {} rows", plan.unusable);
        print_failed(engine, job.id).await?;
    }
    Ok(())
}

async fn print_failed(engine: &Engine, id: u64) -> anyhow::Result<()> {
    const SHOWN: u32 = 20;
    let failed = engine.store().job_rows(id, Some(RowStatus::Failed), 0, SHOWN).await?;
    for row in &failed {
        eprintln!("    line {}: {}", row.line, row.error.as_deref().unwrap_or(""));
    }
    if failed.len() as u32 == SHOWN {
        eprintln!("    … all of them: GET /api/jobs/{id}/rows?status=failed");
    }
    Ok(())
}

/// Drives a job to its end with a progress bar, then tells how it ended.
async fn follow(engine: &Engine, id: u64) -> anyhow::Result<ExitCode> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({percent}%) {msg} [{elapsed}, {eta} left]")
            .expect("the template is valid"),
    );
    let job = engine
        .drive_job(id, |job| {
            bar.set_length(job.progress.total);
            bar.set_position(job.progress.done());
            bar.set_message(format!("{} failed", job.progress.failed));
        })
        .await?;
    bar.finish();
    let p = &job.progress;
    let verb = if job.status == JobStatus::Done {
        "done"
    } else {
        "cancelled"
    };
    eprintln!(
        "robohost: job {id} {verb}: {} applied (with {} deals, {} activities, {} tasks), {} failed, {} left",
        p.applied, p.deals, p.activities, p.tasks, p.failed, p.pending
    );
    if p.failed > 0 {
        print_failed(engine, id).await?;
    }
    Ok(ExitCode::SUCCESS)
}
