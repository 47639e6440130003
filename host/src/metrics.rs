//! What an operator watches: the process's metrics, served at `/metrics` in
//! Prometheus's text format (prometheus-client). Counters and histograms
//! are kept as the work happens; the queue's depth and lag are read from
//! the database at each scrape, so they are the portal's, whichever host
//! is scraped.
//!
//! One set per process ([`metrics`]): the engine, the sandbox's compiler
//! and the HTTP layer all record into it.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a run's attempt ended: the status it was left in (`queued` for a
/// retry), its outcome and who is to blame.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub status: String,
    pub outcome: String,
    pub blame: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: String,
    /// `sent`, `retry` or `failed`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// What the host made of an inbound call: `handled`, `ignored`...
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route's template, such as `/api/entities/{kind}/{id}`.
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub runs: Family<RunLabels, Counter>,
    pub run_seconds: Histogram,
    pub run_fuel: Histogram,
    pub compile_seconds: Histogram,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub inbound_calls: Family<CallLabels, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    /// Runs due and waiting for a worker, at the last scrape.
    pub queue_depth: Gauge,
    /// How long the oldest of them has been due, at the last scrape.
    pub queue_lag_seconds: Gauge<f64, AtomicU64>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("robohost");
        let metrics = Metrics {
            runs: Family::default(),
            // 1 ms to about 65 s.
            run_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            // 10 thousand to about 10 billion units of fuel.
            run_fuel: Histogram::new(exponential_buckets(10_000.0, 4.0, 11)),
            // 10 ms to about 160 s.
            compile_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 15)),
            deliveries: Family::default(),
            inbound_calls: Family::default(),
            http_requests: Family::default(),
            queue_depth: Gauge::default(),
            queue_lag_seconds: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "runs",
            "Run attempts ended, by status, outcome and blame",
            metrics.runs.clone(),
        );
        registry.register("run_seconds", "How long robots ran", metrics.run_seconds.clone());
        registry.register("run_fuel", "Fuel robots used per run", metrics.run_fuel.clone());
        registry.register(
            "compile_seconds",
            "How long compiling a plugin component took",
            metrics.compile_seconds.clone(),
        );
        registry.register(
            "deliveries",
            "Attempts to deliver outbox messages, by channel and result",
            metrics.deliveries.clone(),
        );
        registry.register(
            "inbound_calls",
            "Calls to endpoints, by what came of them",
            metrics.inbound_calls.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            metrics.http_requests.clone(),
        );
        registry.register("queue_depth", "Runs due and not yet taken", metrics.queue_depth.clone());
        registry.register(
            "queue_lag_seconds",
            "How long the oldest run due has waited past its due time",
            metrics.queue_lag_seconds.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// Everything, in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
