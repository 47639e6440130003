//! The RF segmentation example robot (`plugins/rf-segmentation`) through the
//! engine: each client's segment from the days since their last purchase
//! and their number of purchases. The same table is the reference for the
//! example in every SDK language, each packed, signed and installed as a
//! package.

use robohost::api::NewEntityRequest;
use robohost::domain::RunStatus;
use robohost::domain::{Entity, FieldValue, Fields, RobotBinding, Timestamp, Value};
use robohost::engine::EngineConfig;
use robohost::runtime::{Grants, Plugin, SandboxConfig};
use robohost_tests::db::{Db, engine};
use robohost_tests::fixtures::{perms, pipeline, publisher, trust};
use robohost_tests::{
    c_plugin_path, context, entity, js_plugin_path, plugin_path, props, python_plugin_path, run_with, sandbox,
};

/// Clients: (days since the last purchase, purchases, expected segment).
const CLIENTS: [(i64, i64, &str); 10] = [
    (3, 1, "new"),
    (30, 2, "promising"),
    (10, 5, "loyal"),
    (90, 7, "loyal"),
    (31, 1, "wandering"),
    (60, 4, "wandering"),
    (91, 2, "dormant"),
    (120, 6, "at_risk"),
    (181, 9, "lost"),
    (400, 1, "lost"),
];

#[tokio::test]
async fn in_rust_each_client_gets_the_segment_of_its_recency_and_frequency() {
    segments_from(std::fs::read(plugin_path("rf_segmentation")).unwrap()).await;
}

#[tokio::test]
async fn in_python_each_client_gets_the_same_segment() {
    segments_from(std::fs::read(python_plugin_path("rf_segmentation")).unwrap()).await;
}

#[tokio::test]
async fn in_javascript_each_client_gets_the_same_segment() {
    segments_from(std::fs::read(js_plugin_path("rf_segmentation")).unwrap()).await;
}

#[tokio::test]
async fn in_c_each_client_gets_the_same_segment() {
    segments_from(std::fs::read(c_plugin_path("rf_segmentation")).unwrap()).await;
}

/// The RF robot's package as its publisher ships it: signed, asking to set
/// the segment field of contacts.
fn package(wasm: Vec<u8>) -> Vec<u8> {
    let manifest = "[package]\nname = \"rf\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\
                    description = \"RF segmentation\"\n\n\
                    [capabilities]\nhost = [\"set-fields\"]\nwrite = [\"contact\"]\nfields = [\"UF_RF_SEGMENT\"]\n\n\
                    [[robots]]\ncomponent = \"rf.wasm\"\ncodes = [\"rf_segment\"]\n";
    let files = [("rf.wasm".to_owned(), wasm)].into_iter().collect();
    robohost::package::pack(manifest, &files, Some(&publisher())).unwrap()
}

/// Packs the component `wasm` as the RF robot's package, installs it as an
/// admin would and checks every client of the table.
async fn segments_from(wasm: Vec<u8>) {
    // Wednesday 2026-11-25 12:00 UTC: day 20782 since the epoch.
    let now = Timestamp(20_782 * 86_400_000 + 12 * 3_600_000);
    let (engine, _) = engine(Db::Sqlite, now, EngineConfig::default()).await;
    let approved = perms("set-fields,write:contact,field:UF_RF_SEGMENT");
    let report = engine
        .install_package(&package(wasm), &trust(), &approved)
        .await
        .unwrap();
    assert_eq!(
        (report.plugins, report.signed_by.as_deref()),
        (vec!["rf".to_owned()], Some("acme"))
    );
    let fields = [
        ("contact", "UF_PURCHASES", "integer"),
        ("contact", "UF_LAST_PURCHASE", "date"),
    ];
    robohost_tests::declare(&engine, &fields).await;
    let segments = ["new", "promising", "wandering", "dormant", "loyal", "at_risk", "lost"];
    let segment = serde_json::json!({"kind": "contact", "code": "UF_RF_SEGMENT", "type": "option",
        "options": segments.map(|code| serde_json::json!({"code": code, "names": {}}))});
    engine
        .declare_field(&serde_json::from_value(segment).unwrap())
        .await
        .unwrap();
    engine
        .put_pipeline(&pipeline("clients", "contact", &["ACTIVE"]))
        .await
        .unwrap();
    let robot: RobotBinding =
        serde_json::from_str(r#"{"pipeline": "clients", "stage": "ACTIVE", "plugin": "rf", "robot": "rf_segment"}"#)
            .unwrap();
    engine.add_robot(&robot).await.unwrap();

    let mut clients = Vec::new();
    for (days, purchases, expected) in CLIENTS {
        let last = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap() - chrono::Duration::days(days);
        let request: NewEntityRequest = serde_json::from_str(&format!(
            r#"{{"kind": "contact", "pipeline": "clients", "fields": {{"UF_PURCHASES": {purchases}, "UF_LAST_PURCHASE": {{"date": "{last}"}}}}}}"#
        ))
        .unwrap();
        let (draft, links) = request.into_entity().unwrap();
        clients.push((engine.create_entity(draft, links).await.unwrap(), expected));
    }
    let never: NewEntityRequest = serde_json::from_str(r#"{"kind": "contact", "pipeline": "clients"}"#).unwrap();
    let (draft, links) = never.into_entity().unwrap();
    let never = engine.create_entity(draft, links).await.unwrap();
    engine.run_until_idle().await.unwrap();

    for (client, expected) in clients {
        let stored = engine.store().entity(client.reference()).await.unwrap().unwrap();
        assert_eq!(
            stored.field("UF_RF_SEGMENT"),
            Some(&FieldValue::Single(Value::Option(expected.into()))),
            "{}",
            client.reference()
        );
    }
    let run = engine
        .store()
        .runs(Some(never.reference()), 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(run.status, RunStatus::Dead);
    let report = serde_json::to_string(&run.report).unwrap();
    assert!(report.contains("has made no purchase yet"), "{report}");
}

/// The C robot is the Rust one, the reference: the same catalog, and the
/// same outcome, effects and returned values on every path, failures
/// included (the Python and JavaScript robots check less of their input).
#[test]
fn in_c_the_catalog_and_every_failure_are_the_rust_ones() {
    let sandbox = sandbox(SandboxConfig::default());
    let probe = entity(r#"{"kind": "contact", "id": 1}"#);
    let load = |path: std::path::PathBuf| {
        let wasm = std::fs::read(&path).unwrap();
        sandbox
            .load("rf", &wasm, &context(&probe, vec![]))
            .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
    };
    let rust = load(plugin_path("rf_segmentation"));
    let c = load(c_plugin_path("rf_segmentation"));
    assert_eq!(c.robots(), rust.robots());

    // (custom fields of a contact, properties); runs at 2025-11-25 08:00 UTC.
    let cases = [
        (
            r#"{"UF_PURCHASES": 3, "UF_LAST_PURCHASE": {"date": "2025-10-01"}}"#,
            "{}",
        ),
        (
            r#"{"UF_PURCHASES": 9, "UF_LAST_PURCHASE": {"datetime": "2025-11-01T23:59:59Z"}}"#,
            "{}",
        ),
        (
            r#"{"UF_PURCHASES": 1, "UF_LAST_PURCHASE": {"date": "1969-12-31"}}"#,
            "{}",
        ),
        (
            r#"{"UF_PURCHASES": 0, "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            "{}",
        ),
        (
            r#"{"UF_PURCHASES": 2, "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            r#"{"frequent": 2, "segment_field": "UF_SEG"}"#,
        ),
        (
            r#"{"UF_N": 4, "UF_LAST": {"date": "2025-08-01"}}"#,
            r#"{"purchases_field": "UF_N", "last_purchase_field": "UF_LAST"}"#,
        ),
        (
            r#"{"UF_PURCHASES": 2, "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            r#"{"recent_days": []}"#,
        ),
        (
            r#"{"UF_PURCHASES": 2, "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            r#"{"recent_days": 100}"#,
        ),
        (
            r#"{"UF_PURCHASES": 2, "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            r#"{"recent_days": "soon"}"#,
        ),
        (
            r#"{"UF_PURCHASES": 2, "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            r#"{"frequent": [1, 2]}"#,
        ),
        (
            r#"{"UF_PURCHASES": 2, "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            r#"{"segment_field": 7}"#,
        ),
        (
            r#"{"UF_PURCHASES": "many", "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            "{}",
        ),
        (
            r#"{"UF_PURCHASES": [1, 2], "UF_LAST_PURCHASE": {"date": "2025-11-20"}}"#,
            "{}",
        ),
        (
            r#"{"UF_PURCHASES": 2, "UF_LAST_PURCHASE": [{"date": "2025-11-20"}, {"date": "2025-11-21"}]}"#,
            "{}",
        ),
        (r#"{"UF_PURCHASES": 3}"#, "{}"),
        (r#"{"UF_LAST_PURCHASE": "yesterday"}"#, "{}"),
        ("{}", "{}"),
    ];
    let report = |plugin: &Plugin, client: &Entity, properties: &Fields, grants: Grants| {
        let report = run_with(
            &sandbox,
            plugin,
            "rf_segment",
            client,
            properties,
            context(client, vec![]),
            grants,
            None,
        );
        serde_json::json!({"outcome": report.outcome, "effects": report.effects, "returns": report.returns})
    };
    let mut seen = std::collections::BTreeSet::new();
    for (fields, properties) in cases {
        let client = entity(&format!(r#"{{"kind": "contact", "id": 7, "custom_fields": {fields}}}"#));
        let properties = props(properties);
        // Everything granted, then nothing: `set-fields` denied.
        for granted in [true, false] {
            let grants = || if granted { Grants::ALL } else { Grants::NONE };
            let expected = report(&rust, &client, &properties, grants());
            assert_eq!(
                report(&c, &client, &properties, grants()),
                expected,
                "{fields} with {properties:?}"
            );
            let outcome = &expected["outcome"];
            seen.insert(
                outcome["code"]
                    .as_str()
                    .unwrap_or(outcome["outcome"].as_str().unwrap())
                    .to_owned(),
            );
        }
    }
    // Every path of the robot was taken.
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "bad_field",
            "bad_property",
            "capability-denied",
            "no_last_purchase",
            "no_purchases",
            "success"
        ]
    );
}
