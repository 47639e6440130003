//! The RF segmentation example robot (`plugins/rf-segmentation`) through the
//! engine: each client's segment from the days since their last purchase
//! and their number of purchases. The same table is the reference for the
//! example in every SDK language.

use robohost::domain::{Capability, FieldValue, Pipeline, RobotBinding, Timestamp, Value};
use robohost::engine::{EngineConfig, NewEntityRequest};
use robohost::storage::RunStatus;
use robohost_tests::db::{Db, engine};
use robohost_tests::{js_plugin_path, plugin_path, python_plugin_path};

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

/// Installs the component `wasm` as the RF robot and checks every client of
/// the table.
async fn segments_from(wasm: Vec<u8>) {
    // Wednesday 2026-11-25 12:00 UTC: day 20782 since the epoch.
    let now = Timestamp(20_782 * 86_400_000 + 12 * 3_600_000);
    let (engine, _) = engine(Db::Sqlite, now, EngineConfig::default()).await;
    engine
        .install_plugin("rf", wasm, vec![Capability::SetFields])
        .await
        .unwrap();
    let pipeline: Pipeline = serde_json::from_str(
        r#"{"code": "clients", "kind": "contact", "names": {}, "stages": [{"code": "ACTIVE", "names": {}, "semantic": "in-progress"}]}"#,
    )
    .unwrap();
    engine.put_pipeline(&pipeline).await.unwrap();
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
        clients.push((engine.create_entity(request).await.unwrap(), expected));
    }
    let never: NewEntityRequest = serde_json::from_str(r#"{"kind": "contact", "pipeline": "clients"}"#).unwrap();
    let never = engine.create_entity(never).await.unwrap();
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
