//! Sandbox benchmarks, reported as ratios against baselines measured in the
//! same run: `cargo bench -p robohost-tests --bench sandbox`.
//!
//! - A trivial robot (`bench.echo`: one host call, one returned value) in a
//!   fresh sandbox per run, against (a) the raw wasmtime floor for the same
//!   component (`InstancePre`, fresh store, call, the same limits, no robohost
//!   code) and (b) the same logic as a native Rust function.
//! - A CPU-heavy guest (`bench.crunch`) with fuel metering on against off.
//! - Robot runs per second across both cores.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use robohost::domain::{Effect, Entity, EntityRef, FieldValue, Fields, Value};
use robohost::runtime::{AttemptReport, SandboxConfig};
use robohost_tests::*;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod floor {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "robot",
        imports: { default: trappable },
    });
}
use floor::robohost::robot::{calendar, crm, effects, kv, log, robot_types, types};

const SAMPLES: usize = 20_000;

fn main() {
    let cfg = SandboxConfig::default();
    let deal = entity(r#"{"kind": "deal", "id": 42, "stage": "NEW", "responsible": 1, "fields": {"TITLE": "Pumps"}}"#);
    let properties = props(r#"{"text": "hello"}"#);
    let wasm = std::fs::read(plugin_path("bench")).expect("bench plugin");

    // (b) native
    let native = measure(|| black_box(echo_native(black_box(&deal), black_box(&properties))));

    // (a) the raw wasmtime floor
    let floor_engine = engine(&cfg, true);
    let floor = Floor::new(&floor_engine, &wasm);
    let invocation = floor.invocation(&deal, "echo", "hello");
    let raw = measure(|| floor.run(&invocation, cfg.fuel, &cfg));

    // robohost
    let sandbox = sandbox(cfg.clone());
    let plugin = load(&sandbox, "bench");
    let ctx = context(&deal, vec![]);
    let check = run(&sandbox, &plugin, "echo", &deal, &properties, ctx.clone());
    assert!(check.outcome.is_success(), "{:?}", check.outcome);
    let ours = measure(|| run(&sandbox, &plugin, "echo", &deal, &properties, ctx.clone()));

    println!("trivial robot, fresh sandbox per run ({SAMPLES} runs; p50 / p99)");
    println!("  native Rust function     {}", native);
    println!("  raw wasmtime floor       {}", raw);
    println!("  robohost Sandbox::run    {}", ours);
    println!("  robohost / floor         {:.2}x  (goal <= 1.5x)", ours.p50 / raw.p50);
    println!("  robohost / native        {:.0}x", ours.p50 / native.p50);
    println!("  robohost p50             {:.1} µs (goal <= 15 µs)", ours.p50 * 1e6);

    // Fuel metering on against off, same CPU-heavy guest.
    let metered = Floor::new(&floor_engine, &wasm);
    let unmetered_engine = engine(&cfg, false);
    let unmetered = Floor::new(&unmetered_engine, &wasm);
    let crunch = metered.invocation_rounds(&deal, 1_000_000);
    let time = |f: &Floor, fuel| {
        let mut samples: Vec<f64> = (0..60)
            .map(|_| {
                let start = Instant::now();
                black_box(f.run(&crunch, fuel, &cfg));
                start.elapsed().as_secs_f64()
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    let (on, off) = (time(&metered, u64::MAX / 2), time(&unmetered, 0));
    println!("\nCPU-heavy guest (crunch, 1,000,000 rounds; p50 of 60)");
    println!(
        "  fuel off {:.2} ms, fuel on {:.2} ms: {:.3}x  (goal <= 1.1x)",
        off * 1e3,
        on * 1e3,
        on / off
    );

    // Throughput across both cores.
    let sandbox = Arc::new(sandbox);
    let plugin = Arc::new(plugin);
    let threads = 2;
    let per_thread = 100_000;
    let start = Instant::now();
    thread::scope(|s| {
        for _ in 0..threads {
            let (sandbox, plugin, deal, properties, ctx) = (&sandbox, &plugin, &deal, &properties, ctx.clone());
            s.spawn(move || {
                for _ in 0..per_thread {
                    let report: AttemptReport = run(sandbox, plugin, "echo", deal, properties, ctx.clone());
                    // Checked in release builds too: a failing run is no measure.
                    assert!(report.outcome.is_success(), "{:?}", report.outcome);
                    black_box(report);
                }
            });
        }
    });
    let rate = (threads * per_thread) as f64 / start.elapsed().as_secs_f64();
    println!("\nthroughput, {threads} threads: {rate:.0} robohost runs/s (goal >= 100,000)");
    println!("pooling allocator: {}", sandbox.is_pooling());
}

/// p50 and p99 of one operation, in seconds.
struct Stats {
    p50: f64,
    p99: f64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>9.3} µs / {:>9.3} µs", self.p50 * 1e6, self.p99 * 1e6)
    }
}

fn measure<T>(mut op: impl FnMut() -> T) -> Stats {
    for _ in 0..SAMPLES / 10 {
        black_box(op());
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            black_box(op());
            start.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    Stats {
        p50: samples[SAMPLES / 2],
        p99: samples[SAMPLES * 99 / 100],
    }
}

/// The echo robot's logic, natively.
fn echo_native(entity: &Entity, properties: &Fields) -> (Vec<Effect>, Fields) {
    let text = match properties.get("text") {
        Some(FieldValue::Single(Value::Text(t))) => t.clone(),
        _ => panic!("text is required"),
    };
    let target = EntityRef {
        kind: entity.kind,
        id: entity.id,
    };
    let mut fields = Fields::new();
    fields.insert("UF_ECHO".into(), FieldValue::Single(Value::Text(text.clone())));
    let mut returns = Fields::new();
    returns.insert("echo".into(), FieldValue::Single(Value::Text(text)));
    (vec![Effect::SetFields { target, fields }], returns)
}

/// The best configuration found for fresh sandboxes here: pooling with
/// pages reset in place and dirty-page scanning.
fn engine(cfg: &SandboxConfig, fuel: bool) -> Engine {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(cfg.pool_slots)
        .total_core_instances(cfg.pool_slots * 16)
        .total_memories(cfg.pool_slots * 2)
        .total_tables(cfg.pool_slots * 4)
        .max_memory_size(cfg.memory_bytes)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(2 << 20)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut c = Config::new();
    c.consume_fuel(fuel)
        .epoch_interruption(true)
        .max_wasm_stack(cfg.max_wasm_stack)
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&c).expect("engine")
}

struct FloorState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    effects: Vec<(types::EntityRef, Vec<types::Field>)>,
}

impl WasiView for FloorState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

type R<T> = wasmtime::Result<Result<T, types::HostError>>;
fn unused<T>() -> R<T> {
    Err(wasmtime::Error::msg("not used by the benchmark"))
}

impl types::Host for FloorState {}
impl robot_types::Host for FloorState {}
impl crm::Host for FloorState {
    fn get_entity(&mut self, _: types::EntityRef) -> R<types::Entity> {
        unused()
    }
    fn list_related(&mut self, _: types::EntityRef, _: types::EntityKind) -> R<Vec<types::Entity>> {
        unused()
    }
    fn find(&mut self, _: types::EntityKind, _: String, _: types::Value, _: u32) -> R<Vec<types::Entity>> {
        unused()
    }
}
impl effects::Host for FloorState {
    fn set_fields(&mut self, target: types::EntityRef, fields: Vec<types::Field>) -> R<()> {
        self.effects.push((target, fields));
        Ok(Ok(()))
    }
    fn move_to_stage(&mut self, _: types::EntityRef, _: String) -> R<()> {
        unused()
    }
    fn move_to_pipeline(&mut self, _: types::EntityRef, _: String, _: Option<String>) -> R<()> {
        unused()
    }
    fn change_responsible(&mut self, _: types::EntityRef, _: u64) -> R<()> {
        unused()
    }
    fn create_entity(&mut self, _: effects::NewEntity) -> R<types::EntityRef> {
        unused()
    }
    fn add_comment(&mut self, _: types::EntityRef, _: String) -> R<()> {
        unused()
    }
    fn notify(&mut self, _: u64, _: String, _: Option<types::EntityRef>) -> R<()> {
        unused()
    }
    fn link(&mut self, _: types::EntityRef, _: types::EntityRef) -> R<()> {
        unused()
    }
    fn wait_for_completion(&mut self, _: types::EntityRef) -> R<()> {
        unused()
    }
    fn send_message(&mut self, _: effects::Message) -> R<()> {
        unused()
    }
}
impl log::Host for FloorState {
    fn write(&mut self, _: log::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}
impl kv::Host for FloorState {
    fn get(&mut self, _: String) -> R<Option<Vec<u8>>> {
        unused()
    }
    fn set(&mut self, _: String, _: Vec<u8>) -> R<()> {
        unused()
    }
    fn delete(&mut self, _: String) -> R<()> {
        unused()
    }
}
impl calendar::Host for FloorState {
    fn is_working_time(&mut self, _: i64) -> R<bool> {
        unused()
    }
    fn add_working_time(&mut self, _: i64, _: u64) -> R<i64> {
        unused()
    }
    fn next_working_moment(&mut self, _: i64) -> R<i64> {
        unused()
    }
}

/// The same component driven by wasmtime alone.
struct Floor {
    engine: Engine,
    pre: floor::RobotPre<FloorState>,
}

impl Floor {
    fn new(engine: &Engine, wasm: &[u8]) -> Self {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
        floor::Robot::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).expect("robot imports");
        let component = Component::new(engine, wasm).expect("compiles");
        let pre = floor::RobotPre::new(linker.instantiate_pre(&component).expect("links")).expect("robot world");
        let ticker = engine.weak();
        thread::spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(Duration::from_millis(10));
            }
        });
        Floor {
            engine: engine.clone(),
            pre,
        }
    }

    fn invocation(&self, deal: &Entity, robot: &str, text: &str) -> robot_types::Invocation {
        let field = |code: &str, value: types::Value| types::Field {
            code: code.into(),
            value: types::FieldValue::Single(value),
        };
        robot_types::Invocation {
            robot: robot.into(),
            entity: types::Entity {
                kind: types::EntityKind::Deal,
                id: deal.id,
                pipeline: None,
                stage: deal.stage.clone(),
                responsible: deal.responsible,
                fields: vec![field("TITLE", types::Value::Text("Pumps".into()))],
                custom_fields: vec![],
                created_at: 0,
                updated_at: 0,
            },
            properties: vec![field("text", types::Value::Text(text.into()))],
            cause: robot_types::Cause::Manual(1),
            run_id: "run-1".into(),
            attempt: 1,
            idempotency_key: "run-1".into(),
            now: 0,
            time_zone: "UTC".into(),
        }
    }

    fn invocation_rounds(&self, deal: &Entity, rounds: i64) -> robot_types::Invocation {
        let mut inv = self.invocation(deal, "crunch", "");
        inv.properties = vec![types::Field {
            code: "rounds".into(),
            value: types::FieldValue::Single(types::Value::Integer(rounds)),
        }];
        inv
    }

    fn run(&self, invocation: &robot_types::Invocation, fuel: u64, cfg: &SandboxConfig) -> usize {
        let state = FloorState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(cfg.memory_bytes)
                .table_elements(cfg.table_elements)
                .instances(cfg.instances)
                .trap_on_grow_failure(true)
                .build(),
            effects: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if fuel > 0 {
            store.set_fuel(fuel).expect("fuel");
        }
        store.set_epoch_deadline(1_000);
        store.set_hostcall_fuel(cfg.hostcall_bytes);
        let robot = self.pre.instantiate(&mut store).expect("instantiates");
        let values = robot.call_run(&mut store, invocation).expect("runs").expect("succeeds");
        values.len() + store.data().effects.len()
    }
}
