//! Adversarial plugins: every limit and refusal ends the run in its own typed
//! outcome, blames the guest, and leaves the host able to run the next robot.

use robohost::domain::{Capability, Entity};
use robohost::runtime::{AttemptReport, Blame, Denied, Outcome, Plugin, Sandbox, SandboxConfig};
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

fn hostile(sandbox: &Sandbox, plugin: &Plugin, robot: &str) -> AttemptReport {
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

/// Default limits with fuel and time to spare, so floods meet their own
/// limits first.
fn flood_sandbox() -> (SandboxConfig, Sandbox, Plugin) {
    let config = config();
    let sandbox = sandbox(SandboxConfig {
        fuel: 5_000_000_000,
        wall_time_ms: 10_000,
        ..config.clone()
    });
    let plugin = load(&sandbox, "hostile");
    (config, sandbox, plugin)
}

/// Runs `robot` and checks it stopped in time, whatever it waited on.
fn stopped_within(sandbox: &Sandbox, plugin: &Plugin, robot: &str, bound: std::time::Duration) -> AttemptReport {
    let started = std::time::Instant::now();
    let report = hostile(sandbox, plugin, robot);
    assert!(
        started.elapsed() < bound,
        "{robot} ran {:?}: {:?}",
        started.elapsed(),
        report.outcome
    );
    report
}

#[test]
fn every_wait_inside_wasi_ends_at_the_deadline() {
    let sandbox = sandbox(SandboxConfig {
        wall_time_ms: 300,
        ..config()
    });
    let plugin = load(&sandbox, "hostile");
    let bound = std::time::Duration::from_secs(2);
    for robot in ["sleep_forever", "poll_forever"] {
        let report = stopped_within(&sandbox, &plugin, robot, bound);
        assert_eq!(report.outcome, Outcome::DeadlineExceeded { limit_ms: 300 }, "{robot}");
    }
    // Standard input is empty: a read ends at once with nothing.
    let report = stopped_within(&sandbox, &plugin, "read_stdin", bound);
    assert!(
        matches!(&report.outcome, Outcome::RobotError { message, .. } if message == "stdin gave 0 bytes"),
        "{:?}",
        report.outcome
    );
    // The worker is free again at once.
    let report = stopped_within(&sandbox, &plugin, "panic", bound);
    assert!(matches!(report.outcome, Outcome::GuestTrap { .. }));
}

#[test]
fn a_sandbox_called_from_async_code_neither_panics_nor_waits_forever() {
    // An admin's upload is handled in async code; a `describe` that prints
    // or waits once made the host panic there ("Cannot start a runtime from
    // within a runtime"), or hold it forever.
    let sandbox = sandbox(SandboxConfig {
        wall_time_ms: 300,
        ..config()
    });
    let wasm = std::fs::read(plugin_path("hostile_describe")).unwrap();
    let probe = entity(r#"{"kind": "deal", "id": 1}"#);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let error = runtime
        .block_on(async { sandbox.load("hostile_describe", &wasm, &context(&probe, vec![])) })
        .err()
        .expect("a describe that never ends is refused");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(
        message.contains("hostile_describe failed while describing itself: deadline exceeded"),
        "{message}"
    );
    // Robots run from async code too.
    let plugin = load(&sandbox, "hostile");
    let report = runtime.block_on(async { hostile(&sandbox, &plugin, "sleep_forever") });
    assert_eq!(report.outcome, Outcome::DeadlineExceeded { limit_ms: 300 });
}

#[test]
fn floods_that_cost_the_guest_nothing_are_bounded() {
    let (config, sandbox, plugin) = flood_sandbox();
    let bound = std::time::Duration::from_secs(5);
    let record = |report: &AttemptReport| serde_json::to_vec(report).unwrap().len();
    let before = peak_kib();

    let report = stopped_within(&sandbox, &plugin, "empty_log_flood", bound);
    assert!(
        matches!(&report.outcome, Outcome::OutputLimit { what } if what.contains("sandbox.output-bytes")),
        "{:?}",
        report.outcome
    );
    let lines = config.output_bytes / 64;
    assert!(report.logs.len() <= lines, "{} lines kept", report.logs.len());

    let report = stopped_within(&sandbox, &plugin, "denied_flood", bound);
    assert!(
        matches!(&report.outcome, Outcome::OutputLimit { what } if what.contains("sandbox.record-bytes")),
        "{:?}",
        report.outcome
    );
    assert!(
        report.denials.len() < config.record_bytes / 64,
        "{} refusals kept",
        report.denials.len()
    );
    assert!(
        record(&report) < 2 * config.record_bytes,
        "a record of {} bytes",
        record(&report)
    );

    let report = stopped_within(&sandbox, &plugin, "big_effects", bound);
    assert!(
        matches!(&report.outcome, Outcome::OutputLimit { what } if what.contains("sandbox.record-bytes") && what.contains("an effect")),
        "{:?}",
        report.outcome
    );
    assert!(
        record(&report) < 2 * config.record_bytes,
        "a record of {} bytes",
        record(&report)
    );

    let grown = peak_kib().saturating_sub(before);
    assert!(grown < 256 * 1024, "peak resident memory grew by {grown} KiB");
}

#[test]
fn host_work_is_budgeted() {
    let (config, sandbox, plugin) = flood_sandbox();
    let bound = std::time::Duration::from_secs(5);

    let report = stopped_within(&sandbox, &plugin, "lookup_flood", bound);
    assert_eq!(
        report.outcome,
        Outcome::HostCallLimit {
            what: format!(
                "made more than {} host calls (at `crm.find`; limit `sandbox.host-calls`)",
                config.host_calls
            )
        }
    );
    let report = stopped_within(&sandbox, &plugin, "handle_flood", bound);
    assert_eq!(
        report.outcome,
        Outcome::HostCallLimit {
            what: format!(
                "held more than {} resource handles at once (limit `sandbox.resource-handles`)",
                config.resource_handles
            )
        }
    );
}

#[test]
fn rows_read_are_budgeted() {
    let sandbox = sandbox(SandboxConfig {
        rows_read: 5,
        ..config()
    });
    let plugin = load(&sandbox, "related_totals");
    let company = entity(r#"{"kind": "company", "id": 5}"#);
    let related: Vec<Entity> = (1..=6)
        .map(|id| {
            entity(&format!(
                r#"{{"kind": "deal", "id": {id}, "fields": {{"OPPORTUNITY": {{"money": "1 RUB"}}}}}}"#
            ))
        })
        .collect();
    let report = run(
        &sandbox,
        &plugin,
        "related_totals",
        &company,
        &props("{}"),
        context(&company, related),
    );
    assert!(
        matches!(&report.outcome, Outcome::HostCallLimit { what } if what.contains("sandbox.rows-read")),
        "{:?}",
        report.outcome
    );
}

#[test]
fn malformed_data_from_the_guest_is_its_own_trap() {
    let sandbox = sandbox(config());
    let plugin = load(&sandbox, "hostile");
    let report = hostile(&sandbox, &plugin, "invalid_utf8");
    match &report.outcome {
        Outcome::GuestTrap { message, .. } => {
            assert!(message.contains("handed the host malformed data"), "{message}")
        }
        other => panic!("invalid_utf8: {other:?}"),
    }
    assert!(!report.outcome.is_retryable());
}

#[test]
fn a_hostile_trigger_plugin_fails_only_its_own_call() {
    use robohost::domain::InboundCall;
    let config = config();
    let sandbox = sandbox(SandboxConfig {
        wall_time_ms: 500,
        ..config.clone()
    });
    let wasm = std::fs::read(plugin_path("hostile_trigger")).unwrap();
    let probe = entity(r#"{"kind": "deal", "id": 1}"#);
    let plugin = sandbox
        .load_trigger("hostile_trigger", &wasm, &context(&probe, vec![]))
        .unwrap();
    let call = |body: &str| {
        let request = InboundCall {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        let started = std::time::Instant::now();
        let report = sandbox.handle(
            &plugin,
            &request,
            robohost::runtime::Grants::NONE,
            context(&probe, vec![]),
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{body}: {:?}",
            started.elapsed()
        );
        if !report.outcome.is_success() {
            assert_eq!(report.blame, Some(Blame::Guest), "{body}: {:?}", report.outcome);
            assert!(report.hits.is_empty(), "{body}");
        }
        report.outcome
    };
    assert_eq!(call("loop"), Outcome::OutOfFuel { budget: config.fuel });
    assert_eq!(call("sleep"), Outcome::DeadlineExceeded { limit_ms: 500 });
    assert_eq!(
        call("memory"),
        Outcome::MemoryLimit {
            limit_bytes: config.memory_bytes
        }
    );
    assert!(matches!(call("trap"), Outcome::GuestTrap { .. }));
    let log = call("log");
    assert!(
        matches!(&log, Outcome::OutputLimit { what } if what.contains("sandbox.output-bytes")),
        "{log:?}"
    );
    let hits = call("hits");
    assert!(
        matches!(&hits, Outcome::OutputLimit { what } if what.contains("sandbox.record-bytes") && what.contains("hits")),
        "{hits:?}"
    );
    assert_eq!(call("ok"), Outcome::Success);
}
