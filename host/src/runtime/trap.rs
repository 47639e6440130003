//! How a guest's end becomes an [`Outcome`]: its own failure, a limit it
//! hit, a trap, or a fault of the host around it.

use wasmtime::{Trap, WasmBacktrace};

use super::budget::{HostCallLimitHit, OutputLimitHit};
use super::limiter::MemoryLimitHit;
use super::state::{HostFault, RunState};
use super::{Denial, Outcome, Sandbox, bindings};

impl Sandbox {
    /// The outcome of a guest's own failure: a refusal it could not recover
    /// from explains it better than its message.
    pub(super) fn failed(&self, failure: bindings::wit::Failure, denials: &[Denial]) -> Outcome {
        match denials.first() {
            Some(d) => Outcome::CapabilityDenied {
                denied: d.denied.clone(),
                call: d.call.to_string(),
            },
            None => Outcome::RobotError {
                code: failure.code,
                message: failure.message,
                retryable: failure.retryable,
            },
        }
    }

    /// Maps a trap or error ending a run to its outcome.
    pub(super) fn classify(&self, error: wasmtime::Error, fuel: u64, state: &RunState) -> Outcome {
        let config = &self.config;
        let denials = &state.denials;
        if let Some(hit) = error.downcast_ref::<MemoryLimitHit>() {
            return Outcome::MemoryLimit { limit_bytes: hit.limit };
        }
        if let Some(OutputLimitHit(what)) = error.downcast_ref::<OutputLimitHit>() {
            return Outcome::OutputLimit { what: what.clone() };
        }
        if let Some(HostCallLimitHit(what)) = error.downcast_ref::<HostCallLimitHit>() {
            return Outcome::HostCallLimit { what: what.clone() };
        }
        if let Some(wasmtime::component::ResourceTableError::Full) =
            error.downcast_ref::<wasmtime::component::ResourceTableError>()
        {
            return Outcome::HostCallLimit {
                what: format!(
                    "held more than {} resource handles at once (limit `sandbox.resource-handles`)",
                    config.resource_handles
                ),
            };
        }
        if let Some(HostFault(message)) = error.downcast_ref::<HostFault>() {
            return Outcome::HostError {
                message: message.clone(),
            };
        }
        if let Some(trap) = error.downcast_ref::<Trap>() {
            return match trap {
                Trap::OutOfFuel => Outcome::OutOfFuel { budget: fuel },
                Trap::Interrupt => Outcome::DeadlineExceeded {
                    limit_ms: config.wall_time_ms,
                },
                Trap::StackOverflow => Outcome::StackOverflow {
                    limit_bytes: config.max_wasm_stack,
                },
                trap => {
                    if let Some(d) = denials.first() {
                        return Outcome::CapabilityDenied {
                            denied: d.denied.clone(),
                            call: d.call.to_string(),
                        };
                    }
                    Outcome::GuestTrap {
                        message: trap.to_string(),
                        frames: guest_frames(&error),
                    }
                }
            };
        }
        // The per-call data cap surfaces as an error of wasmtime's own whose
        // type is private.
        let message = format!("{error:#}");
        if message.contains("fuel allocated for hostcalls") {
            return Outcome::OutputLimit {
                what: format!(
                    "passed more than {} bytes to the host at once (limit `sandbox.hostcall-bytes`)",
                    config.hostcall_bytes
                ),
            };
        }
        if message.contains("beyond capacity of MemoryOutputPipe") {
            return Outcome::OutputLimit {
                what: format!(
                    "wrote more than {} bytes to stdout or stderr (limit `sandbox.output-bytes`)",
                    config.output_bytes
                ),
            };
        }
        // Past instantiation, what is left is the canonical ABI refusing what
        // the guest handed over (a string that is not UTF-8 or lies outside
        // its memory, a bad handle or discriminant): a trap, by the
        // component model's rules, and the guest's doing.
        if state.called {
            return Outcome::GuestTrap {
                message: format!("handed the host malformed data: {message}"),
                frames: guest_frames(&error),
            };
        }
        Outcome::HostError { message }
    }
}

/// The guest's function names at the trap, innermost first.
fn guest_frames(error: &wasmtime::Error) -> Vec<String> {
    let Some(trace) = error.downcast_ref::<WasmBacktrace>() else {
        return Vec::new();
    };
    trace
        .frames()
        .iter()
        .filter_map(|frame| frame.func_name())
        .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
        .filter(|name| !name.starts_with("core::") && !name.starts_with("std::") && !name.starts_with("__rust"))
        .take(8)
        .collect()
}
