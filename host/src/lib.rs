//! robohost: a CRM automation host whose robots are sandboxed WebAssembly
//! components.
//!
//! - [`domain`]: the CRM's vocabulary, pure.
//! - [`runtime`]: the sandbox, the only code that links wasmtime.
//! - [`harness`]: CRM data served from JSON files, for the local run command.
//! - [`cli`]: the `robohost` command.

pub mod cli;
pub mod domain;
pub mod harness;
pub mod runtime;
