//! Installing and exporting templates (see [`crate::domain::Template`]).
//!
//! A template is checked whole before anything is written; every problem is
//! reported with its place in the file. Installing adds what the portal does
//! not have and never deletes or overwrites what the admin changed: a
//! pipeline whose code exists is kept as it is, with its robots and
//! triggers, and the template's robots and triggers for it are left out.
//! The version installed is recorded; installing a newer one adds what it
//! adds and reports what changed (see [`install`]), the same one again does
//! nothing, and an older one is refused. What the admin must still bind (the
//! template's constants without a value) is reported.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde::Serialize;
use toml::Spanned;

use super::binding::{Refusal, check_trigger};
use super::{Engine, EngineError, Result};
use crate::domain::{
    Condition, ConstantDecl, EntityKind, FieldDecl, FieldValue, Op, Pipeline, Problem, Recipient, Reference,
    RobotBinding, Schema, Template, TemplateRobot, TriggerBinding, Value, check, compare_versions, location,
    referenced_robots, rename_robots,
};

mod install;

/// The Prom2B industry template (`templates/prom2b.toml`), shipped with
/// the host.
pub const PROM2B: &str = include_str!("../../../templates/prom2b.toml");

/// What installing a template did.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct InstallReport {
    /// The template's code and the version now installed.
    pub template: String,
    pub version: String,
    /// The version this one was installed over.
    pub previous_version: Option<String>,
    /// Why nothing was done: this version is installed already.
    pub unchanged: Option<String>,
    /// Each item added, such as `pipeline general`, `stage general/WON`,
    /// `field deal.UF_X`, `constant Clerk`, `robot call1 (standard.call at
    /// leads/NEW)`, `trigger general/WON/incoming_call#1`.
    pub added: Vec<String>,
    /// Items the template changed since the version installed, which the
    /// admin had left as it was: now as the new version has them.
    pub updated: Vec<String>,
    /// Items the template changed that the admin had changed or removed
    /// too: kept as the admin has them.
    pub kept: Vec<String>,
    /// Items of the version installed before that this one no longer has:
    /// kept in the portal.
    pub removed_from_template: Vec<String>,
    pub pipelines_created: Vec<String>,
    /// Pipelines the portal already had: kept as they are, without the
    /// template's robots and triggers.
    pub pipelines_kept: Vec<String>,
    pub fields_declared: Vec<String>,
    pub constants_declared: Vec<String>,
    pub robots_added: usize,
    pub triggers_added: usize,
    /// The template's constants that have no value yet: bind each (`PUT
    /// /api/constants/CODE`) before the robots that use them run.
    pub to_bind: Vec<String>,
    /// The trigger codes its triggers use that nothing here fires yet (not
    /// the host's own, and no installed trigger plugin describes them):
    /// install a trigger plugin that does, and point its sender at an
    /// endpoint (`GET /api/trigger-catalog` lists what fires).
    pub to_source: Vec<String>,
}

/// An item made here rather than read from a file: it has no place.
fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

/// What a template may refer to: its own declarations and the portal's.
struct Known {
    pipelines: HashMap<String, Pipeline>,
    fields: Schema,
    constants: HashSet<String>,
}

impl Known {
    /// Problems with the fields a condition compares.
    fn check_condition(&self, kind: EntityKind, condition: &Condition, problems: &mut Vec<String>) {
        match condition {
            Condition::All(items) | Condition::Any(items) => {
                for item in items {
                    self.check_condition(kind, item, problems);
                }
            }
            Condition::Compare { field, op, value } => {
                self.check_field(kind, field, "the condition", problems);
                let literal = !matches!(value, FieldValue::Single(Value::Text(t)) if t.contains("{="));
                if let (Some(decl), false, true) = (
                    self.fields.get(kind, field),
                    matches!(op, Op::Empty | Op::NotEmpty),
                    literal,
                ) {
                    // One value of the field's type, whatever it holds.
                    let one = FieldDecl {
                        multiple: false,
                        required: false,
                        ..decl.clone()
                    };
                    if let Err(problem) = one.conform(value.clone()) {
                        problems.push(format!(
                            "the condition compares field `{field}` with `{value}`: {problem}"
                        ));
                    }
                }
            }
        }
    }

    /// Problems with what a robot uses that its template or the portal must
    /// declare: constants in its properties and recipient, custom fields in
    /// its properties and condition (on `kind`, its pipeline's, once placed).
    fn check_robot(&self, kind: Option<EntityKind>, robot: &RobotBinding, problems: &mut Vec<String>) {
        for (code, value) in &robot.properties {
            // A value that does not parse is the binding check's to report.
            let Ok(references) = check(value) else { continue };
            let user = format!("property `{code}`");
            for reference in references {
                match reference {
                    Reference::GlobalConst(name) => self.check_constant(&name, &user, problems),
                    Reference::Document(field) => {
                        if let Some(kind) = kind {
                            self.check_field(kind, &field, &user, problems);
                        }
                    }
                    _ => {}
                }
            }
        }
        // A property naming fields (`modify_fields`'s) names declared ones.
        if let Some(kind) = kind {
            for (code, value) in &robot.properties {
                for text in texts(value).filter(|t| is_field_code(t)) {
                    self.check_field(kind, text, &format!("property `{code}`"), problems);
                }
            }
        }
        if let Some(Recipient::Constant(name)) = &robot.recipient {
            self.check_constant(name, "the recipient", problems);
        }
        if let (Some(kind), Some(condition)) = (kind, &robot.condition) {
            self.check_condition(kind, condition, problems);
        }
        if let Some(refusal) =
            kind.and_then(|kind| super::binding::date_field_refusal(&self.fields, kind, &robot.timing))
        {
            problems.push(format!("its timing: {refusal}"));
        }
    }

    fn check_field(&self, kind: EntityKind, field: &str, user: &str, problems: &mut Vec<String>) {
        if field.starts_with("UF_") && self.fields.get(kind, field).is_none() {
            problems.push(format!(
                "{user} uses field `{field}`, which is not a declared {} field",
                kind.as_str()
            ));
        }
    }

    fn check_constant(&self, code: &str, user: &str, problems: &mut Vec<String>) {
        if !self.constants.contains(code) {
            problems.push(format!(
                "{user} uses constant `{code}`, which neither the template nor the portal declares"
            ));
        }
    }
}

/// How a field's values are shaped, for telling two declarations apart.
fn shape(field: &FieldDecl) -> String {
    let ty = field.value_type.as_str();
    if field.multiple {
        format!("a list of {ty}")
    } else {
        ty.to_owned()
    }
}

/// The texts of a property's value.
fn texts(value: &FieldValue) -> impl Iterator<Item = &str> {
    let values = match value {
        FieldValue::Single(v) => std::slice::from_ref(v),
        FieldValue::List(vs) => vs.as_slice(),
        FieldValue::Empty => &[],
    };
    values.iter().filter_map(|v| match v {
        Value::Text(t) => Some(t.as_str()),
        _ => None,
    })
}

/// Whether a text is a custom field's code, such as `UF_SEGMENT`.
fn is_field_code(text: &str) -> bool {
    text.strip_prefix("UF_").is_some_and(|tail| {
        !tail.is_empty()
            && tail
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// A refusal of one of the template's bindings, as a problem listed after
/// the binding's name, which already says where it is placed.
fn describe(refusal: Refusal, packages: &[String]) -> String {
    match refusal {
        Refusal::NoPipeline { pipeline } => format!("no pipeline `{pipeline}` in the template or the portal"),
        Refusal::NoPlugin { plugin } if packages.contains(&plugin) => {
            format!("package `{plugin}` is not installed; install it before the template")
        }
        Refusal::NoPlugin { plugin } => format!("plugin `{plugin}` is neither installed nor listed in `packages`"),
        Refusal::Value { code, problem } => format!("property `{code}`: {problem}"),
        refusal @ Refusal::NoStage { .. } => refusal.to_string(),
        refusal @ Refusal::Field { .. } => EngineError::from(refusal).to_string(),
    }
}

impl Engine {
    /// Checks and installs a template, all or nothing: the first time, or
    /// a newer version over the one installed.
    pub async fn install_template(&self, text: &str) -> Result<InstallReport> {
        let template = Template::parse(text).map_err(|p| EngineError::Template(vec![p]))?;
        let previous = self.store.template(&template.code).await?;
        let mut report = InstallReport {
            template: template.code.clone(),
            version: template.version.clone(),
            ..InstallReport::default()
        };
        if let Some(previous) = &previous {
            let (code, installed, given) = (&template.code, &previous.version, &template.version);
            match compare_versions(given, installed) {
                Ordering::Equal => {
                    report.unchanged = Some(format!(
                        "template `{code}` {installed} is installed already: nothing to do"
                    ));
                    return Ok(report);
                }
                Ordering::Less => {
                    let (line, column) = version_place(text);
                    let message = format!(
                        "template `{code}` {installed} is installed; {given} is older, so nothing was installed \
                         (install a version newer than {installed})"
                    );
                    return Err(EngineError::Template(vec![Problem { line, column, message }]));
                }
                Ordering::Greater => {}
            }
        }
        let problems = self.check_template(&template, text).await?;
        if !problems.is_empty() {
            return Err(EngineError::Template(problems));
        }
        self.apply_template(&template, previous, &mut report).await?;
        let bound = &self.settings().constants;
        report.to_bind = template
            .constants
            .iter()
            .map(|c| c.get_ref().code.clone())
            .filter(|code| !bound.contains_key(code))
            .collect();
        let sourced: HashSet<String> = self.trigger_catalog().into_iter().map(|t| t.code).collect();
        report.to_source = template
            .triggers
            .iter()
            .map(|t| t.get_ref().code.clone())
            .filter(|code| !sourced.contains(code))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(report)
    }

    /// The templates installed, each with its version and what it declared.
    pub async fn installed_templates(&self) -> Result<Vec<crate::domain::InstalledTemplate>> {
        Ok(self.store.templates().await?)
    }

    /// Every problem of a template against this portal, each with its place.
    pub async fn check_template(&self, template: &Template, text: &str) -> Result<Vec<Problem>> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = location(text, span.start);
            Problem { line, column, message }
        };
        let mut problems = Vec::new();
        if template.format != crate::domain::TEMPLATE_FORMAT {
            problems.push(Problem {
                line: 1,
                column: 1,
                message: format!(
                    "format {} is not one this host reads; it reads format {}",
                    template.format,
                    crate::domain::TEMPLATE_FORMAT
                ),
            });
        }

        let settings = self.settings();
        let mut known = Known {
            pipelines: settings.pipelines.clone(),
            fields: settings.fields.clone(),
            constants: settings.constants.keys().cloned().collect(),
        };
        known
            .constants
            .extend(self.store.constant_decls().await?.into_iter().map(|c| c.code));
        // The template's own pipelines are what its robots are written for.
        let mut seen = HashSet::new();
        for spanned in &template.pipelines {
            let pipeline = spanned.get_ref();
            if !seen.insert(pipeline.code.clone()) {
                problems.push(at(
                    spanned.span(),
                    format!("pipeline `{}` is declared twice", pipeline.code),
                ));
            }
            if pipeline.stages.is_empty() {
                problems.push(at(
                    spanned.span(),
                    format!("pipeline `{}` has no stages", pipeline.code),
                ));
            }
            let mut stages = HashSet::new();
            for stage in &pipeline.stages {
                if !stages.insert(&stage.code) {
                    let message = format!("pipeline `{}` has stage `{}` twice", pipeline.code, stage.code);
                    problems.push(at(spanned.span(), message));
                }
            }
            known.pipelines.insert(pipeline.code.clone(), pipeline.clone());
        }
        let mut declared = Vec::new();
        for spanned in &template.fields {
            let field = spanned.get_ref();
            if let Err(e) = field.check() {
                problems.push(at(spanned.span(), format!("custom {e}")));
            }
            match settings.fields.get(field.kind, &field.code) {
                Some(portal) if portal.value_type != field.value_type || portal.multiple != field.multiple => {
                    let message = format!(
                        "custom field `{}` of {} is declared in the portal as {}; the template declares {}",
                        field.code,
                        field.kind.as_str(),
                        shape(portal),
                        shape(field)
                    );
                    problems.push(at(spanned.span(), message));
                }
                Some(_) => {}
                None => declared.push(field.clone()),
            }
        }
        known.fields = Schema::new(settings.fields.all().cloned().chain(declared));
        for spanned in &template.constants {
            known.constants.insert(spanned.get_ref().code.clone());
        }

        problems.extend(robot_reference_problems(template, text));
        problems.extend(self.constant_problems(template, text));
        for spanned in &template.robots {
            let robot = &spanned.get_ref().binding;
            let name = format!("robot `{}` at {}/{}", robot.robot, robot.pipeline, robot.stage);
            let (pipeline, refusals) = self.check_robot(&known.pipelines, robot);
            let mut found: Vec<String> = refusals.into_iter().map(|r| describe(r, &template.packages)).collect();
            known.check_robot(pipeline.map(|p| p.kind), robot, &mut found);
            problems.extend(found.into_iter().map(|m| at(spanned.span(), format!("{name}: {m}"))));
        }
        for spanned in &template.triggers {
            let trigger = spanned.get_ref();
            let name = format!("trigger `{}` at {}/{}", trigger.code, trigger.pipeline, trigger.stage);
            let (pipeline, refusals) = check_trigger(&known.pipelines, trigger);
            let mut found: Vec<String> = refusals.into_iter().map(|r| describe(r, &template.packages)).collect();
            if let (Some(pipeline), Some(condition)) = (pipeline, &trigger.condition) {
                known.check_condition(pipeline.kind, condition, &mut found);
            }
            problems.extend(found.into_iter().map(|m| at(spanned.span(), format!("{name}: {m}"))));
        }
        Ok(problems)
    }

    /// The portal's automation as a template: pipelines, custom fields,
    /// declared constants, robots and triggers in stage order, and the
    /// plugins they use.
    pub async fn export_template(&self, code: &str, version: &str) -> Result<String> {
        let pipelines = self.store.pipelines().await?;
        let position = |pipeline: &str, stage: &str| {
            let p = pipelines.iter().position(|p| p.code == pipeline);
            let s = p.and_then(|p| pipelines[p].position(stage));
            (p, s)
        };
        let mut robots = self.store.all_robots().await?;
        robots.sort_by_key(|r| (position(&r.pipeline, &r.stage), r.id));
        let mut triggers = self.store.all_triggers().await?;
        triggers.sort_by_key(|t| (position(&t.pipeline, &t.stage), t.id));
        let keys = self.export_keys(&robots).await?;
        let mut packages: Vec<String> = robots.iter().map(|r| r.plugin.clone()).collect();
        packages.sort();
        packages.dedup();
        let template = Template {
            format: crate::domain::TEMPLATE_FORMAT,
            code: code.into(),
            version: version.into(),
            names: Default::default(),
            packages,
            constants: self.store.constant_decls().await?.into_iter().map(spanned).collect(),
            fields: self.store.custom_fields().await?.into_iter().map(spanned).collect(),
            pipelines: pipelines.into_iter().map(spanned).collect(),
            robots: robots
                .into_iter()
                .map(|mut r| {
                    let key = keys.get(&r.id.to_string()).cloned();
                    for value in r.properties.values_mut() {
                        *value = rename_robots(value, &|id| keys.get(id).cloned());
                    }
                    spanned(TemplateRobot {
                        key,
                        binding: RobotBinding { id: 0, ..r },
                    })
                })
                .collect(),
            triggers: triggers
                .into_iter()
                .map(|t| spanned(TriggerBinding { id: 0, ..t }))
                .collect(),
        };
        Ok(template.to_toml())
    }
}

/// Where the `version` key stands, for a problem with the version.
fn version_place(text: &str) -> (usize, usize) {
    text.lines()
        .position(|l| l.trim_start().starts_with("version"))
        .map_or((1, 1), |i| (i + 1, 1))
}

/// Whether a template-local robot id can be written in `{=Robot.ID.X}`
/// and told from a stored robot's number.
fn is_local_id(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.chars().all(|c| c.is_ascii_digit())
}

/// Problems with the robots' template-local ids and the `{=Robot.ID.X}`
/// references between them: an id is a name used once; a reference names
/// an earlier robot of the same stage by its id.
fn robot_reference_problems(template: &Template, text: &str) -> Vec<Problem> {
    let at = |span: Range<usize>, message: String| {
        let (line, column) = location(text, span.start);
        Problem { line, column, message }
    };
    let mut problems = Vec::new();
    let mut earlier: Vec<(&str, &str, &str)> = Vec::new();
    for spanned in &template.robots {
        let robot = spanned.get_ref();
        let binding = &robot.binding;
        let name = format!("robot `{}` at {}/{}", binding.robot, binding.pipeline, binding.stage);
        for (code, value) in &binding.properties {
            for key in referenced_robots(value) {
                if key.chars().all(|c| c.is_ascii_digit()) {
                    problems.push(at(
                        spanned.span(),
                        format!(
                            "{name}: property `{code}`: `{{=Robot.{key}...}}` names a robot by a portal's number; \
                             in a template give the robot an `id` (such as `id = \"call1\"`) and write `{{=Robot.call1...}}`"
                        ),
                    ));
                } else if !earlier
                    .iter()
                    .any(|(k, p, s)| *k == key && *p == binding.pipeline && *s == binding.stage)
                {
                    problems.push(at(
                        spanned.span(),
                        format!(
                            "{name}: property `{code}`: no earlier robot of {}/{} in the template has the id `{key}`",
                            binding.pipeline, binding.stage
                        ),
                    ));
                }
            }
        }
        if let Some(key) = &robot.key {
            if !is_local_id(key) {
                let message =
                    format!("{name}: id `{key}` is not a name of letters, digits, `_` and `-` (and not only digits)");
                problems.push(at(spanned.span(), message));
            } else if earlier.iter().any(|(k, _, _)| k == key) {
                problems.push(at(spanned.span(), format!("{name}: id `{key}` is given to two robots")));
            }
            earlier.push((key, &binding.pipeline, &binding.stage));
        }
    }
    problems
}

impl Engine {
    /// The template-local ids exported robots get, by stored id: only
    /// robots another robot names in `{=Robot.ID.X}` get one. A robot a
    /// template installed keeps that template's id for it; the others are
    /// `robot1`, `robot2`... in export order.
    async fn export_keys(&self, robots: &[RobotBinding]) -> Result<HashMap<String, String>> {
        let mut installed: HashMap<String, String> = HashMap::new();
        for template in self.store.templates().await? {
            for (key, robot) in template.robots {
                if robot.id != 0 && is_local_id(&key) {
                    installed.insert(robot.id.to_string(), key);
                }
            }
        }
        let named: HashSet<String> = robots
            .iter()
            .flat_map(|r| r.properties.values().flat_map(referenced_robots))
            .collect();
        let mut keys = HashMap::new();
        let mut n = 0;
        for robot in robots {
            let id = robot.id.to_string();
            if !named.contains(&id) {
                continue;
            }
            let key = match installed.get(&id) {
                Some(key) if !keys.values().any(|k| k == key) => key.clone(),
                _ => loop {
                    n += 1;
                    let key = format!("robot{n}");
                    if !installed.values().any(|k| *k == key) {
                        break key;
                    }
                },
            };
            keys.insert(id, key);
        }
        Ok(keys)
    }

    /// Problems with how the template's robots use constants of declared
    /// types: the portal's declarations, else the template's.
    fn constant_problems(&self, template: &Template, text: &str) -> Vec<Problem> {
        // The portal's own declarations are checked with every robot
        // (`check_robot`); these are the ones the template adds.
        let portal = &self.settings().constant_decls;
        let decls: HashMap<String, ConstantDecl> = (template.constants.iter().map(Spanned::get_ref))
            .filter(|c| !portal.contains_key(&c.code))
            .map(|c| (c.code.clone(), c.clone()))
            .collect();
        let mut problems = Vec::new();
        for spanned in &template.constants {
            let constant = spanned.get_ref();
            if let Some(ours) = portal.get(&constant.code)
                && ours.value_type != constant.value_type
            {
                let (line, column) = location(text, spanned.span().start);
                let message = format!(
                    "constant `{}` is declared in the portal as {}; the template declares {}",
                    constant.code,
                    ours.value_type.as_str(),
                    constant.value_type.as_str()
                );
                problems.push(Problem { line, column, message });
            }
        }
        for spanned in &template.robots {
            let binding = &spanned.get_ref().binding;
            let name = format!("robot `{}` at {}/{}", binding.robot, binding.pipeline, binding.stage);
            for (field, problem) in self.constant_type_problems(binding, &decls) {
                let (line, column) = location(text, spanned.span().start);
                let message = format!("{name}: `{field}`: {problem}");
                problems.push(Problem { line, column, message });
            }
        }
        problems
    }
}
