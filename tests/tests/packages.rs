//! Installing plugin packages: approval of the permissions a package
//! requests, the permission diff of an upgrade, components checked in the
//! sandbox before anything is stored, and the kinds and fields a package's
//! robots reach enforced on every host call. The message of each kind of
//! manifest problem is a snapshot in `tests/ui/manifests` (`ui.rs`).

use robohost::api::NewEntityRequest;
use robohost::domain::{Permission, RobotBinding};
use robohost::engine::{EngineConfig, EngineError};
use robohost::package::Trust;
use robohost::runtime::LoadError;
use robohost_tests::db::Db;
use robohost_tests::fixtures::{create, deal_request, empty_portal, general, json, perms, pipeline, publisher, trust};
use robohost_tests::plugin_path;

/// A package signed by `acme` holding the compiled plugin `plugin` as its
/// one component, providing `codes` and requesting `capabilities` (the
/// body of the manifest's `[capabilities]` table).
fn package(version: &str, plugin: &str, codes: &str, capabilities: &str) -> Vec<u8> {
    let wasm = std::fs::read(plugin_path(plugin)).unwrap();
    let component = format!("components/{plugin}.wasm");
    let manifest = format!(
        "[package]\nname = \"assign\"\nversion = \"{version}\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\
         description = \"Assigns deals by amount\"\n\n[capabilities]\n{capabilities}\n\n\
         [[robots]]\ncomponent = \"{component}\"\ncodes = [{codes}]\n"
    );
    let files = [(component, wasm)].into_iter().collect();
    robohost::package::pack(&manifest, &files, Some(&publisher())).unwrap()
}

/// The pipeline `general` whose stage NEW runs the package's robot; returns
/// the robot's id.
async fn place_assign_robot(engine: &robohost::engine::Engine) -> u64 {
    engine.put_pipeline(&general()).await.unwrap();
    let robot: RobotBinding = serde_json::from_str(
        r#"{"pipeline": "general", "stage": "NEW", "plugin": "assign", "robot": "assign_by_amount",
            "properties": {"bounds": [{"decimal": "100"}], "users": [{"user": 7}, {"user": 8}]}}"#,
    )
    .unwrap();
    engine.add_robot(&robot).await.unwrap()
}

const ASSIGN: &str = r#"host = ["change-responsible", "add-comment"]
write = ["deal"]"#;

fn approved() -> Vec<Permission> {
    perms("change-responsible,add-comment,write:deal")
}

async fn a_package_installs_only_once_approved_and_its_robot_runs(db: Db) {
    let engine = empty_portal(db).await;
    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, ASSIGN);

    let refused = engine
        .install_package(&v1, &trust(), &perms("add-comment,write:deal"))
        .await;
    let Err(EngineError::Unapproved { needed, .. }) = refused else {
        panic!("installed without approval: {refused:?}");
    };
    assert_eq!(needed, perms("change-responsible"));
    assert!(
        engine.store().active_package("assign").await.unwrap().is_none(),
        "nothing stored"
    );
    assert!(engine.plugin_robots("assign").is_empty(), "nothing loaded");

    let report = engine.install_package(&v1, &trust(), &approved()).await.unwrap();
    assert_eq!(report.plugins, ["assign"]);
    assert_eq!(report.signed_by.as_deref(), Some("acme"));
    assert_eq!((report.previous, report.added.len()), (None, 3));
    let stored = engine.store().active_package("assign").await.unwrap().unwrap();
    assert_eq!((stored.version.as_str(), stored.signed), ("1.0.0", true));

    place_assign_robot(&engine).await;
    let deal = create(&engine, deal_request("NEW", "500")).await;
    engine.run_until_idle().await.unwrap();
    let stored = engine.store().entity(deal.reference()).await.unwrap().unwrap();
    assert_eq!(stored.responsible, Some(8));
}

async fn an_upgrade_shows_its_capability_diff_and_needs_approval_again(db: Db) {
    let engine = empty_portal(db).await;
    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, ASSIGN);
    engine.install_package(&v1, &trust(), &approved()).await.unwrap();

    let v2 = package(
        "1.1.0",
        "assign_by_amount",
        r#""assign_by_amount""#,
        "host = [\"change-responsible\", \"crm-read\"]\nread = [\"contact\"]\nwrite = [\"deal\"]",
    );
    let refused = engine.install_package(&v2, &trust(), &approved()).await;
    let Err(EngineError::Unapproved { needed, added, .. }) = &refused else {
        panic!("upgraded without approval: {refused:?}");
    };
    assert_eq!(needed, &perms("crm-read,read:contact"));
    assert_eq!(added, needed);
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("new in this version: crm-read, read:contact"),
        "{message}"
    );
    assert_eq!(
        engine.store().active_package("assign").await.unwrap().unwrap().version,
        "1.0.0"
    );

    let approved = perms("change-responsible,crm-read,read:contact,write:deal");
    let report = engine.install_package(&v2, &trust(), &approved).await.unwrap();
    assert_eq!(report.previous.as_deref(), Some("1.0.0"));
    assert_eq!(report.added, perms("crm-read,read:contact"));
    assert_eq!(report.removed, perms("add-comment"));
    assert_eq!(
        engine.store().active_package("assign").await.unwrap().unwrap().version,
        "1.1.0"
    );
}

async fn a_component_that_does_not_fit_leaves_nothing_behind(db: Db) {
    let engine = empty_portal(db).await;
    // A trigger component declared as a robot: the wrong world.
    let wrong_world = package("1.0.0", "call_notice", r#""call_notice""#, "");
    let refused = engine.install_package(&wrong_world, &trust(), &[]).await;
    assert!(
        matches!(refused, Err(EngineError::Plugin(LoadError::WrongWorld { .. }))),
        "{refused:?}"
    );
    // A robot the component does not provide.
    let missing = package("1.0.0", "assign_by_amount", r#""teleport""#, ASSIGN);
    let refused = engine
        .install_package(&missing, &trust(), &approved())
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("`robots[0].codes`: `components/assign_by_amount.wasm` provides no robot `teleport`"),
        "{refused}"
    );
    assert!(engine.store().active_package("assign").await.unwrap().is_none());
    assert!(engine.store().plugins().await.unwrap().is_empty(), "no plugin stored");

    // A package signed by a stranger is refused by its own error.
    let stranger = Trust::default();
    let refused = engine
        .install_package(
            &package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, ASSIGN),
            &stranger,
            &approved(),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("publisher `acme` is not one this host trusts"),
        "{refused}"
    );
}

async fn rollback_returns_to_the_previous_version_and_removal_disables_its_robots(db: Db) {
    let engine = empty_portal(db).await;
    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, ASSIGN);
    engine.install_package(&v1, &trust(), &approved()).await.unwrap();
    let v2 = package(
        "2.0.0",
        "assign_by_amount",
        r#""assign_by_amount""#,
        "host = [\"change-responsible\"]\nwrite = [\"deal\"]",
    );
    engine
        .install_package(&v2, &trust(), &perms("change-responsible,write:deal"))
        .await
        .unwrap();

    let report = engine.rollback_package("assign").await.unwrap();
    assert_eq!(
        (report.version.as_str(), report.previous.as_deref()),
        ("1.0.0", Some("2.0.0"))
    );
    assert_eq!(report.permissions, perms("change-responsible,add-comment,write:deal"));
    assert_eq!(report.added, perms("add-comment"));
    assert_eq!(report.signed_by.as_deref(), Some("acme"));
    assert_eq!(
        engine.store().active_package("assign").await.unwrap().unwrap().version,
        "1.0.0"
    );

    // A robot uses the package: removal is refused, naming it...
    let id = place_assign_robot(&engine).await;
    let refused = engine.remove_package("assign", false).await.unwrap_err().to_string();
    assert!(refused.contains(&format!("used by robots {id}")), "{refused}");
    assert!(engine.store().active_package("assign").await.unwrap().is_some());

    // ...and forced, it disables the robot, whose runs end cancelled with the reason.
    assert_eq!(engine.remove_package("assign", true).await.unwrap(), [id]);
    assert!(engine.store().active_package("assign").await.unwrap().is_none());
    assert!(engine.plugin_robots("assign").is_empty());
    let disabled = engine.store().robot(id).await.unwrap().unwrap();
    assert_eq!(disabled.disabled.as_deref(), Some("package `assign` was removed"));
    let request: NewEntityRequest = serde_json::from_str(r#"{"kind": "deal", "pipeline": "general"}"#).unwrap();
    let (draft, links) = request.into_entity().unwrap();
    let deal = engine.create_entity(draft, links).await.unwrap();
    engine.run_until_idle().await.unwrap();
    let run = engine.store().runs(Some(deal.reference()), 10).await.unwrap().remove(0);
    assert_eq!(run.status, robohost::domain::RunStatus::Cancelled);
    assert_eq!(
        run.report.unwrap().reason,
        Some(robohost::domain::NotRun::RobotDisabled {
            because: "package `assign` was removed".into()
        })
    );
}

async fn packages_and_trust_over_http(db: Db) {
    let s = robohost_tests::http::server(db).await;
    let key = hex::encode(publisher().verifying_key().to_bytes());
    let trust = serde_json::json!({"publishers": {"acme": key}});
    s.json("PUT", "/api/trust", &s.admin, trust).await.expect(200);
    let bad_key = serde_json::json!({"publishers": {"acme": "beef"}});
    s.json("PUT", "/api/trust", &s.admin, bad_key).await.error(
        422,
        "invalid",
        Some("trust"),
        "publishers.acme: the key is not 32 bytes in hex",
    );

    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, ASSIGN);
    let gzip = Some("application/gzip");
    let path = "/api/packages?approve=change-responsible,add-comment,write:deal";
    let report = s.send("POST", path, Some(&s.admin), gzip, v1.clone()).await.expect(200);
    assert_eq!(report["plugins"], serde_json::json!(["assign"]));
    assert_eq!(report["signed_by"], "acme");
    let listed = s.get("/api/packages", &s.admin).await.expect(200);
    assert_eq!(listed[0]["version"], "1.0.0");

    let unapproved = s.send("POST", "/api/packages", Some(&s.admin), gzip, v1.clone()).await;
    assert_eq!(unapproved.status, 422);
    let message = unapproved.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("not approved: change-responsible, add-comment, write:deal"),
        "{message}"
    );
    let mut tampered = v1.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    let refused = s.send("POST", path, Some(&s.admin), gzip, tampered).await;
    assert_eq!(refused.status, 422, "{:?}", refused.json());
    let manager = s.token("manager").await;
    assert_eq!(s.send("POST", path, Some(&manager), gzip, v1).await.status, 403);

    let removed = s
        .send("DELETE", "/api/packages/assign", Some(&s.admin), None, "")
        .await
        .expect(200);
    assert_eq!(removed["disabled_robots"], serde_json::json!([]));
    assert_eq!(
        s.get("/api/packages", &s.admin).await.expect(200),
        serde_json::json!([])
    );
}

/// One record of a hostile archive: a kind, a name, the size its header
/// declares, and the data that follows (streamed, and not always that size).
type Record = (tar::EntryType, &'static [u8], u64, Box<dyn std::io::Read>);

fn record(kind: tar::EntryType, name: &'static [u8], size: u64, data: impl std::io::Read + 'static) -> Record {
    (kind, name, size, Box::new(data))
}

/// A gzip-compressed tar of `records` written header by header, as a
/// hostile uploader would, then the entries of the package `then`.
fn raw_archive(records: Vec<Record>, then: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for (kind, name, size, mut data) in records {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        gz.write_all(header.as_bytes()).unwrap();
        let written = std::io::copy(&mut data, &mut gz).unwrap();
        gz.write_all(&vec![0; ((512 - written % 512) % 512) as usize]).unwrap();
    }
    let mut package = flate2::read::GzDecoder::new(then);
    std::io::copy(&mut package, &mut gz).unwrap();
    gz.finish().unwrap()
}

async fn hostile_archives_get_a_short_refusal_and_a_good_package_installs_after(db: Db) {
    use std::io::Read;
    use tar::EntryType::{Directory, GNULongName, Regular};
    let s = robohost_tests::http::server(db).await;
    let key = hex::encode(publisher().verifying_key().to_bytes());
    let trust = serde_json::json!({"publishers": {"acme": key}});
    s.json("PUT", "/api/trust", &s.admin, trust).await.expect(200);
    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, ASSIGN);
    let long_name = 64 << 20;
    let hostile: [(&str, Vec<u8>, &str); 3] = [
        (
            "a 64 MiB long name",
            raw_archive(
                vec![
                    record(
                        GNULongName,
                        b"././@LongLink",
                        long_name,
                        std::io::repeat(b'a').take(long_name),
                    ),
                    record(Regular, b"x", 1, &b"x"[..]),
                ],
                &v1,
            ),
            "GNU long name of 67108864 bytes; at most 4096 are read",
        ),
        (
            "a folder claiming 8 GiB",
            raw_archive(vec![record(Directory, b"big/", 8 << 30, std::io::empty())], &v1),
            "`big/` is a folder whose header claims 8589934592 bytes",
        ),
        (
            "a direction override in a path",
            raw_archive(
                vec![record(Regular, "evil\u{202E}txt.wasm".as_bytes(), 1, &b"x"[..])],
                &v1,
            ),
            "`evil\\u{202e}txt.wasm` is not a safe path: it holds a Unicode direction mark",
        ),
    ];
    let gzip = Some("application/gzip");
    let path = "/api/packages?approve=change-responsible,add-comment,write:deal";
    for (what, archive, says) in hostile {
        assert!(archive.len() < 1 << 20, "{what}: {} bytes", archive.len());
        let started = std::time::Instant::now();
        let reply = s.send("POST", path, Some(&s.admin), gzip, archive).await;
        let took = started.elapsed();
        assert!(reply.body.len() < 1024, "{what}: a {} byte reply", reply.body.len());
        assert!(took < std::time::Duration::from_secs(5), "{what}: took {took:?}");
        reply.error(422, "bad_plugin", None, says);
    }

    let report = s.send("POST", path, Some(&s.admin), gzip, v1).await.expect(200);
    assert_eq!(report["plugins"], serde_json::json!(["assign"]));
}

/// The compiled plugin `plugin` with a custom section making it another
/// component: the same robots, another digest.
fn variant(plugin: &str) -> Vec<u8> {
    let mut wasm = std::fs::read(plugin_path(plugin)).unwrap();
    let name = b"variant";
    wasm.extend_from_slice(&[0, 1 + name.len() as u8 + 1, name.len() as u8]);
    wasm.extend_from_slice(name);
    wasm.push(2);
    wasm
}

async fn a_run_in_flight_keeps_the_version_it_started_with(db: Db) {
    let engine = empty_portal(db).await;
    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, ASSIGN);
    engine.install_package(&v1, &trust(), &approved()).await.unwrap();
    place_assign_robot(&engine).await;
    let request = || deal_request("NEW", "500");
    let first = create(&engine, request()).await;
    let batch = engine.lease(10).await.unwrap().expect("the run is due");

    // Version 2 arrives while the first run is leased and prepared.
    let wasm = variant("assign_by_amount");
    let manifest = format!(
        "[package]\nname = \"assign\"\nversion = \"2.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\n\
         [capabilities]\n{ASSIGN}\n\n[[robots]]\ncomponent = \"components/assign.wasm\"\ncodes = [\"assign_by_amount\"]\n"
    );
    let files = [("components/assign.wasm".to_owned(), wasm)].into_iter().collect();
    let v2 = robohost::package::pack(&manifest, &files, Some(&publisher())).unwrap();
    engine.install_package(&v2, &trust(), &approved()).await.unwrap();
    assert_eq!(engine.work(batch).await.unwrap(), 1);

    let (draft, links) = request().into_entity().unwrap();
    let second = engine.create_entity(draft, links).await.unwrap();
    engine.run_until_idle().await.unwrap();
    let digest = |deal: robohost::domain::Entity| {
        let engine = engine.clone();
        async move {
            let run = engine.store().runs(Some(deal.reference()), 10).await.unwrap().remove(0);
            assert_eq!(run.status, robohost::domain::RunStatus::Succeeded);
            let report = run.report.unwrap();
            (report.plugin.unwrap(), report.version.unwrap())
        }
    };
    let (old, new) = (digest(first).await, digest(second).await);
    assert_ne!(old.0, new.0, "the second run used version 2");
    let v1_digest = robohost::domain::Digest::of(&std::fs::read(plugin_path("assign_by_amount")).unwrap());
    assert_eq!(old, (v1_digest, "1.0.0".to_owned()), "the run in flight kept version 1");
    assert_eq!(new.1, "2.0.0");
}

/// A package of `related_totals` (reads a company's deals, writes two
/// fields of the company) requesting the kinds and fields in `reach`.
fn totals_package(version: &str, reach: &str) -> Vec<u8> {
    let wasm = std::fs::read(plugin_path("related_totals")).unwrap();
    let files = [("totals.wasm".to_owned(), wasm)].into_iter().collect();
    robohost::package::pack(&totals_manifest(version, reach), &files, Some(&publisher())).unwrap()
}

fn totals_manifest(version: &str, reach: &str) -> String {
    format!(
        "[package]\nname = \"totals\"\nversion = \"{version}\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\n\
         [capabilities]\nhost = [\"crm-read\", \"set-fields\"]\nwrite = [\"company\"]\n{reach}\n\n\
         [[robots]]\ncomponent = \"totals.wasm\"\ncodes = [\"related_totals\"]\n"
    )
}

async fn a_robot_reaches_only_the_kinds_and_fields_its_package_was_granted(db: Db) {
    let engine = empty_portal(db).await;
    for pipeline in [
        pipeline("sales", "deal", &["NEW"]),
        pipeline("accounts", "company", &["ACTIVE"]),
    ] {
        engine.put_pipeline(&pipeline).await.unwrap();
    }
    let fields = [
        ("company", "UF_DEALS_COUNT", "integer"),
        ("company", "UF_DEALS_TOTAL", "money"),
    ];
    robohost_tests::declare(&engine, &fields).await;
    // Granted contacts, not deals.
    let v1 = totals_package(
        "1.0.0",
        "read = [\"contact\"]\nfields = [\"UF_DEALS_COUNT\", \"UF_DEALS_TOTAL\"]",
    );
    let all =
        perms("crm-read,set-fields,read:contact,read:deal,write:company,field:UF_DEALS_COUNT,field:UF_DEALS_TOTAL");
    engine.install_package(&v1, &trust(), &all).await.unwrap();
    let robot: RobotBinding = serde_json::from_str(
        r#"{"pipeline": "accounts", "stage": "ACTIVE", "plugin": "totals", "robot": "related_totals"}"#,
    )
    .unwrap();
    engine.add_robot(&robot).await.unwrap();
    let mut deals = Vec::new();
    for amount in ["100 RUB", "250 RUB"] {
        let deal: NewEntityRequest = serde_json::from_str(&format!(
            r#"{{"kind": "deal", "pipeline": "sales", "fields": {{"OPPORTUNITY": {{"money": "{amount}"}}}}}}"#
        ))
        .unwrap();
        let (draft, links) = deal.into_entity().unwrap();
        deals.push(serde_json::to_string(&engine.create_entity(draft, links).await.unwrap().reference()).unwrap());
    }
    // A company linked to both deals enters ACTIVE; its run's report.
    let company_run = || async {
        let company: NewEntityRequest = serde_json::from_str(&format!(
            r#"{{"kind": "company", "pipeline": "accounts", "links": [{}, {}]}}"#,
            deals[0], deals[1]
        ))
        .unwrap();
        let (draft, links) = company.into_entity().unwrap();
        let company = engine.create_entity(draft, links).await.unwrap();
        engine.run_until_idle().await.unwrap();
        let run = engine
            .store()
            .runs(Some(company.reference()), 10)
            .await
            .unwrap()
            .remove(0);
        let stored = engine.store().entity(company.reference()).await.unwrap().unwrap();
        // As the API serves it.
        (serde_json::to_value(run.report.unwrap()).unwrap(), stored)
    };

    // Listing the company's deals is denied.
    let (report, company) = company_run().await;
    let denied = serde_json::json!({"call": "crm.list-related", "denied": {"kind": "read", "what": "deal"}});
    assert_eq!(
        report["denials"],
        serde_json::json!([denied]),
        "the denial is recorded in the run"
    );
    assert_eq!(report["outcome"]["outcome"], "capability-denied", "{report}");
    assert_eq!(report["outcome"]["denied"], denied["denied"]);
    assert_eq!(company.field("UF_DEALS_COUNT"), None);

    // Deals readable, but only one of the two fields granted.
    let v2 = totals_package("1.1.0", "read = [\"deal\"]\nfields = [\"UF_DEALS_COUNT\"]");
    let report = engine.install_package(&v2, &trust(), &all).await.unwrap();
    assert_eq!(report.added, perms("read:deal"));
    assert_eq!(report.removed, perms("read:contact,field:UF_DEALS_TOTAL"));
    let (report, company) = company_run().await;
    assert_eq!(report["outcome"]["outcome"], "capability-denied", "{report}");
    assert_eq!(report["outcome"]["call"], "effects.set-fields");
    assert_eq!(
        report["outcome"]["denied"],
        serde_json::json!({"kind": "field", "what": "UF_DEALS_TOTAL"})
    );
    assert_eq!(company.field("UF_DEALS_COUNT"), None, "nothing of a denied run applies");

    // Everything it touches granted: the run succeeds.
    let v3 = totals_package(
        "1.2.0",
        "read = [\"deal\"]\nfields = [\"UF_DEALS_COUNT\", \"UF_DEALS_TOTAL\"]",
    );
    engine.install_package(&v3, &trust(), &all).await.unwrap();
    let (report, company) = company_run().await;
    assert_eq!(report["outcome"]["outcome"], "success", "{report}");
    assert_eq!(company.field("UF_DEALS_TOTAL").unwrap().to_string(), "350 RUB");
}

/// What a manifest's capabilities fail to name is refused with the field
/// (`tests/ui/manifests`, `crm_read_without_kinds.toml` and the others),
/// when packed as when opened.
async fn a_manifest_names_what_its_capabilities_reach(db: Db) {
    let files = [("totals.wasm".to_owned(), b"\0asm".to_vec())].into_iter().collect();
    let refused = robohost::package::pack(&totals_manifest("1.0.0", "read = [\"deal\"]"), &files, None).unwrap_err();
    let manifest = include_str!("../ui/manifests/set_fields_without_fields.err");
    assert_eq!(refused.to_string(), manifest.trim_end());
    // A robot that may use a capability its package does not request:
    // installed, with a warning for the admin.
    let engine = empty_portal(db).await;
    let v = package(
        "1.0.0",
        "assign_by_amount",
        r#""assign_by_amount""#,
        "host = [\"change-responsible\"]\nwrite = [\"deal\"]",
    );
    let report = engine
        .install_package(&v, &trust(), &perms("change-responsible,write:deal"))
        .await
        .unwrap();
    assert_eq!(
        report.warnings,
        ["robot `assign_by_amount` may use `add-comment`, which the package does not request: those calls are denied"]
    );
}

/// A service outside the portal: `GET /ping` answers `pong`.
async fn ping_service() -> u16 {
    let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// The `fetch` plugin in a package requesting `http = [HOST]`.
fn fetch_package(host: &str) -> Vec<u8> {
    let wasm = std::fs::read(plugin_path("fetch")).unwrap();
    let manifest = format!(
        "[package]\nname = \"fetch\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\n\
         [capabilities]\nhttp = [\"{host}\"]\n\n\
         [[robots]]\ncomponent = \"fetch.wasm\"\ncodes = [\"fetch\"]\n"
    );
    let files = [("fetch.wasm".to_owned(), wasm)].into_iter().collect();
    robohost::package::pack(&manifest, &files, Some(&publisher())).unwrap()
}

async fn outbound_http_reaches_only_the_hosts_approved(db: Db) {
    let engine = empty_portal(db).await;
    let port = ping_service().await;
    // A name never reaches a local service: `localhost` is no permission,
    // nor an address without its port, in an approval as in a manifest
    // (`tests/ui/manifests/http_localhost.toml`, `http_address_without_port.toml`).
    for (asked, says) in [
        (
            "localhost",
            "a local service is reached only by its exact address and port",
        ),
        ("127.0.0.1", "an address is approved only with its exact port"),
    ] {
        let refused = format!("http:{asked}").parse::<Permission>().unwrap_err().to_string();
        assert!(refused.contains(says), "{refused}");
    }
    let exact = format!("127.0.0.1:{port}");
    let package = fetch_package(&exact);
    let refused = engine
        .install_package(&package, &trust(), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains(&format!("not approved: http:{exact}")), "{refused}");
    engine
        .install_package(&package, &trust(), &perms(&format!("http:{exact}")))
        .await
        .unwrap();

    // The same service at its approved address and port, and as localhost.
    let mut runs = Vec::new();
    for (code, host) in [("near", "127.0.0.1"), ("far", "localhost")] {
        engine.put_pipeline(&pipeline(code, "deal", &["NEW"])).await.unwrap();
        let robot = format!(
            r#"{{"pipeline": "{code}", "stage": "NEW", "plugin": "fetch", "robot": "fetch",
                "properties": {{"authority": "{host}:{port}", "path": "/ping"}}}}"#
        );
        engine.add_robot(&json(&robot)).await.unwrap();
        let deal: NewEntityRequest = json(&format!(r#"{{"kind": "deal", "pipeline": "{code}"}}"#));
        runs.push(create(&engine, deal).await);
    }
    engine.run_until_idle().await.unwrap();
    let report = |deal: &robohost::domain::Entity| {
        let engine = engine.clone();
        let deal = deal.reference();
        async move {
            engine
                .store()
                .runs(Some(deal), 10)
                .await
                .unwrap()
                .remove(0)
                .report
                .map(|r| serde_json::to_value(r).unwrap())
                .unwrap()
        }
    };
    let near = report(&runs[0]).await;
    assert_eq!(near["outcome"]["outcome"], "success", "{near}");
    assert_eq!(near["returns"]["status"], 200);
    assert_eq!(near["returns"]["body"], "pong");
    assert_eq!(
        near["logs"],
        serde_json::json!([{"level": "http", "message": format!("GET http://127.0.0.1:{port}/ping: 200; 0 B sent, 4 B received")}])
    );
    let far = report(&runs[1]).await;
    assert_eq!(far["outcome"]["outcome"], "capability-denied", "{far}");
    assert_eq!(
        far["denials"],
        serde_json::json!([{"call": "wasi:http/outgoing-handler.handle", "denied": {"kind": "http", "what": {
            "scheme": "http", "host": "localhost", "port": port, "reason": "not-approved"
        }}}])
    );
}

async fn a_package_sets_its_robots_fuel_and_the_most_an_admin_may_give(db: Db) {
    let engine = empty_portal(db).await;
    let fuel = format!("{ASSIGN}\n\n[fuel]\ndefault = 1000\nmax = 5000000");
    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, &fuel);
    engine.install_package(&v1, &trust(), &approved()).await.unwrap();
    for code in ["starved", "fed"] {
        engine.put_pipeline(&pipeline(code, "deal", &["NEW"])).await.unwrap();
    }
    let robot = |pipeline: &str, fuel: &str| -> RobotBinding {
        serde_json::from_str(&format!(
            r#"{{"pipeline": "{pipeline}", "stage": "NEW", "plugin": "assign", "robot": "assign_by_amount"{fuel},
                "properties": {{"bounds": [{{"decimal": "100"}}], "users": [{{"user": 7}}, {{"user": 8}}]}}}}"#
        ))
        .unwrap()
    };
    let refused = engine
        .add_robot(&robot("fed", r#", "fuel": 6000000"#))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("`fuel`: 6000000 is more than this robot may get, 5000000"),
        "{refused}"
    );
    // The package's default, 1,000 fuel, is not enough for a run; the
    // robot's own budget, within the package's most, is.
    engine.add_robot(&robot("starved", "")).await.unwrap();
    engine.add_robot(&robot("fed", r#", "fuel": 5000000"#)).await.unwrap();
    let mut deals = Vec::new();
    for pipeline in ["starved", "fed"] {
        let deal: NewEntityRequest = serde_json::from_str(&format!(
            r#"{{"kind": "deal", "pipeline": "{pipeline}", "fields": {{"OPPORTUNITY": {{"money": "500 RUB"}}}}}}"#
        ))
        .unwrap();
        let (draft, links) = deal.into_entity().unwrap();
        deals.push(engine.create_entity(draft, links).await.unwrap().reference());
    }
    engine.run_until_idle().await.unwrap();
    let starved = engine.store().runs(Some(deals[0]), 10).await.unwrap().remove(0);
    let outcome = starved.report.unwrap().outcome.unwrap();
    assert_eq!(outcome.code(), "out-of-fuel", "{outcome}");
    let fed = engine.store().entity(deals[1]).await.unwrap().unwrap();
    assert_eq!(fed.responsible, Some(8));
}

async fn an_upgrade_names_the_placed_robots_it_would_refuse(db: Db) {
    let engine = empty_portal(db).await;
    let fuel = |max: u64| format!("{ASSIGN}\n\n[fuel]\ndefault = 1000\nmax = {max}");
    let v1 = package("1.0.0", "assign_by_amount", r#""assign_by_amount""#, &fuel(5_000_000));
    engine.install_package(&v1, &trust(), &approved()).await.unwrap();
    place_assign_robot(&engine).await;
    let fed: RobotBinding = serde_json::from_str(
        r#"{"pipeline": "general", "stage": "NEW", "plugin": "assign", "robot": "assign_by_amount", "fuel": 5000000,
            "properties": {"bounds": [{"decimal": "100"}], "users": [{"user": 7}, {"user": 8}]}}"#,
    )
    .unwrap();
    let fed = engine.add_robot(&fed).await.unwrap();

    // Version 2 allows less fuel than one placed robot has: installed, and
    // that robot named as placing it now would be refused.
    let v2 = package("2.0.0", "assign_by_amount", r#""assign_by_amount""#, &fuel(1_000_000));
    let report = engine.install_package(&v2, &trust(), &approved()).await.unwrap();
    assert_eq!(
        report.warnings,
        [format!(
            "robot {fed} (`assign_by_amount` at general/NEW) does not fit this version: `fuel`: 5000000 is more than \
             this robot may get, 1000000 (its package's fuel.max, or sandbox.max-fuel)"
        )]
    );
}

robohost_tests::on_both!(
    an_upgrade_names_the_placed_robots_it_would_refuse,
    a_package_sets_its_robots_fuel_and_the_most_an_admin_may_give,
    outbound_http_reaches_only_the_hosts_approved,
    a_robot_reaches_only_the_kinds_and_fields_its_package_was_granted,
    a_manifest_names_what_its_capabilities_reach,
    a_run_in_flight_keeps_the_version_it_started_with,
    packages_and_trust_over_http,
    hostile_archives_get_a_short_refusal_and_a_good_package_installs_after,
    rollback_returns_to_the_previous_version_and_removal_disables_its_robots,
    a_package_installs_only_once_approved_and_its_robot_runs,
    an_upgrade_shows_its_capability_diff_and_needs_approval_again,
    a_component_that_does_not_fit_leaves_nothing_behind,
);

/// A package of two robot components and a trigger component whose trigger
/// codes are `triggers`.
fn three_components(triggers: &str) -> Vec<u8> {
    let mut files = std::collections::BTreeMap::new();
    for plugin in ["assign_by_amount", "bench", "call_notice"] {
        files.insert(
            format!("components/{plugin}.wasm"),
            std::fs::read(plugin_path(plugin)).unwrap(),
        );
    }
    let manifest = format!(
        "[package]\nname = \"three\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\
         description = \"Three components\"\n\n[capabilities]\n{ASSIGN}\n\n\
         [[robots]]\ncomponent = \"components/assign_by_amount.wasm\"\ncodes = [\"assign_by_amount\"]\n\n\
         [[robots]]\ncomponent = \"components/bench.wasm\"\ncodes = [\"echo\"]\n\n\
         [[triggers]]\ncomponent = \"components/call_notice.wasm\"\ncodes = [{triggers}]\n"
    );
    robohost::package::pack(&manifest, &files, Some(&publisher())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_rejected_after_compiling_its_components_leaves_no_compiled_code() {
    use robohost::runtime::{Sandbox, SandboxConfig};
    let root = std::env::temp_dir().join(format!("robohost-package-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(root.clone()),
        ..SandboxConfig::default()
    })
    .unwrap();
    let store = robohost_tests::db::store(Db::Sqlite).await;
    let clock = std::sync::Arc::new(robohost::engine::ManualClock::new(robohost_tests::fixtures::wednesday()));
    let engine = robohost::engine::Engine::new(store, std::sync::Arc::new(sandbox), clock, EngineConfig::default())
        .await
        .unwrap();
    let before = robohost_tests::files_and_bytes(&root);

    // All three components compile and describe themselves; then the last
    // turns out not to provide what the manifest says.
    let refused = engine
        .install_package(&three_components(r#""teleport""#), &trust(), &approved())
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("provides no trigger `teleport`"), "{refused}");
    assert_eq!(
        robohost_tests::files_and_bytes(&root),
        before,
        "nothing the rejected package compiled stays"
    );

    // The same components in an accepted package stay compiled.
    engine
        .install_package(&three_components(r#""incoming_call""#), &trust(), &approved())
        .await
        .unwrap();
    let (files, _) = robohost_tests::files_and_bytes(&root);
    let artifacts = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(artifacts, 3, "{files} files");
    std::fs::remove_dir_all(root).unwrap();
}
