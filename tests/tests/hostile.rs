//! Adversarial plugins: every limit and refusal ends the run in its own typed
//! outcome, blames the guest, and leaves the host able to run the next robot.

use robohost::domain::{Capability, Entity};
use robohost::runtime::{Blame, Denied, Outcome, Plugin, RunReport, Sandbox, SandboxConfig};
use robohost_tests::*;

/// Small limits, so each hostile run ends quickly.
fn config() -> SandboxConfig {
    SandboxConfig {
        fuel: 20_000_000,
        memory_bytes: 32 << 20,
        wall_time_ms: 1_000,
        ..SandboxConfig::default()
    }
}

fn deal() -> Entity {
    entity(r#"{"kind": "deal", "id": 42, "responsible": 1, "fields": {"OPPORTUNITY": {"money": "500 RUB"}}}"#)
}

fn hostile(sandbox: &Sandbox, plugin: &Plugin, robot: &str) -> RunReport {
    let deal = deal();
    let report = run(sandbox, plugin, robot, &deal, &props("{}"), context(&deal, vec![]));
    assert_eq!(report.blame, Some(Blame::Guest), "{robot}: {:?}", report.outcome);
    assert!(report.effects.is_empty(), "{robot}: a failed run returns no effects");
    report
}

#[test]
fn every_hostile_robot_ends_in_its_own_outcome() {
    let config = config();
    let sandbox = sandbox(config.clone());
    let plugin = load(&sandbox, "hostile");
    let outcome = |robot| hostile(&sandbox, &plugin, robot).outcome;

    assert_eq!(outcome("infinite_loop"), Outcome::OutOfFuel { budget: config.fuel });
    assert_eq!(
        outcome("memory_bomb"),
        Outcome::MemoryLimit {
            limit_bytes: config.memory_bytes
        }
    );
    assert_eq!(
        outcome("deep_recursion"),
        Outcome::StackOverflow {
            limit_bytes: config.max_wasm_stack
        }
    );
    match outcome("panic") {
        Outcome::GuestTrap { frames, .. } => {
            assert!(frames.iter().any(|f| f.contains("give_up")), "{frames:?}")
        }
        other => panic!("panic: {other:?}"),
    }
    assert!(matches!(outcome("huge_output"), Outcome::OutputLimit { what } if what.contains("sandbox.hostcall-bytes")));
    assert!(matches!(outcome("stdout_flood"), Outcome::OutputLimit { what } if what.contains("sandbox.output-bytes")));
    assert_eq!(
        outcome("ungranted_effect"),
        Outcome::CapabilityDenied {
            denied: Denied::Capability(Capability::Notify),
            call: "effects.notify".into()
        }
    );
    assert!(matches!(
        outcome("open_file"),
        Outcome::CapabilityDenied {
            denied: Denied::Filesystem,
            ..
        }
    ));
    assert!(matches!(
        outcome("open_socket"),
        Outcome::CapabilityDenied {
            denied: Denied::Network,
            ..
        }
    ));
    match outcome("read_env") {
        Outcome::RobotError { message, .. } => assert!(message.contains("empty"), "{message}"),
        other => panic!("read_env: {other:?}"),
    }
}

#[test]
fn the_wall_clock_stops_what_fuel_allows() {
    let sandbox = sandbox(SandboxConfig {
        wall_time_ms: 50,
        ..config()
    });
    let plugin = load(&sandbox, "hostile");
    let deal = deal();
    let report = run_with(
        &sandbox,
        &plugin,
        "infinite_loop",
        &deal,
        &props("{}"),
        context(&deal, vec![]),
        robohost::runtime::Grants::ALL,
        Some(5_000_000_000),
    );
    assert_eq!(report.outcome, Outcome::DeadlineExceeded { limit_ms: 50 });
    assert!(report.duration.as_millis() < 1_000, "{:?}", report.duration);
}

#[test]
fn effects_of_a_failed_run_are_not_returned() {
    let sandbox = sandbox(config());
    let plugin = load(&sandbox, "hostile");
    let report = hostile(&sandbox, &plugin, "effects_then_panic");
    assert!(
        matches!(report.outcome, Outcome::GuestTrap { .. }),
        "{:?}",
        report.outcome
    );
    let report = hostile(&sandbox, &plugin, "effects_then_fail");
    assert!(
        matches!(&report.outcome, Outcome::RobotError { code, .. } if code == "changed_my_mind"),
        "{:?}",
        report.outcome
    );
    assert!(report.denials.is_empty());
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value")
}

#[test]
fn a_thousand_hostile_runs_leave_the_host_healthy() {
    let sandbox = sandbox(SandboxConfig {
        fuel: 2_000_000,
        memory_bytes: 16 << 20,
        ..config()
    });
    let plugin = load(&sandbox, "hostile");
    let robots = [
        "infinite_loop",
        "memory_bomb",
        "deep_recursion",
        "panic",
        "ungranted_effect",
        "open_file",
        "open_socket",
        "stdout_flood",
    ];
    let run_all = |times: usize| {
        for i in 0..times {
            let report = hostile(&sandbox, &plugin, robots[i % robots.len()]);
            assert!(!report.outcome.is_success());
        }
    };
    run_all(100);
    let before = resident_kib();
    run_all(1_000);
    let grown = resident_kib().saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "resident memory grew by {grown} KiB over 1,000 hostile runs"
    );

    let good = load(&sandbox, "assign_by_amount");
    let deal = deal();
    let bands = props(r#"{"bounds": [{"decimal": "1000"}], "users": [{"user": 7}, {"user": 8}]}"#);
    let report = run(
        &sandbox,
        &good,
        "assign_by_amount",
        &deal,
        &bands,
        context(&deal, vec![]),
    );
    assert_eq!(report.outcome, Outcome::Success, "{:?}", report.logs);
    assert_eq!(report.effects.len(), 2);
}

#[test]
fn wrong_inputs_are_refused_before_running() {
    let sandbox = sandbox(config());
    let deal = deal();
    let ctx = context(&deal, vec![]);
    let err = |bytes: &[u8]| sandbox.load("x", bytes, &ctx).err().expect("refused").to_string();
    assert!(err(b"(component)").contains("magic bytes"));
    assert!(err(&[0, b'a', b's', b'm', 1, 0, 0, 0]).contains("core module"));
    let plugin = load(&sandbox, "hostile");
    let e = sandbox
        .run(
            &plugin,
            robohost::runtime::RunRequest {
                robot: "nope",
                entity: &deal,
                properties: &props("{}"),
                cause: &robohost::domain::Cause::Manual { user: 1 },
                run_id: "r",
                attempt: 1,
                idempotency_key: "r",
                now: robohost::domain::Timestamp(0),
                grants: robohost::runtime::Grants::ALL,
                fuel: None,
                context: ctx.clone(),
            },
        )
        .map(|report| report.outcome)
        .expect_err("unknown robot refused");
    assert!(
        e.to_string().contains("has no robot `nope`; it has: infinite_loop"),
        "{e}"
    );
}
