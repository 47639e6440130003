//! What a run may make the host keep and do, beyond fuel and memory: the
//! bytes of its record (log lines, stdout and stderr, refusals, effects,
//! returned values), the share of it that is log output, its host calls and
//! the rows they read. Each is charged when it happens, so a flood stops at
//! its limit instead of after filling memory; every item also costs
//! [`ITEM_BYTES`], so empty lines and refusals are not free.

use std::sync::atomic::{AtomicU64, Ordering};

use super::SandboxConfig;

/// What every recorded item costs on top of its own bytes: about what it
/// takes in memory and in the stored record when it is empty.
pub const ITEM_BYTES: u64 = 64;

/// A per-run limit on what the guest hands the host; ends the run as
/// `output-limit`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutputLimitHit(pub String);

/// A per-run limit on the work the guest makes the host do; ends the run as
/// `host-call-limit`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostCallLimitHit(pub String);

/// One run's meters. Shared with its stdout and stderr streams, hence the
/// atomics; a run is single-threaded, so relaxed ordering is enough.
pub struct Budget {
    record: Meter,
    output: Meter,
    calls: Meter,
    rows: Meter,
}

struct Meter {
    left: AtomicU64,
    limit: u64,
}

impl Meter {
    fn new(limit: usize) -> Self {
        Meter {
            left: AtomicU64::new(limit as u64),
            limit: limit as u64,
        }
    }

    /// Takes `n` if that much is left.
    fn take(&self, n: u64) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n))
            .is_ok()
    }

    fn is_spent(&self) -> bool {
        self.left.load(Ordering::Relaxed) == 0
    }
}

impl Budget {
    pub fn new(config: &SandboxConfig) -> Self {
        Budget {
            record: Meter::new(config.record_bytes),
            output: Meter::new(config.output_bytes),
            calls: Meter::new(config.host_calls),
            rows: Meter::new(config.rows_read),
        }
    }

    /// Charges log output of `bytes` in `lines` lines: it counts against
    /// `output-bytes` and the whole record.
    pub fn log(&self, bytes: usize, lines: usize) -> Result<(), OutputLimitHit> {
        let cost = bytes as u64 + lines as u64 * ITEM_BYTES;
        if !self.output.take(cost) {
            return Err(OutputLimitHit(format!(
                "wrote more than {} bytes of log, stdout and stderr, each line counting {ITEM_BYTES} more \
                 (limit `sandbox.output-bytes`)",
                self.output.limit
            )));
        }
        self.keep(cost, "log lines")
    }

    /// Charges one item of `bytes` (an effect, a refusal, returned values)
    /// against the record.
    pub fn item(&self, bytes: usize, what: &str) -> Result<(), OutputLimitHit> {
        self.keep(bytes as u64 + ITEM_BYTES, what)
    }

    fn keep(&self, cost: u64, what: &str) -> Result<(), OutputLimitHit> {
        if self.record.take(cost) {
            return Ok(());
        }
        self.record.left.store(0, Ordering::Relaxed);
        Err(OutputLimitHit(format!(
            "handed the host more than {} bytes to keep (at {what}; log, refusals, effects and returned \
             values together, each item counting {ITEM_BYTES} more; limit `sandbox.record-bytes`)",
            self.record.limit
        )))
    }

    /// Whether the record is full: nothing more is kept, and the run ends at
    /// its next host call.
    pub fn record_is_full(&self) -> bool {
        self.record.is_spent()
    }

    /// Ends the run at `call` when the record is full.
    pub fn check_room(&self, call: &str) -> Result<(), OutputLimitHit> {
        match self.record_is_full() {
            true => self.keep(ITEM_BYTES, call),
            false => Ok(()),
        }
    }

    /// Charges one host call.
    pub fn call(&self, call: &str) -> Result<(), HostCallLimitHit> {
        if self.calls.take(1) {
            return Ok(());
        }
        Err(HostCallLimitHit(format!(
            "made more than {} host calls (at `{call}`; limit `sandbox.host-calls`)",
            self.calls.limit
        )))
    }

    /// Charges `n` rows a read returned.
    pub fn rows(&self, n: usize, call: &str) -> Result<(), HostCallLimitHit> {
        if self.rows.take(n as u64) {
            return Ok(());
        }
        Err(HostCallLimitHit(format!(
            "read more than {} entities (at `{call}`; limit `sandbox.rows-read`)",
            self.rows.limit
        )))
    }

    /// How many more rows a read may return.
    pub fn rows_left(&self) -> u64 {
        self.rows.left.load(Ordering::Relaxed)
    }
}

/// The bytes `value` takes as JSON, as the run record stores it, counted
/// without building the text.
pub fn json_size(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Only a failing writer or a map with non-string keys fails; neither is here.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(record: usize, output: usize) -> Budget {
        Budget::new(&SandboxConfig {
            record_bytes: record,
            output_bytes: output,
            host_calls: 2,
            rows_read: 10,
            ..SandboxConfig::default()
        })
    }

    #[test]
    fn empty_lines_and_items_are_not_free() {
        let b = budget(1 << 20, 10 * ITEM_BYTES as usize);
        for _ in 0..10 {
            b.log(0, 1).unwrap();
        }
        let hit = b.log(0, 1).unwrap_err();
        assert!(hit.0.contains("sandbox.output-bytes"), "{hit}");

        let b = budget(3 * ITEM_BYTES as usize, 1 << 20);
        b.item(0, "a refusal").unwrap();
        b.item(0, "a refusal").unwrap();
        b.item(0, "a refusal").unwrap();
        let hit = b.item(0, "a refusal").unwrap_err();
        assert!(
            hit.0.contains("sandbox.record-bytes") && hit.0.contains("a refusal"),
            "{hit}"
        );
        assert!(b.record_is_full());
    }

    #[test]
    fn calls_and_rows_are_counted() {
        let b = budget(1 << 20, 1 << 20);
        b.call("crm.find").unwrap();
        b.call("crm.find").unwrap();
        assert!(b.call("crm.find").unwrap_err().0.contains("sandbox.host-calls"));
        b.rows(10, "crm.find").unwrap();
        assert_eq!(b.rows_left(), 0);
        assert!(b.rows(1, "crm.find").unwrap_err().0.contains("sandbox.rows-read"));
    }

    #[test]
    fn json_size_is_the_serialised_length() {
        let value = serde_json::json!({"a": [1, 2, "three"]});
        assert_eq!(json_size(&value), serde_json::to_vec(&value).unwrap().len());
    }
}
