//! The data the end-to-end tests share, so each test file states only its
//! intent: the moment the portal's clock stands at, the `general` deal
//! pipeline, the Moscow calendar, a deal, the portals built from them, and
//! the publisher whose packages a portal trusts. A test that needs other
//! data writes it in place.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use robohost::api::NewEntityRequest;
use robohost::domain::Entity;
use robohost::domain::{Calendar, Capability, Permission, Pipeline, Timestamp};
use robohost::engine::{Engine, EngineConfig, ManualClock};
use robohost::package::Trust;
use serde_json::{Value, json};

use crate::db::{Db, engine};
use crate::plugin_path;

/// A moment written in RFC 3339, such as `2026-11-25T10:00:00+03:00`.
pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// Wednesday 2026-11-25, 10:00 in Moscow: where every portal's clock stands
/// until a test moves it.
pub fn wednesday() -> Timestamp {
    at("2026-11-25T10:00:00+03:00")
}

/// A value written as JSON, such as a pipeline or a robot binding.
pub fn json<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The deal pipeline `general`: NEW → WORK → WON / LOST.
pub fn general() -> Pipeline {
    json(
        r#"{"code": "general", "kind": "deal", "names": {"en": "General"}, "stages": [
            {"code": "NEW", "names": {"en": "New"}, "semantic": "in-progress"},
            {"code": "WORK", "names": {"en": "In work"}, "semantic": "in-progress"},
            {"code": "WON", "names": {"en": "Won"}, "semantic": "success"},
            {"code": "LOST", "names": {"en": "Lost"}, "semantic": "failure"}]}"#,
    )
}

/// A pipeline `code` of entities of `kind` whose stages, all in progress,
/// are `stages` in order.
pub fn pipeline(code: &str, kind: &str, stages: &[&str]) -> Pipeline {
    let stages: Vec<Value> = stages
        .iter()
        .map(|stage| json!({"code": stage, "names": {}, "semantic": "in-progress"}))
        .collect();
    serde_json::from_value(json!({"code": code, "kind": kind, "names": {}, "stages": stages}))
        .unwrap_or_else(|e| panic!("pipeline {code}: {e}"))
}

/// Moscow's working week, with Monday 2026-11-30 a public holiday.
pub fn calendar() -> Value {
    json!({"time_zone": "Europe/Moscow", "holidays": ["2026-11-30"]})
}

/// The plugins of the engine scenarios, installed with every capability.
pub const SCENARIO_PLUGINS: [&str; 3] = ["bench", "assign_by_amount", "hostile"];

/// A new deal `Pumps` of `amount` roubles entering `stage` of `general`,
/// user 1 responsible, as the API takes it.
pub fn deal(stage: &str, amount: &str) -> Value {
    json!({"kind": "deal", "pipeline": "general", "stage": stage, "responsible": 1,
        "fields": {"TITLE": "Pumps", "OPPORTUNITY": {"money": format!("{amount} RUB")}}})
}

/// The [`deal`] as the engine takes it.
pub fn deal_request(stage: &str, amount: &str) -> NewEntityRequest {
    serde_json::from_value(deal(stage, amount)).unwrap()
}

/// Creates the entity a request describes, as `POST /api/entities` does.
pub async fn create(engine: &Engine, request: NewEntityRequest) -> Entity {
    let (draft, links) = request.into_entity().expect("a valid entity request");
    engine.create_entity(draft, links).await.unwrap()
}

/// The engine scenarios' portal: [`general`], the Moscow [`calendar`] and
/// the [`SCENARIO_PLUGINS`], on a new database of kind `db` with the clock
/// at [`wednesday`].
pub async fn portal(db: Db) -> (Arc<Engine>, Arc<ManualClock>) {
    let (engine, clock) = engine(db, wednesday(), EngineConfig::default()).await;
    engine.put_pipeline(&general()).await.unwrap();
    // What the bench `echo` robot writes.
    crate::declare(&engine, &[("deal", "UF_ECHO", "text")]).await;
    let calendar: Calendar = serde_json::from_value(calendar()).unwrap();
    engine.set_calendar(&calendar).await.unwrap();
    for name in SCENARIO_PLUGINS {
        let wasm = std::fs::read(plugin_path(name)).unwrap_or_else(|e| panic!("reading plugin {name}: {e}"));
        engine
            .install_plugin(name, wasm, Capability::ALL.to_vec())
            .await
            .unwrap();
    }
    (engine, clock)
}

/// An engine on a new database of kind `db` with nothing set up, the clock
/// at [`wednesday`].
pub async fn empty_portal(db: Db) -> Arc<Engine> {
    engine(db, wednesday(), EngineConfig::default()).await.0
}

/// An [`empty_portal`] with the standard robots installed.
pub async fn standard_portal(db: Db) -> Arc<Engine> {
    let engine = empty_portal(db).await;
    engine.install_standard().await.unwrap();
    engine
}

/// The key of `acme`, the publisher the tests' packages come from.
pub fn publisher() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// An admin's trust in [`publisher`] alone; unsigned packages refused.
pub fn trust() -> Trust {
    Trust {
        publishers: vec![("acme".into(), publisher().verifying_key())],
        allow_unsigned: false,
    }
}

/// Permissions from their comma-separated form, such as
/// `set-fields,write:deal`.
pub fn perms(list: &str) -> Vec<Permission> {
    list.split(',')
        .map(|p| p.parse().unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect()
}

/// A package `name` whose one trigger component is the compiled plugin
/// `plugin`, providing trigger `codes` (`"a", "b"`), signed by
/// [`publisher`].
pub fn trigger_package(name: &str, plugin: &str, codes: &str) -> Vec<u8> {
    let component = format!("components/{plugin}.wasm");
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\
         description = \"Triggers\"\n\n[[triggers]]\ncomponent = \"{component}\"\ncodes = [{codes}]\n"
    );
    let wasm = std::fs::read(plugin_path(plugin)).unwrap_or_else(|e| panic!("reading plugin {plugin}: {e}"));
    let files = [(component, wasm)].into_iter().collect();
    robohost::package::pack(&manifest, &files, Some(&publisher())).unwrap()
}
