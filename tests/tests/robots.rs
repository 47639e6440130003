//! Useful robots in the real sandbox: the effects and values they produce.

use robohost::domain::{Capability, Effect, EntityKind, EntityRef, FieldValue, Value};
use robohost::runtime::{Denied, Grants, Outcome, SandboxConfig};
use robohost_tests::*;

/// The deal of `fixtures::deal` as stored: number 42, with `responsible`.
fn deal(amount: &str, responsible: u64) -> robohost::domain::Entity {
    let mut deal = fixtures::deal("NEW", amount);
    (deal["id"], deal["responsible"]) = (42.into(), responsible.into());
    serde_json::from_value(deal).unwrap()
}

const BANDS: &str = r#"{"bounds": [{"decimal": "100000"}, {"decimal": "1000000"}],
                        "users": [{"user": 7}, {"user": 8}, {"user": 9}]}"#;

#[test]
fn assign_by_amount_picks_the_band_and_comments() {
    let sandbox = sandbox(SandboxConfig::default());
    let plugin = load(&sandbox, "assign_by_amount");
    let this = EntityRef {
        kind: EntityKind::Deal,
        id: 42,
    };
    for (amount, user, band) in [
        ("99999.99", 7, 1),
        ("100000", 8, 2),
        ("250000.50", 8, 2),
        ("5000000", 9, 3),
    ] {
        let deal = deal(amount, 1);
        let report = run(
            &sandbox,
            &plugin,
            "assign_by_amount",
            &deal,
            &props(BANDS),
            context(&deal, vec![]),
        );
        assert_eq!(report.outcome, Outcome::Success, "{amount}: {:?}", report.logs);
        assert_eq!(
            report.effects[0],
            Effect::ChangeResponsible { target: this, user },
            "{amount}"
        );
        match &report.effects[1] {
            Effect::AddComment { target, text } => {
                assert_eq!(*target, this);
                assert!(text.contains(&format!("band {band} of 3")), "{text}");
            }
            other => panic!("expected a comment, got {other:?}"),
        }
        assert_eq!(report.effects.len(), 2);
        assert_eq!(report.returns["assigned_user"], FieldValue::Single(Value::User(user)));
        assert_eq!(report.returns["band"], FieldValue::Single(Value::Integer(band)));
    }
}

#[test]
fn assign_by_amount_keeps_a_responsible_already_in_place() {
    let sandbox = sandbox(SandboxConfig::default());
    let plugin = load(&sandbox, "assign_by_amount");
    let deal = deal("500", 7);
    let report = run(
        &sandbox,
        &plugin,
        "assign_by_amount",
        &deal,
        &props(BANDS),
        context(&deal, vec![]),
    );
    assert_eq!(report.outcome, Outcome::Success);
    assert!(
        !report
            .effects
            .iter()
            .any(|e| matches!(e, Effect::ChangeResponsible { .. })),
        "{:?}",
        report.effects
    );
}

#[test]
fn assign_by_amount_explains_bad_properties() {
    let sandbox = sandbox(SandboxConfig::default());
    let plugin = load(&sandbox, "assign_by_amount");
    let deal = deal("500", 1);
    let cases = [
        (
            r#"{"bounds": [{"decimal": "5"}, {"decimal": "1"}], "users": [{"user": 1}, {"user": 2}, {"user": 3}]}"#,
            "bounds",
        ),
        (r#"{"bounds": [{"decimal": "5"}], "users": [{"user": 1}]}"#, "users"),
        (r#"{"users": [{"user": 1}]}"#, "bounds"),
    ];
    for (properties, named) in cases {
        let report = run(
            &sandbox,
            &plugin,
            "assign_by_amount",
            &deal,
            &props(properties),
            context(&deal, vec![]),
        );
        match &report.outcome {
            Outcome::RobotError { code, message, .. } => {
                assert_eq!(code, "bad_property", "{properties}");
                assert!(message.contains(named), "{message} should name `{named}`");
            }
            other => panic!("{properties}: expected a robot error, got {other:?}"),
        }
        assert!(report.effects.is_empty());
    }
    let no_amount = entity(r#"{"kind": "deal", "id": 42}"#);
    let report = run(
        &sandbox,
        &plugin,
        "assign_by_amount",
        &no_amount,
        &props(BANDS),
        context(&no_amount, vec![]),
    );
    assert!(
        matches!(&report.outcome, Outcome::RobotError { code, message, .. } if code == "no_amount" && message.contains("OPPORTUNITY")),
        "{:?}",
        report.outcome
    );
}

#[test]
fn related_totals_reads_linked_deals() {
    let sandbox = sandbox(SandboxConfig::default());
    let plugin = load(&sandbox, "related_totals");
    let company = entity(r#"{"kind": "company", "id": 5, "fields": {"TITLE": "Rosneftemash"}}"#);
    let deals = vec![
        entity(r#"{"kind": "deal", "id": 1, "fields": {"OPPORTUNITY": {"money": "1000.50 RUB"}}}"#),
        entity(r#"{"kind": "deal", "id": 2, "fields": {"OPPORTUNITY": {"money": "2000 RUB"}}}"#),
        entity(r#"{"kind": "deal", "id": 3, "fields": {"OPPORTUNITY": {"money": "10 EUR"}}}"#),
        entity(r#"{"kind": "contact", "id": 4}"#),
    ];
    let report = run(
        &sandbox,
        &plugin,
        "related_totals",
        &company,
        &props("{}"),
        context(&company, deals),
    );
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.logs);
    let this = EntityRef {
        kind: EntityKind::Company,
        id: 5,
    };
    let Effect::SetFields { target, fields } = &report.effects[0] else {
        panic!("{:?}", report.effects)
    };
    assert_eq!(*target, this);
    assert_eq!(fields["UF_DEALS_COUNT"], FieldValue::Single(Value::Integer(3)));
    assert_eq!(fields["UF_DEALS_TOTAL"].to_string(), "3000.50 RUB");
    assert_eq!(report.returns["skipped"], FieldValue::Single(Value::Integer(1)));

    // Without `crm-read` the robot is told, and the run says why it failed.
    let report = run_with(
        &sandbox,
        &plugin,
        "related_totals",
        &company,
        &props("{}"),
        context(&company, vec![]),
        Grants::NONE.with(Capability::SetFields),
        None,
    );
    assert!(
        matches!(
            report.outcome,
            Outcome::CapabilityDenied {
                denied: Denied::Capability(Capability::CrmRead),
                ..
            }
        ),
        "{:?}",
        report.outcome
    );
    assert!(report.effects.is_empty());
}

#[test]
fn the_same_input_uses_the_same_fuel() {
    let sandbox = sandbox(SandboxConfig::default());
    let plugin = load(&sandbox, "assign_by_amount");
    let deal = deal("250000", 1);
    let fuel: Vec<u64> = (0..5)
        .map(|_| {
            run(
                &sandbox,
                &plugin,
                "assign_by_amount",
                &deal,
                &props(BANDS),
                context(&deal, vec![]),
            )
            .fuel_used
        })
        .collect();
    assert!(fuel[0] > 0);
    assert!(fuel.iter().all(|f| *f == fuel[0]), "{fuel:?}");

    let bench = load(&sandbox, "bench");
    let crunch = |rounds: i64| {
        let p = props(&format!(r#"{{"rounds": {rounds}}}"#));
        run(&sandbox, &bench, "crunch", &deal, &p, context(&deal, vec![]))
    };
    let (a, b, more) = (crunch(10_000), crunch(10_000), crunch(20_000));
    assert_eq!(a.fuel_used, b.fuel_used);
    assert_eq!(a.returns, b.returns);
    assert!(more.fuel_used > a.fuel_used);
}

#[test]
fn describe_lists_robots_with_typed_properties() {
    let sandbox = sandbox(SandboxConfig::default());
    let plugin = load(&sandbox, "assign_by_amount");
    let robot = &plugin.robots()[0];
    assert_eq!(robot.code, "assign_by_amount");
    assert!(robot.names.contains_key("en") && robot.names.contains_key("ru"));
    assert_eq!(
        robot.capabilities,
        [Capability::ChangeResponsible, Capability::AddComment]
    );
    let bounds = robot
        .properties
        .iter()
        .find(|p| p.code == "bounds")
        .expect("bounds property");
    assert!(bounds.required && bounds.multiple);
    let field = robot
        .properties
        .iter()
        .find(|p| p.code == "amount_field")
        .expect("amount_field property");
    assert_eq!(
        field.default,
        Some(FieldValue::Single(Value::Text("OPPORTUNITY".into())))
    );
    assert!(robot.returns.iter().any(|p| p.code == "assigned_user"));
}
