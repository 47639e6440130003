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
//! pipeline = "general"
//! stage = "NEW"
//! plugin = "standard"
//! robot = "task"
//! recipient = { constant = "Clerk" }
//! properties = { title = "Prepare the contract" }
//! ```
//!
//! Parsing keeps where each item stands in the file, so every problem found
//! when checking a template names its line and column.

use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::automation::{Pipeline, RobotBinding, TriggerBinding};
use super::catalog::{Localized, ValueType};
use super::field::FieldDecl;

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
    pub robots: Vec<Spanned<RobotBinding>>,
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
        assert_eq!(robot.get_ref().robot, "notify");
    }
}
