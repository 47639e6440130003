//! The local commands: `robot run`, `robot describe` and `trigger run` run a
//! plugin in the real sandbox on JSON files, without a database; `plugin
//! test` (in `plugin.rs`) runs a plugin's test cases the same way.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::{Calendar, Capability, Cause, Entity, Fields, HitTarget, InboundCall, Timestamp};
use crate::harness::JsonCrm;
use crate::runtime::{AttemptReport, Denial, Grants, LogLine, Plugin, RunContext, RunRequest, Sandbox, SandboxConfig};

use super::{RunArgs, TriggerArgs};

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{what} {} is not valid", path.display()))
}

pub(super) fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
    Sandbox::new(config)
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("starting the sandbox")
}

/// How messages name a plugin file: its name without `.wasm`.
pub(super) fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn load_plugin(sandbox: &Sandbox, path: &Path, context: &RunContext) -> anyhow::Result<Plugin> {
    let wasm = fs::read(path).with_context(|| format!("reading the plugin {}", path.display()))?;
    let mut plugin = sandbox.load(&plugin_name(path), &wasm, context)?;
    plugin.accept();
    Ok(plugin)
}

pub(super) fn run_robot(config: SandboxConfig, args: RunArgs) -> anyhow::Result<ExitCode> {
    let entity: Entity = read_json(&args.entity, "the entity")?;
    let properties: Fields = match &args.props {
        Some(path) => read_json(path, "the properties")?,
        None => Fields::new(),
    };
    let related: Vec<Entity> = match &args.related {
        Some(path) => read_json(path, "the related entities")?,
        None => Vec::new(),
    };
    let calendar: Calendar = match &args.calendar {
        Some(path) => read_json(path, "the calendar")?,
        None => Calendar::default(),
    };
    let kv: HashMap<String, String> = match &args.kv {
        Some(path) => read_json(path, "the key-value store")?,
        None => HashMap::new(),
    };
    let local = LocalRun {
        robot: args.robot,
        entity,
        properties,
        related,
        calendar,
        kv: kv.into_iter().map(|(k, v)| (k, v.into_bytes())).collect(),
        now: args.now.unwrap_or_else(Timestamp::now),
        grants: grants(args.grant.as_deref())?,
        fuel: args.fuel,
    };
    let sandbox = start(config)?;
    let plugin = load_plugin(&sandbox, &args.plugin, &empty_context()?)?;
    let report = local.run(&sandbox, &plugin)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&plugin, &report);
    }
    if report.outcome.is_success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: plugin {} ({}) robot `{}`: {}",
        plugin.name(),
        report.plugin,
        report.robot,
        report.outcome
    );
    Ok(ExitCode::FAILURE)
}

/// One item of `robot run --grant`: a capability, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GrantItem {
    /// Grants nothing: the robot runs with no capability.
    Nothing,
    Capability(Capability),
}

impl FromStr for GrantItem {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "none" => Ok(GrantItem::Nothing),
            name => name
                .parse()
                .map(GrantItem::Capability)
                .map_err(|e| format!("{e}; or `none` to grant nothing")),
        }
    }
}

/// What `--grant` grants: everything when it is not given, nothing for
/// `none`, else the capabilities listed.
pub(super) fn grants(items: Option<&[GrantItem]>) -> anyhow::Result<Grants> {
    let Some(items) = items else {
        return Ok(Grants::ALL);
    };
    if items.len() > 1 && items.contains(&GrantItem::Nothing) {
        bail!("--grant: `none` grants nothing, so it stands alone; list the capabilities to grant instead");
    }
    Ok(items
        .iter()
        .filter_map(|item| match item {
            GrantItem::Capability(c) => Some(*c),
            GrantItem::Nothing => None,
        })
        .collect())
}

/// One run in the local harness: what `robot run` and `plugin test` take.
pub(super) struct LocalRun {
    pub(super) robot: String,
    pub(super) entity: Entity,
    pub(super) properties: Fields,
    pub(super) related: Vec<Entity>,
    pub(super) calendar: Calendar,
    pub(super) kv: HashMap<String, Vec<u8>>,
    pub(super) now: Timestamp,
    pub(super) grants: Grants,
    pub(super) fuel: Option<u64>,
}

impl LocalRun {
    /// Runs the robot in a fresh sandbox, serving CRM data from the run's
    /// entity, related entities and key-value store.
    pub(super) fn run(self, sandbox: &Sandbox, plugin: &Plugin) -> anyhow::Result<AttemptReport> {
        let context = RunContext {
            data: Arc::new(JsonCrm::new(self.entity.clone(), self.related).with_kv(self.kv)),
            calendar: Arc::new(self.calendar),
            kv_namespace: "local".into(),
        };
        let cause = Cause::Manual {
            user: self.entity.responsible.unwrap_or(1),
        };
        let report = sandbox.run(
            plugin,
            RunRequest {
                robot: &self.robot,
                entity: &self.entity,
                properties: &self.properties,
                cause: &cause,
                run_id: "local-1",
                attempt: 1,
                idempotency_key: "local-1",
                now: self.now,
                grants: self.grants,
                fuel: self.fuel,
                context,
            },
        )?;
        Ok(report)
    }
}

pub(super) fn empty_context() -> anyhow::Result<RunContext> {
    let nothing: Entity = serde_json::from_str(r#"{"kind": "deal", "id": 0}"#)?;
    Ok(RunContext {
        data: Arc::new(JsonCrm::new(nothing, vec![])),
        calendar: Arc::new(Calendar::default()),
        kv_namespace: "local".into(),
    })
}

pub(super) fn run_trigger(config: SandboxConfig, args: TriggerArgs) -> anyhow::Result<ExitCode> {
    let body = fs::read(&args.body).with_context(|| format!("reading the body {}", args.body.display()))?;
    let sandbox = start(config)?;
    let context = empty_context()?;
    let wasm = fs::read(&args.plugin).with_context(|| format!("reading the plugin {}", args.plugin.display()))?;
    let mut plugin = sandbox.load_trigger(&plugin_name(&args.plugin), &wasm, &context)?;
    plugin.accept();
    let request = InboundCall {
        method: args.method,
        path: args.path,
        query: args.query,
        headers: args.headers,
        body,
    };
    let report = sandbox.handle(&plugin, &request, Grants::ALL, context);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("plugin   {} ({})", plugin.name(), report.plugin);
        println!("outcome  {}", report.outcome.code());
        println!("fuel     {}", report.fuel_used);
        println!("time     {:.3} ms", report.duration.as_secs_f64() * 1e3);
        println!("hits     {}", report.hits.len());
        for hit in &report.hits {
            let target = match &hit.target {
                HitTarget::Entity(r) => r.to_string(),
                HitTarget::Lookup { kind, code, value } => {
                    format!("the {} whose {code} is {value}", kind.as_str())
                }
            };
            let data: Vec<String> = hit
                .data
                .iter()
                .map(|(code, value)| format!("{code} = {value}"))
                .collect();
            println!("  {} for {target}; {}", hit.trigger, data.join("; "));
        }
        print_logs(&report.logs, &report.denials);
    }
    if report.outcome.is_success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: plugin {} ({}): {}",
        plugin.name(),
        report.plugin,
        report.outcome
    );
    Ok(ExitCode::FAILURE)
}

pub(super) fn print_report(plugin: &Plugin, report: &AttemptReport) {
    println!("plugin   {} ({})", plugin.name(), report.plugin);
    println!("robot    {}", report.robot);
    println!("outcome  {}", report.outcome.code());
    println!("fuel     {}", report.fuel_used);
    println!("time     {:.3} ms", report.duration.as_secs_f64() * 1e3);
    println!("effects  {}", report.effects.len());
    for (i, effect) in report.effects.iter().enumerate() {
        println!("  {}. {effect}", i + 1);
    }
    println!("returns  {}", report.returns.len());
    for (code, value) in &report.returns {
        println!("  {code} = {value}");
    }
    print_logs(&report.logs, &report.denials);
}

pub(super) fn print_logs(logs: &[LogLine], denials: &[Denial]) {
    println!("log      {}", logs.len());
    for line in logs {
        println!("  [{}] {}", format!("{:?}", line.level).to_lowercase(), line.message);
    }
    for denial in denials {
        println!("denied   `{}` needed {}", denial.call, denial.denied);
    }
}

pub(super) fn describe(config: SandboxConfig, path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let sandbox = start(config)?;
    let plugin = load_plugin(&sandbox, path, &empty_context()?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(plugin.robots())?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("plugin {} ({})", plugin.name(), plugin.digest());
    if plugin.robots().is_empty() {
        bail!("the plugin provides no robots");
    }
    for robot in plugin.robots() {
        let name = robot
            .names
            .get("en")
            .or_else(|| robot.names.values().next())
            .cloned()
            .unwrap_or_default();
        println!("\n{}  {name}", robot.code);
        if let Some(text) = robot.descriptions.get("en") {
            println!("  {text}");
        }
        let caps: Vec<_> = robot.capabilities.iter().map(|c| c.as_str()).collect();
        println!(
            "  capabilities: {}",
            if caps.is_empty() {
                "none".into()
            } else {
                caps.join(", ")
            }
        );
        for (title, props) in [("property", &robot.properties), ("returns", &robot.returns)] {
            for p in props {
                let flags = [(p.required, "required"), (p.multiple, "multiple")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, f)| *f)
                    .collect::<Vec<_>>()
                    .join(", ");
                println!("  {title} {}: {:?} {flags}", p.code, p.value_type);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_none_grants_nothing_and_stands_alone() {
        let parse = |list: &str| -> Result<Vec<GrantItem>, String> { list.split(',').map(str::parse).collect() };
        assert_eq!(grants(None).unwrap(), Grants::ALL);
        assert_eq!(grants(Some(&parse("none").unwrap())).unwrap(), Grants::NONE);
        let two = grants(Some(&parse("set-fields,notify").unwrap())).unwrap();
        assert_eq!(two, Grants::NONE.with(Capability::SetFields).with(Capability::Notify));
        let mixed = grants(Some(&parse("none,notify").unwrap())).unwrap_err();
        assert!(mixed.to_string().contains("`none` grants nothing"), "{mixed}");
        let typo = parse("nothing").unwrap_err();
        assert!(
            typo.starts_with("`nothing` is not a capability") && typo.ends_with("or `none` to grant nothing"),
            "{typo}"
        );
    }
}
