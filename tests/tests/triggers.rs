//! Trigger plugins in the real sandbox: a telephony webhook becomes hits.

use robohost::domain::{EntityKind, FieldValue, HitTarget, InboundCall, Value};
use robohost::runtime::{Grants, Outcome, SandboxConfig};
use robohost_tests::*;

fn post(body: &str) -> InboundCall {
    InboundCall {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn a_call_notice_becomes_a_hit_on_the_caller() {
    let sandbox = sandbox(SandboxConfig::default());
    let wasm = std::fs::read(plugin_path("call_notice")).unwrap();
    let nobody = entity(r#"{"kind": "deal", "id": 1}"#);
    let plugin = sandbox
        .load_trigger("call_notice", &wasm, &context(&nobody, vec![]))
        .unwrap();
    let codes: Vec<_> = plugin.triggers().iter().map(|t| t.code.as_str()).collect();
    assert_eq!(codes, ["incoming_call", "missed_call"]);

    let handle = |body: &str| sandbox.handle(&plugin, &post(body), Grants::ALL, context(&nobody, vec![]));
    let report = handle(
        r#"{"event": "call_end", "direction": "inbound", "from": "+7 (912) 345-67-89", "duration": 125, "call_id": "abc-1"}"#,
    );
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.logs);
    assert_eq!(report.hits.len(), 1);
    let hit = &report.hits[0];
    assert_eq!(hit.trigger, "incoming_call");
    assert_eq!(
        hit.target,
        HitTarget::Lookup {
            kind: EntityKind::Contact,
            code: "PHONE".into(),
            value: Value::Text("+79123456789".into())
        }
    );
    assert_eq!(hit.data["DURATION"], FieldValue::Single(Value::Integer(125)));
    assert!(report.logs.iter().any(|l| l.message.contains("incoming_call")));

    let missed = handle(r#"{"event": "call_missed", "direction": "inbound", "from": "8 912 345 67 89"}"#);
    assert_eq!(missed.hits[0].trigger, "missed_call");
    let outbound = handle(r#"{"event": "call_end", "direction": "outbound", "from": "+74951234567", "duration": 60}"#);
    assert_eq!(outbound.outcome, Outcome::Success);
    assert!(outbound.hits.is_empty());

    let bad = handle(r#"{"event": "call_end", "direction": "inbound"}"#);
    assert!(
        matches!(&bad.outcome, Outcome::RobotError { code, message, .. } if code == "bad_payload" && message.contains("`from`")),
        "{:?}",
        bad.outcome
    );
    assert!(bad.hits.is_empty());
}

#[test]
fn a_robot_plugin_is_not_a_trigger_plugin() {
    let sandbox = sandbox(SandboxConfig::default());
    let nobody = entity(r#"{"kind": "deal", "id": 1}"#);
    let robot = std::fs::read(plugin_path("bench")).unwrap();
    let err = sandbox
        .load_trigger("bench", &robot, &context(&nobody, vec![]))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("does not fit the trigger world"), "{err}");
    let trigger = std::fs::read(plugin_path("call_notice")).unwrap();
    let err = sandbox
        .load("call_notice", &trigger, &context(&nobody, vec![]))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("does not fit the robot world"), "{err}");
}
