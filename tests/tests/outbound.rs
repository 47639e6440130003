//! Outbound HTTP from robots (`wasi:http`, the `fetch` plugin): a request
//! reaches only what an `http:` permission names, a name only the public
//! addresses it resolves to, a non-public address only when approved
//! exactly with its port; each redirect hop is checked on its own, and a run
//! spends at most its request and byte budgets.
//!
//! Every service here listens on 127.0.0.1 and counts its connections, so a
//! refusal is shown to happen before any connection. Names come from
//! `SandboxConfig::http_hosts`: no lookup leaves the machine. Private and
//! metadata addresses are never connected to, not even refused by a test:
//! their classes are checked in the host's unit tests, without traffic.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::serve::ListenerExt;
use robohost::domain::{
    AddressClass, Entity, Grants, HTTP_BYTES_LIMIT, HTTP_REQUESTS_LIMIT, HttpRefusal, HttpRefused, Permission,
};
use robohost::runtime::{AttemptReport, Denied, LogLevel, Outcome, Plugin, Sandbox, SandboxConfig};
use robohost_tests::*;

const REQUESTS: u32 = 4;
const BYTES: u64 = 64 * 1024;

fn config() -> SandboxConfig {
    let hosts: BTreeMap<String, Vec<IpAddr>> = [
        ("loopback.test", vec!["127.0.0.1"]),
        ("loopback6.test", vec!["::1"]),
        ("mapped.test", vec!["::ffff:127.0.0.1"]),
        ("api.test", vec!["127.0.0.1"]),
    ]
    .into_iter()
    .map(|(name, ips)| (name.into(), ips.iter().map(|ip| ip.parse().unwrap()).collect()))
    .collect();
    SandboxConfig {
        pooling: false,
        http_requests: REQUESTS,
        http_bytes: BYTES,
        http_hosts: hosts,
        ..SandboxConfig::default()
    }
}

fn fetch() -> &'static (Sandbox, Plugin) {
    static FETCH: OnceLock<(Sandbox, Plugin)> = OnceLock::new();
    FETCH.get_or_init(|| {
        let sandbox = sandbox(config());
        let plugin = load(&sandbox, "fetch");
        (sandbox, plugin)
    })
}

/// A service on 127.0.0.1 counting the connections it accepts: `/ping`
/// answers `pong`, `/big` 100 KiB, `/redirect?to=URL` redirects.
struct Service {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Service {
    fn start() -> Service {
        use axum::extract::Query;
        use axum::response::Redirect;
        use axum::routing::get;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route("/ping", get(|| async { "pong" }))
                    .route("/big", get(|| async { "x".repeat(100 * 1024) }))
                    .route(
                        "/redirect",
                        get(|Query(q): Query<BTreeMap<String, String>>| async move { Redirect::to(&q["to"]) }),
                    );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap().tap_io(move |_| {
                    counted.fetch_add(1, Ordering::SeqCst);
                });
                axum::serve(listener, app).await.unwrap();
            });
        });
        Service { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn deal() -> Entity {
    entity(r#"{"kind": "deal", "id": 7}"#)
}

/// Runs `fetch` with `properties` (a JSON object) under `permissions`.
fn get(permissions: &[String], properties: &str) -> AttemptReport {
    let (sandbox, plugin) = fetch();
    let permissions: Vec<Permission> = permissions.iter().map(|p| p.parse().unwrap()).collect();
    let deal = deal();
    run_with(
        sandbox,
        plugin,
        "fetch",
        &deal,
        &props(properties),
        context(&deal, vec![]),
        Grants::scoped(&permissions),
        None,
    )
}

/// The one HTTP refusal of a run, which ended the run.
fn refused(report: &AttemptReport) -> HttpRefusal {
    let [denial] = report.denials.as_slice() else {
        panic!("not one denial: {report:#?}");
    };
    let Denied::Http(refusal) = &denial.denied else {
        panic!("not an HTTP denial: {denial:?}");
    };
    assert_eq!(denial.call, "wasi:http/outgoing-handler.handle");
    assert_eq!(
        report.outcome,
        Outcome::CapabilityDenied {
            denied: denial.denied.clone(),
            call: denial.call.to_string()
        }
    );
    refusal.clone()
}

fn http_log(report: &AttemptReport) -> Vec<&str> {
    report
        .logs
        .iter()
        .filter(|line| line.level == LogLevel::Http)
        .map(|line| line.message.as_str())
        .collect()
}

fn loopback(class_of: &str) -> HttpRefused {
    HttpRefused::Address {
        address: class_of.parse().unwrap(),
        class: AddressClass::Loopback,
    }
}

#[test]
fn outbound_an_exact_address_and_port_approved_is_reached_and_logged() {
    let service = Service::start();
    let port = service.port;
    let report = get(
        &[format!("http:127.0.0.1:{port}")],
        &format!(r#"{{"authority": "127.0.0.1:{port}", "path": "/ping?secret=1"}}"#),
    );
    assert_eq!(report.outcome, Outcome::Success, "{report:#?}");
    assert_eq!(report.returns, props(r#"{"status": 200, "body": "pong"}"#));
    assert_eq!(
        http_log(&report),
        [format!("GET http://127.0.0.1:{port}/ping: 200; 0 B sent, 4 B received")],
        "the query stays out of the log"
    );
    assert!(report.denials.is_empty());
    assert_eq!(service.connections(), 1);
}

#[test]
fn outbound_localhost_is_no_permission_and_a_local_service_is_not_reached_by_name() {
    let service = Service::start();
    let port = service.port;
    for local in [
        "http:localhost",
        format!("http:localhost:{port}").as_str(),
        "http:127.0.0.1",
    ] {
        let e = local.parse::<Permission>().unwrap_err().to_string();
        assert!(e.contains("exact"), "{local}: {e}");
    }
    let approved = [format!("http:127.0.0.1:{port}"), format!("http:loopback.test:{port}")];
    for (authority, name, reason) in [
        ("localhost", "localhost", HttpRefused::NotApproved),
        ("loopback.test", "loopback.test", loopback("127.0.0.1")),
        ("[::1]", "::1", loopback("::1")),
        ("127.0.0.2", "127.0.0.2", loopback("127.0.0.2")),
    ] {
        let report = get(
            &approved,
            &format!(r#"{{"authority": "{authority}:{port}", "path": "/ping"}}"#),
        );
        let refusal = refused(&report);
        assert_eq!(refusal.host, name);
        assert_eq!(refusal.port, Some(port));
        assert_eq!(refusal.reason, reason, "{authority}");
        assert!(http_log(&report).is_empty(), "{authority}: nothing was sent");
    }
    assert_eq!(service.connections(), 0, "refused before connecting");
}

#[test]
fn outbound_a_name_resolving_to_loopback_is_refused_before_connecting() {
    let service = Service::start();
    let port = service.port;
    for (name, address) in [
        ("loopback.test", "127.0.0.1"),
        ("loopback6.test", "::1"),
        ("mapped.test", "127.0.0.1"),
    ] {
        let report = get(
            &[format!("http:{name}:{port}")],
            &format!(r#"{{"authority": "{name}:{port}", "path": "/ping"}}"#),
        );
        assert_eq!(refused(&report).reason, loopback(address), "{name}");
        let said = report.outcome.to_string();
        assert!(
            said.contains(&format!("which is the loopback address {address}")),
            "{said}"
        );
    }
    assert_eq!(service.connections(), 0);
}

#[test]
fn outbound_ports_and_schemes_not_approved_are_refused_before_connecting() {
    let service = Service::start();
    let port = service.port;
    // A name approved for 80 and 443 only; the same name on another port.
    let report = get(
        &["http:api.test".to_owned()],
        &format!(r#"{{"authority": "api.test:{port}", "path": "/ping"}}"#),
    );
    assert_eq!(refused(&report).reason, HttpRefused::Port);
    assert!(
        report
            .outcome
            .to_string()
            .contains(&format!("needs `http:api.test:{port}`")),
        "{}",
        report.outcome
    );
    let report = get(
        &["http:api.test:8443".to_owned()],
        &format!(r#"{{"authority": "api.test:{port}", "path": "/ping"}}"#),
    );
    assert_eq!(refused(&report).reason, HttpRefused::Port);
    // Only http and https.
    let report = get(
        &[format!("http:127.0.0.1:{port}")],
        &format!(r#"{{"authority": "127.0.0.1:{port}", "scheme": "ftp"}}"#),
    );
    let refusal = refused(&report);
    assert_eq!((refusal.scheme.as_str(), refusal.reason), ("ftp", HttpRefused::Scheme));
    assert_eq!(service.connections(), 0);
}

#[test]
fn outbound_a_redirect_hop_is_a_new_request_checked_on_its_own() {
    let approved = Service::start();
    let other = Service::start();
    let (port, other_port) = (approved.port, other.port);
    for (to, refusal) in [
        // To the same machine on a port not approved.
        (format!("http://127.0.0.1:{other_port}/ping"), loopback("127.0.0.1")),
        // To a name that resolves to loopback.
        (format!("http://loopback.test:{other_port}/ping"), loopback("127.0.0.1")),
        // To a host not approved at all.
        (format!("http://localhost:{other_port}/ping"), HttpRefused::NotApproved),
    ] {
        let report = get(
            &[
                format!("http:127.0.0.1:{port}"),
                format!("http:loopback.test:{other_port}"),
            ],
            &format!(r#"{{"authority": "127.0.0.1:{port}", "path": "/redirect?to={to}", "follow": true}}"#),
        );
        assert_eq!(refused(&report).reason, refusal, "{to}");
        assert_eq!(
            http_log(&report),
            [format!(
                "GET http://127.0.0.1:{port}/redirect: 303; 0 B sent, 0 B received"
            )],
            "{to}"
        );
    }
    assert_eq!(approved.connections(), 3, "the first hops");
    assert_eq!(other.connections(), 0, "no second hop");
}

#[test]
fn outbound_requests_past_the_budget_are_refused_and_end_the_run() {
    let service = Service::start();
    let port = service.port;
    let report = get(
        &[format!("http:127.0.0.1:{port}")],
        &format!(r#"{{"authority": "127.0.0.1:{port}", "path": "/ping", "times": 10}}"#),
    );
    assert_eq!(
        refused(&report).reason,
        HttpRefused::Budget {
            limit: HTTP_REQUESTS_LIMIT.into(),
            max: u64::from(REQUESTS)
        }
    );
    assert!(
        report.outcome.to_string().contains("limit `sandbox.http-requests`"),
        "{}",
        report.outcome
    );
    assert_eq!(http_log(&report).len(), REQUESTS as usize);
    assert_eq!(service.connections(), REQUESTS as usize);
}

#[test]
fn outbound_a_body_crossing_the_byte_budget_fails_and_ends_the_run() {
    let service = Service::start();
    let port = service.port;
    let report = get(
        &[format!("http:127.0.0.1:{port}")],
        &format!(r#"{{"authority": "127.0.0.1:{port}", "path": "/big"}}"#),
    );
    assert_eq!(
        refused(&report).reason,
        HttpRefused::Budget {
            limit: HTTP_BYTES_LIMIT.into(),
            max: BYTES
        }
    );
    assert!(
        report.outcome.to_string().contains("limit `sandbox.http-bytes`"),
        "{}",
        report.outcome
    );
    let log = http_log(&report);
    assert_eq!(log.len(), 1);
    assert!(
        log[0].starts_with(&format!(
            "GET http://127.0.0.1:{port}/big: 200, then failed: HTTP response body size exceeds limit"
        )),
        "{log:?}"
    );
}
