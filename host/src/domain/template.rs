//! Industry templates: one versioned TOML file describing pipelines and their
//! stages, custom fields, global constants (declared here, bound to users or
//! values by the admin after installing), the robots and triggers of each
//! stage, and the plugin packages they need.
//!
//! ```toml
//! format = 1
//! code = "prom2b"
//! version = "1.0.0"
//! names = { en = "Prom2B", ru = "Пром2Б" }
//! packages = ["standard"]
//!
//! [[constants]]
//! code = "Clerk"
//! type = "user"
//! names = { en = "Clerk", ru = "Делопроизводитель" }
//!
//! [[fields]]
//! kind = "deal"
//! code = "UF_IN_STOCK"
//! type = "boolean"
//! names = { en = "In stock?", ru = "Товары есть на складе" }
//!
//! [[pipelines]]
//! code = "general"
//! kind = "deal"
//! names = { en = "General", ru = "Общее" }
//! stages = [{ code = "NEW", semantic = "in-progress", names = { en = "New" } }]
//!
//! [[robots]]
//! id = "contract"          # optional: how later robots name it
//! pipeline = "general"
//! stage = "NEW"
//! plugin = "standard"
//! robot = "task"
//! recipient = { constant = "Clerk" }
//! properties = { title = "Prepare the contract" }
//!
//! [[robots]]
//! pipeline = "general"
//! stage = "NEW"
//! plugin = "standard"
//! robot = "notify"
//! timing = { after_previous = true }
//! properties = { text = "Task {=Robot.contract.task_id} is open" }
//! ```
//!
//! A robot of the portal is named by its id (`{=Robot.12.X}`); a robot of a
//! template by its template-local `id`, which installing rewrites to the id
//! the robot gets, and exporting back ([`rename_robots`]).
//!
//! Parsing keeps where each item stands in the file, so every problem found
//! when checking a template names its line and column.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::automation::{Pipeline, RobotBinding, TriggerBinding};
use super::catalog::{Localized, ValueType};
use super::field::FieldDecl;
use super::value::{FieldValue, Timestamp, Value};

/// The template format this host reads and writes.
pub const TEMPLATE_FORMAT: u32 = 1;

/// A template file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The version of this file format: [`TEMPLATE_FORMAT`].
    pub format: u32,
    /// Names the template, such as `prom2b`.
    pub code: String,
    /// The template's own version, such as `1.0.0`.
    pub version: String,
    #[serde(default)]
    pub names: Localized,
    /// Plugins the robots need, by name.
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub constants: Vec<Spanned<ConstantDecl>>,
    #[serde(default)]
    pub fields: Vec<Spanned<FieldDecl>>,
    #[serde(default)]
    pub pipelines: Vec<Spanned<Pipeline>>,
    #[serde(default)]
    pub robots: Vec<Spanned<TemplateRobot>>,
    #[serde(default)]
    pub triggers: Vec<Spanned<TriggerBinding>>,
}

/// A global constant the template's robots use; the admin binds its value.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConstantDecl {
    /// Referenced as `{=GlobalConst.CODE}` or as a recipient.
    pub code: String,
    /// The type of its value, usually `user`.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default)]
    pub names: Localized,
}

/// A robot of a template: its binding, and the template-local name other
/// robots of the template use for it in `{=Robot.NAME.VALUE}` (its `id` key,
/// a text; a stored robot's id is a number the template cannot know).
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateRobot {
    pub key: Option<String>,
    pub binding: RobotBinding,
}

impl Serialize for TemplateRobot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Item<'r> {
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'r str>,
            #[serde(flatten)]
            binding: &'r RobotBinding,
        }
        let binding = RobotBinding {
            id: 0,
            ..self.binding.clone()
        };
        Item {
            id: self.key.as_deref(),
            binding: &binding,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TemplateRobot {
    /// The binding's own keys go to [`RobotBinding`] as they come (so its
    /// problems keep their place in the file); `id` is taken out first.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{self, IntoDeserializer, MapAccess, Visitor};

        struct WithoutId<'k, A> {
            map: A,
            key: &'k mut Option<String>,
        }
        impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutId<'_, A> {
            type Error = A::Error;
            fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
                loop {
                    let Some(key) = self.map.next_key::<String>()? else {
                        return Ok(None);
                    };
                    if key == "id" {
                        *self.key = Some(self.map.next_value()?);
                        continue;
                    }
                    return seed.deserialize(key.into_deserializer()).map(Some);
                }
            }
            fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
                self.map.next_value_seed(seed)
            }
        }
        struct Item;
        impl<'de> Visitor<'de> for Item {
            type Value = TemplateRobot;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a robot: pipeline, stage, plugin, robot and its settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TemplateRobot, A::Error> {
                let mut key = None;
                let binding =
                    RobotBinding::deserialize(de::value::MapAccessDeserializer::new(WithoutId { map, key: &mut key }))?;
                Ok(TemplateRobot { key, binding })
            }
        }
        deserializer.deserialize_map(Item)
    }
}

/// Every `{=Robot.KEY.VALUE}` in a property's texts with its KEY renamed by
/// `rename` (left as it is where `rename` gives nothing).
pub fn rename_robots(value: &FieldValue, rename: &dyn Fn(&str) -> Option<String>) -> FieldValue {
    let text = |t: &str| Value::Text(rename_in(t, rename));
    match value {
        FieldValue::Single(Value::Text(t)) => FieldValue::Single(text(t)),
        FieldValue::List(items) => FieldValue::List(
            items
                .iter()
                .map(|v| match v {
                    Value::Text(t) => text(t),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The robot keys a property's `{=Robot.KEY.VALUE}` expressions name.
pub fn referenced_robots(value: &FieldValue) -> Vec<String> {
    let found = std::cell::RefCell::new(Vec::new());
    rename_robots(value, &|key| {
        found.borrow_mut().push(key.to_owned());
        None
    });
    found.into_inner()
}

fn rename_in(text: &str, rename: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{=") {
        let Some(len) = rest[start..].find('}') else { break };
        let (before, expr, after) = (&rest[..start], &rest[start..start + len + 1], &rest[start + len + 1..]);
        out.push_str(before);
        let inner = expr[2..expr.len() - 1].trim();
        let parts: Vec<&str> = inner.split('.').collect();
        match parts.as_slice() {
            ["Robot", key, value] => match rename(key) {
                Some(new) => out.push_str(&format!("{{=Robot.{new}.{value}}}")),
                None => out.push_str(expr),
            },
            _ => out.push_str(expr),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Orders two versions such as `1.2.0` and `1.10`: part by part, numbers as
/// numbers, a missing part as 0.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| v.trim().split(['.', '-']).map(str::to_owned).collect::<Vec<_>>();
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).map_or("0", String::as_str),
            b.get(i).map_or("0", String::as_str),
        );
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// A template as installed in the portal: its version, and each item as that
/// version declared it, which is also what installing it put in the portal
/// unless the portal had the item already. An upgrade compares the portal
/// with this to tell what the admin changed since.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstalledTemplate {
    pub code: String,
    pub version: String,
    #[serde(default)]
    pub names: Localized,
    pub installed_at: Timestamp,
    /// Earlier versions installed, oldest first.
    #[serde(default)]
    pub history: Vec<InstalledVersion>,
    #[serde(default)]
    pub pipelines: Vec<Pipeline>,
    /// The template's pipelines the portal had before it: the admin's,
    /// never changed and never given the template's robots or triggers.
    #[serde(default)]
    pub foreign: Vec<String>,
    #[serde(default)]
    pub fields: Vec<FieldDecl>,
    #[serde(default)]
    pub constants: Vec<ConstantDecl>,
    /// By key ([`TemplateRobot::key`], else its place and kind): the
    /// binding as declared, references rewritten, with the id it has in the
    /// portal (0 when it was not placed).
    #[serde(default)]
    pub robots: BTreeMap<String, RobotBinding>,
    /// By key (place, code and occurrence), with the id in the portal.
    #[serde(default)]
    pub triggers: BTreeMap<String, TriggerBinding>,
}

/// One version of a template that was installed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstalledVersion {
    pub version: String,
    pub installed_at: Timestamp,
}

/// A problem in a template, with where it stands in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

/// Where byte `offset` of `text` stands: (line, column), both from 1.
pub fn location(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    (line, column)
}

impl Template {
    /// Each robot's key in an [`InstalledTemplate`]: its `id`, else
    /// `PIPELINE/STAGE/PLUGIN.ROBOT/TITLE#N` (the N-th such robot there),
    /// so a robot without an `id` is followed across versions while its
    /// place, robot and title stay.
    pub fn robot_keys(&self) -> Vec<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let robots = self.robots.iter().map(|r| r.get_ref());
        robots
            .map(|r| match &r.key {
                Some(key) => key.clone(),
                None => {
                    let b = &r.binding;
                    let place = format!("{}/{}/{}.{}/{}", b.pipeline, b.stage, b.plugin, b.robot, b.title);
                    let n = seen.entry(place.clone()).or_default();
                    *n += 1;
                    format!("{place}#{n}")
                }
            })
            .collect()
    }

    /// Each trigger's key in an [`InstalledTemplate`]:
    /// `PIPELINE/STAGE/CODE#N`.
    pub fn trigger_keys(&self) -> Vec<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        (self.triggers.iter().map(|t| t.get_ref()))
            .map(|t| {
                let place = format!("{}/{}/{}", t.pipeline, t.stage, t.code);
                let n = seen.entry(place.clone()).or_default();
                *n += 1;
                format!("{place}#{n}")
            })
            .collect()
    }

    /// Reads a template; a syntax or shape error is one problem with its
    /// location.
    pub fn parse(text: &str) -> Result<Template, Problem> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |span| location(text, span.start));
            Problem {
                line,
                column,
                message: e.message().to_owned(),
            }
        })
    }

    /// Writes a template as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("templates serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_its_line_and_column() {
        let text = "format = 1\ncode = \"t\"\nversion = \"1\"\n[[pipelines]]\ncode = 5\n";
        let problem = Template::parse(text).unwrap_err();
        assert_eq!((problem.line, problem.column), (5, 8), "{problem}");
        assert!(problem.message.contains("string"), "{problem}");
    }

    #[test]
    fn items_keep_their_place_in_the_file() {
        let text = "format = 1\ncode = \"t\"\nversion = \"1\"\n\n[[robots]]\npipeline = \"p\"\nstage = \"S\"\nplugin = \"standard\"\nrobot = \"notify\"\n";
        let template = Template::parse(text).unwrap();
        let robot = &template.robots[0];
        assert_eq!(location(text, robot.span().start).0, 5);
        assert_eq!(robot.get_ref().binding.robot, "notify");
        assert_eq!(robot.get_ref().key, None);
    }

    const TWO: &str = "format = 1\ncode = \"t\"\nversion = \"1\"\n\n[[robots]]\nid = \"call1\"\npipeline = \"p\"\nstage = \"S\"\nplugin = \"standard\"\nrobot = \"call\"\n\n[[robots]]\npipeline = \"p\"\nstage = \"S\"\nplugin = \"standard\"\nrobot = \"notify\"\nproperties = { text = \"Call {=Robot.call1.activity_id} at {=Document.TITLE}\" }\n";

    #[test]
    fn a_robot_has_a_template_local_id_that_round_trips() {
        let template = Template::parse(TWO).unwrap();
        assert_eq!(template.robots[0].get_ref().key.as_deref(), Some("call1"));
        assert_eq!(template.robots[0].get_ref().binding.id, 0);
        assert_eq!(template.robot_keys(), ["call1", "p/S/standard.notify/#1"]);
        let again = Template::parse(&template.to_toml()).unwrap();
        assert_eq!(again.robots[0].get_ref(), template.robots[0].get_ref());
        assert_eq!(again.robots[1].get_ref(), template.robots[1].get_ref());
        assert!(
            template
                .to_toml()
                .contains("[[robots]]\nid = \"call1\"\npipeline = \"p\""),
            "{}",
            template.to_toml()
        );
    }

    #[test]
    fn a_robot_s_problems_keep_their_place_and_a_numeric_id_is_refused() {
        let unknown = TWO.replace("robot = \"notify\"", "robot = \"notify\"\ncolour = 1");
        let problem = Template::parse(&unknown).unwrap_err();
        assert!(problem.message.contains("unknown field `colour`"), "{problem}");
        assert!(problem.line >= 12, "{problem}");
        let numeric = TWO.replace("id = \"call1\"", "id = 7");
        let problem = Template::parse(&numeric).unwrap_err();
        assert_eq!(problem.line, 6, "{problem}");
        assert!(problem.message.contains("expected a string"), "{problem}");
        let wrong = TWO.replace(
            "stage = \"S\"\nplugin = \"standard\"\nrobot = \"call\"",
            "stage = 5\nplugin = \"standard\"\nrobot = \"call\"",
        );
        let problem = Template::parse(&wrong).unwrap_err();
        assert_eq!((problem.line, problem.column), (8, 9), "{problem}");
    }

    #[test]
    fn robot_references_are_renamed_and_found() {
        let value = FieldValue::List(vec![
            Value::Text("a {=Robot.call1.x} b {=Robot.7.y}{=Document.TITLE}".into()),
            Value::Integer(3),
        ]);
        let renamed = rename_robots(&value, &|k| (k == "call1").then(|| "12".to_owned()));
        assert_eq!(
            renamed,
            FieldValue::List(vec![
                Value::Text("a {=Robot.12.x} b {=Robot.7.y}{=Document.TITLE}".into()),
                Value::Integer(3)
            ])
        );
        assert_eq!(referenced_robots(&value), ["call1", "7"]);
        assert_eq!(
            rename_robots(&FieldValue::Single(Value::Text("{=Robot.a".into())), &|_| Some(
                "b".into()
            )),
            FieldValue::Single(Value::Text("{=Robot.a".into()))
        );
    }

    #[test]
    fn versions_compare_part_by_part() {
        assert_eq!(compare_versions("1.10.0", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare_versions("1", "2.0.0"), Ordering::Less);
    }
}
