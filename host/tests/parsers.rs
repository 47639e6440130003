//! The parsers of what people and plugin authors write, under generated
//! input (proptest): expressions, conditions, templates and package
//! manifests. None panics, and every error names its place: an
//! expression's byte position, a template's line and column, a manifest's
//! field or line.

use std::collections::BTreeMap;

use proptest::prelude::*;
use robohost::domain::{Condition, Entity, ExprError, FieldValue, Template, Value, check, evaluate};
use robohost::engine::PROM2B;
use robohost::package::{Limits, PackageError, TrustSpec, open, pack};

/// Pieces that make expressions, conditions and TOML interesting.
const PIECES: &[&str] = &[
    "{=",
    "}",
    ".",
    "Document",
    "GlobalConst",
    "Robot",
    "Event",
    "Responsible",
    "Supervisor",
    "TITLE",
    "UF_X",
    "=",
    "\"",
    "'",
    "[",
    "]",
    "{",
    ",",
    ":",
    "\n",
    " ",
    "#",
    "\\",
    "é",
    "ж",
    "😀",
    "\u{0}",
    "0",
    "-1",
    "1e9",
    "true",
    "null",
    "all",
    "any",
    "compare",
    "field",
    "op",
    "value",
    "ge",
    "contains",
    "money",
    "RUB",
    "[[robots]]",
    "[[pipelines]]",
    "[package]",
    "[capabilities]",
    "code",
    "stage",
    "name",
    "version",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(PIECES).prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// `base` with a span replaced: deleted, or with generated text put in.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    let len = base.len();
    (0..=len, 0..64usize, text()).prop_map(move |(at, cut, put)| {
        let start = floor_char(base, at);
        let end = floor_char(base, (start + cut).min(len));
        format!("{}{put}{}", &base[..start], &base[end..])
    })
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where an expression error says it is, if it says.
fn position(e: &ExprError) -> Option<usize> {
    match e {
        ExprError::Unclosed { at, .. }
        | ExprError::EmptyName { at, .. }
        | ExprError::UnknownNamespace { at, .. }
        | ExprError::Malformed { at, .. } => Some(*at),
        ExprError::Item { error, .. } => position(error),
        _ => None,
    }
}

fn deal() -> Entity {
    serde_json::from_value(serde_json::json!({
        "kind": "deal", "id": 1, "pipeline": "general", "stage": "NEW", "responsible": 7,
        "fields": {"TITLE": "Pumps", "OPPORTUNITY": {"money": "150000.00 RUB"}},
        "custom_fields": {"UF_X": 3},
    }))
    .unwrap()
}

const MANIFEST: &str = r#"[package]
name = "extras"
version = "1.0.0"
publisher = "acme"
wit = "0.1.0"

[capabilities]
host = ["crm-read", "notify"]
read = ["deal"]
http = ["api.example.com"]

[fuel]
default = 1000000

[[robots]]
component = "robot.wasm"
codes = ["notify"]
"#;

proptest! {
    // No regression files in the source tree: a failure prints its input.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_expression_error_points_at_its_opening(s in text()) {
        let value = FieldValue::Single(Value::Text(s.clone()));
        if let Err(e) = check(&value) {
            let at = position(&e).expect("a syntax error names its position");
            prop_assert!(s.is_char_boundary(at) && s[at..].starts_with("{="), "{e} in {s:?}");
        }
    }

    #[test]
    fn a_list_of_expressions_names_the_bad_item(items in prop::collection::vec(text(), 1..4)) {
        let value = FieldValue::List(items.iter().cloned().map(Value::Text).collect());
        if let Err(e) = check(&value) {
            let ExprError::Item { index, .. } = &e else {
                panic!("an error in a list names its item: {e}");
            };
            prop_assert!(check(&FieldValue::Single(Value::Text(items[*index].clone()))).is_err());
        }
    }

    #[test]
    fn a_condition_parses_or_says_where_and_evaluates_without_panic(s in text()) {
        let json = format!("{{\"compare\": {{\"field\": \"OPPORTUNITY\", \"op\": \"ge\", \"value\": {s}}}}}");
        match serde_json::from_str::<Condition>(&json) {
            Ok(condition) => {
                let _ = evaluate(&condition, &deal());
            }
            Err(e) => prop_assert!(e.line() >= 1 && e.to_string().contains(" line "), "{e}"),
        }
    }

    #[test]
    fn a_condition_tree_of_any_shape_evaluates_without_panic(s in text()) {
        let json = format!("{{\"any\": [{{\"all\": [{s}]}}]}}");
        if let Ok(condition) = serde_json::from_str::<Condition>(&json) {
            let _ = evaluate(&condition, &deal());
        }
    }

    #[test]
    fn a_template_error_names_a_line_and_column_in_the_file(t in mutated(PROM2B)) {
        if let Err(problem) = Template::parse(&t) {
            let lines = t.lines().count() + 1;
            prop_assert!(problem.line <= lines, "{problem} of {lines} lines");
            prop_assert!(problem.line == 0 || problem.column >= 1, "{problem}");
            prop_assert!(!problem.message.is_empty());
        }
    }

    #[test]
    fn a_manifest_error_names_its_field_or_line(m in mutated(MANIFEST)) {
        let files = BTreeMap::from([("robot.wasm".to_owned(), b"\0asm\x0d\0\x01\0".to_vec())]);
        let trust = TrustSpec { publishers: BTreeMap::new(), allow_unsigned: true }.decode().unwrap();
        // Packing checks the manifest as installing does; either refusal
        // names the field, or for the file as a whole, its line.
        let refused = match pack(&m, &files, None) {
            Ok(archive) => open(&archive, &Limits::default(), &trust).err(),
            Err(e) => Some(e),
        };
        if let Some(PackageError::BadManifest { field, problem }) = refused {
            prop_assert!(!field.is_empty() && !problem.is_empty());
            if field == "(file)" {
                prop_assert!(
                    problem.contains("line ") || problem.contains("bytes") || problem.contains("UTF-8"),
                    "{problem}"
                );
            }
        }
    }
}

#[test]
fn the_bases_are_valid() {
    Template::parse(PROM2B).unwrap();
    let files = BTreeMap::from([("robot.wasm".to_owned(), b"\0asm\x0d\0\x01\0".to_vec())]);
    let trust = TrustSpec {
        publishers: BTreeMap::new(),
        allow_unsigned: true,
    }
    .decode()
    .unwrap();
    open(&pack(MANIFEST, &files, None).unwrap(), &Limits::default(), &trust).unwrap();
}
