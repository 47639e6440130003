//! Installing a checked template: the first time, or over an earlier
//! version of it.
//!
//! The record of the version installed before ([`InstalledTemplate`]) holds
//! each item as that version declared it. An item of the new version is:
//!
//! - **added** when the earlier version did not have it and the portal does
//!   not either;
//! - left alone when it is as the earlier version declared it;
//! - **updated** when the template changed it and the portal still has it
//!   exactly as the earlier version declared it (the admin did not touch it);
//! - **kept** as the admin has it when the template changed it and the
//!   portal's differs from the earlier declaration (the admin changed or
//!   removed it), or when the portal had it before the template.
//!
//! An item of the earlier version the new one no longer has stays in the
//! portal, reported as removed from the template. Nothing is deleted. A
//! pipeline the portal had before the template's first install stays the
//! admin's: the template never places robots or triggers on it.

use std::collections::{BTreeMap, HashMap};

use toml::Spanned;

use super::InstallReport;
use crate::domain::{
    ConstantDecl, FieldDecl, InstalledTemplate, InstalledVersion, Pipeline, RobotBinding, Template, TriggerBinding,
    rename_robots,
};
use crate::engine::{Engine, Result};
use crate::storage::Tx;

/// What the portal has now, read before the install.
struct Portal {
    pipelines: HashMap<String, Pipeline>,
    fields: Vec<FieldDecl>,
    constants: Vec<ConstantDecl>,
    robots: HashMap<u64, RobotBinding>,
    triggers: HashMap<u64, TriggerBinding>,
}

impl Engine {
    /// Installs `template`, already checked whole, over `previous` (empty
    /// for a first install), in one transaction; returns what it did and the
    /// new record.
    pub(super) async fn apply_template(
        &self,
        template: &Template,
        previous: Option<InstalledTemplate>,
        report: &mut InstallReport,
    ) -> Result<()> {
        let portal = Portal {
            pipelines: self.settings().pipelines.clone(),
            fields: self.store.custom_fields().await?,
            constants: self.store.constant_decls().await?,
            robots: (self.store.all_robots().await?.into_iter().map(|r| (r.id, r))).collect(),
            triggers: (self.store.all_triggers().await?.into_iter().map(|t| (t.id, t))).collect(),
        };
        let first = previous.is_none();
        let before = previous.unwrap_or_else(|| InstalledTemplate {
            code: template.code.clone(),
            version: String::new(),
            names: Default::default(),
            installed_at: self.now(),
            history: Vec::new(),
            pipelines: Vec::new(),
            foreign: Vec::new(),
            fields: Vec::new(),
            constants: Vec::new(),
            robots: BTreeMap::new(),
            triggers: BTreeMap::new(),
        });
        let mut history = before.history.clone();
        if !first {
            report.previous_version = Some(before.version.clone());
            history.push(InstalledVersion {
                version: before.version.clone(),
                installed_at: before.installed_at,
            });
        }
        let mut after = InstalledTemplate {
            code: template.code.clone(),
            version: template.version.clone(),
            names: template.names.clone(),
            installed_at: self.now(),
            history,
            pipelines: template.pipelines.iter().map(|p| p.get_ref().clone()).collect(),
            foreign: before.foreign.clone(),
            fields: template.fields.iter().map(|f| f.get_ref().clone()).collect(),
            constants: template.constants.iter().map(|c| c.get_ref().clone()).collect(),
            robots: BTreeMap::new(),
            triggers: BTreeMap::new(),
        };
        let mut tx = self.store.begin().await?;
        self.apply_fields(&mut tx, template, &before, &portal, report).await?;
        self.apply_constants(&mut tx, template, &before, &portal, report)
            .await?;
        let ours = apply_pipelines(&mut tx, template, &before, &mut after, &portal, report).await?;
        apply_robots(&mut tx, template, &before, &mut after, &portal, &ours, report).await?;
        apply_triggers(&mut tx, template, &before, &mut after, &portal, &ours, report).await?;
        tx.put_template(&after).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(())
    }

    async fn apply_fields(
        &self,
        tx: &mut Tx,
        template: &Template,
        before: &InstalledTemplate,
        portal: &Portal,
        report: &mut InstallReport,
    ) -> Result<()> {
        for field in template.fields.iter().map(Spanned::get_ref) {
            let name = format!("field {}.{}", field.kind.as_str(), field.code);
            let same = |f: &&FieldDecl| f.kind == field.kind && f.code == field.code;
            let earlier = before.fields.iter().find(same);
            let now = portal.fields.iter().find(same);
            match (earlier, now) {
                (None, None) => {
                    tx.declare_field(field).await?;
                    report
                        .fields_declared
                        .push(format!("{}.{}", field.kind.as_str(), field.code));
                    report.added.push(name);
                }
                (None, Some(_)) => {}
                (Some(earlier), _) if earlier == field => {}
                (Some(earlier), Some(now)) if now == earlier => {
                    tx.put_field(field).await?;
                    report.updated.push(name);
                }
                (Some(_), _) => report.kept.push(name),
            }
        }
        for field in &before.fields {
            if !template
                .fields
                .iter()
                .any(|f| f.get_ref().kind == field.kind && f.get_ref().code == field.code)
            {
                (report.removed_from_template).push(format!("field {}.{}", field.kind.as_str(), field.code));
            }
        }
        Ok(())
    }

    async fn apply_constants(
        &self,
        tx: &mut Tx,
        template: &Template,
        before: &InstalledTemplate,
        portal: &Portal,
        report: &mut InstallReport,
    ) -> Result<()> {
        for constant in template.constants.iter().map(Spanned::get_ref) {
            let name = format!("constant {}", constant.code);
            let earlier = before.constants.iter().find(|c| c.code == constant.code);
            let now = portal.constants.iter().find(|c| c.code == constant.code);
            match (earlier, now) {
                (None, None) => {
                    tx.declare_constant(constant).await?;
                    report.constants_declared.push(constant.code.clone());
                    report.added.push(name);
                }
                (None, Some(_)) => {}
                (Some(earlier), _) if earlier == constant => {}
                (Some(earlier), Some(now)) if now == earlier => {
                    tx.put_constant_decl(constant).await?;
                    report.updated.push(name);
                }
                (Some(_), _) => report.kept.push(name),
            }
        }
        for constant in &before.constants {
            if !template.constants.iter().any(|c| c.get_ref().code == constant.code) {
                (report.removed_from_template).push(format!("constant {}", constant.code));
            }
        }
        Ok(())
    }
}

/// Creates and extends the template's pipelines; returns those its robots
/// and triggers may be placed on, as they will be.
async fn apply_pipelines(
    tx: &mut Tx,
    template: &Template,
    before: &InstalledTemplate,
    after: &mut InstalledTemplate,
    portal: &Portal,
    report: &mut InstallReport,
) -> Result<HashMap<String, Pipeline>> {
    let mut ours = HashMap::new();
    for declared in template.pipelines.iter().map(Spanned::get_ref) {
        let code = &declared.code;
        let name = format!("pipeline {code}");
        let earlier = before.pipelines.iter().find(|p| &p.code == code);
        match (earlier, portal.pipelines.get(code)) {
            _ if before.foreign.contains(code) => report.pipelines_kept.push(code.clone()),
            (None, None) => {
                tx.put_pipeline(declared).await?;
                report.pipelines_created.push(code.clone());
                report.added.push(name);
                ours.insert(code.clone(), declared.clone());
            }
            (None, Some(_)) => {
                // The admin's own: never the template's to change.
                report.pipelines_kept.push(code.clone());
                after.foreign.push(code.clone());
            }
            (Some(_), None) => report.kept.push(format!("{name} (removed from the portal)")),
            (Some(earlier), Some(now)) => {
                let merged = merge_pipeline(declared, earlier, now, report);
                if &merged != now {
                    tx.put_pipeline(&merged).await?;
                }
                ours.insert(code.clone(), merged);
            }
        }
    }
    for pipeline in &before.pipelines {
        if !template.pipelines.iter().any(|p| p.get_ref().code == pipeline.code) {
            (report.removed_from_template).push(format!("pipeline {}", pipeline.code));
        }
    }
    Ok(ours)
}

/// The portal's pipeline `now` with what the template changed since
/// `earlier`: stages new in `declared` inserted after the stage before them,
/// names and stages the admin did not change updated.
fn merge_pipeline(declared: &Pipeline, earlier: &Pipeline, now: &Pipeline, report: &mut InstallReport) -> Pipeline {
    let code = &declared.code;
    let mut merged = now.clone();
    if declared.names != earlier.names {
        if now.names == earlier.names {
            merged.names = declared.names.clone();
            report.updated.push(format!("pipeline {code}"));
        } else {
            report.kept.push(format!("pipeline {code}"));
        }
    }
    for (i, stage) in declared.stages.iter().enumerate() {
        let name = format!("stage {code}/{}", stage.code);
        match (earlier.stage(&stage.code), merged.position(&stage.code)) {
            (None, None) => {
                let at = declared.stages[..i]
                    .iter()
                    .rev()
                    .find_map(|s| merged.position(&s.code))
                    .map_or(0, |p| p + 1);
                merged.stages.insert(at, stage.clone());
                report.added.push(name);
            }
            (None, Some(_)) => {}
            (Some(old), _) if old == stage => {}
            (Some(old), Some(at)) if &merged.stages[at] == old => {
                merged.stages[at] = stage.clone();
                report.updated.push(name);
            }
            (Some(_), Some(_)) => report.kept.push(name),
            (Some(_), None) => report.kept.push(format!("{name} (removed from the portal)")),
        }
    }
    for stage in &earlier.stages {
        if declared.stage(&stage.code).is_none() {
            report
                .removed_from_template
                .push(format!("stage {code}/{}", stage.code));
        }
    }
    merged
}

/// Whether a binding on `pipeline`/`stage` may be placed: the pipeline is
/// the template's and has the stage.
fn placeable(ours: &HashMap<String, Pipeline>, pipeline: &str, stage: &str) -> bool {
    ours.get(pipeline).is_some_and(|p| p.stage(stage).is_some())
}

async fn apply_robots(
    tx: &mut Tx,
    template: &Template,
    before: &InstalledTemplate,
    after: &mut InstalledTemplate,
    portal: &Portal,
    ours: &HashMap<String, Pipeline>,
    report: &mut InstallReport,
) -> Result<()> {
    let keys = template.robot_keys();
    // Template-local ids to the ids robots have in the portal.
    let mut ids: HashMap<String, String> = HashMap::new();
    for (robot, key) in template.robots.iter().map(Spanned::get_ref).zip(&keys) {
        let mut binding = robot.binding.clone();
        for value in binding.properties.values_mut() {
            *value = rename_robots(value, &|local| ids.get(local).cloned());
        }
        let place = format!(
            "{}.{} at {}/{}",
            binding.plugin, binding.robot, binding.pipeline, binding.stage
        );
        let name = match &robot.key {
            Some(key) => format!("robot {key} ({place})"),
            None => format!("robot {place}"),
        };
        let earlier = before.robots.get(key).filter(|r| r.id != 0);
        let id = match earlier {
            None if !placeable(ours, &binding.pipeline, &binding.stage) => {
                if ours.contains_key(&binding.pipeline) {
                    report
                        .kept
                        .push(format!("{name} (its stage was removed from the portal)"));
                }
                0
            }
            None => {
                let id = tx.add_robot(&binding).await?;
                report.robots_added += 1;
                report.added.push(name);
                id
            }
            Some(earlier) => {
                binding.id = earlier.id;
                if *earlier != binding {
                    match portal.robots.get(&earlier.id) {
                        Some(now) if now == earlier => {
                            tx.update_robot(&binding).await?;
                            report.updated.push(name);
                        }
                        Some(_) => report.kept.push(name),
                        None => report.kept.push(format!("{name} (removed from the portal)")),
                    }
                }
                earlier.id
            }
        };
        binding.id = id;
        if let Some(local) = &robot.key {
            ids.insert(local.clone(), id.to_string());
        }
        after.robots.insert(key.clone(), binding);
    }
    for (key, robot) in &before.robots {
        if !keys.contains(key) {
            let place = format!("{}.{} at {}/{}", robot.plugin, robot.robot, robot.pipeline, robot.stage);
            report.removed_from_template.push(format!("robot {key} ({place})"));
        }
    }
    Ok(())
}

async fn apply_triggers(
    tx: &mut Tx,
    template: &Template,
    before: &InstalledTemplate,
    after: &mut InstalledTemplate,
    portal: &Portal,
    ours: &HashMap<String, Pipeline>,
    report: &mut InstallReport,
) -> Result<()> {
    let keys = template.trigger_keys();
    for (trigger, key) in template.triggers.iter().map(Spanned::get_ref).zip(&keys) {
        let mut binding = trigger.clone();
        let name = format!("trigger {key}");
        let earlier = before.triggers.get(key).filter(|t| t.id != 0);
        let id = match earlier {
            None if !placeable(ours, &binding.pipeline, &binding.stage) => 0,
            None => {
                let id = tx.add_trigger(&binding).await?;
                report.triggers_added += 1;
                report.added.push(name);
                id
            }
            Some(earlier) => {
                binding.id = earlier.id;
                if *earlier != binding {
                    match portal.triggers.get(&earlier.id) {
                        Some(now) if now == earlier => {
                            tx.replace_trigger(&binding).await?;
                            report.updated.push(name);
                        }
                        Some(_) => report.kept.push(name),
                        None => report.kept.push(format!("{name} (removed from the portal)")),
                    }
                }
                earlier.id
            }
        };
        binding.id = id;
        after.triggers.insert(key.clone(), binding);
    }
    for key in before.triggers.keys() {
        if !keys.contains(key) {
            report.removed_from_template.push(format!("trigger {key}"));
        }
    }
    Ok(())
}
