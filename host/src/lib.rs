//! robohost: a CRM automation host whose robots are sandboxed WebAssembly
//! components.
//!
//! - [`domain`]: the CRM's vocabulary, pure.
//! - [`runtime`]: the sandbox, the only code that links wasmtime.
//! - [`engine`]: stage entries, the durable run queue, the scheduler.
//! - [`storage`]: the database, the only code that speaks SQL.
//! - [`api`]: the HTTP API, the only code that knows HTTP and JSON wire shapes.
//! - [`web`]: the admin board, HTML pages for people in a browser.
//! - [`metrics`]: what an operator watches, at `/metrics`.
//! - [`harness`]: CRM data served from JSON files, for the local run command.
//! - [`cli`]: the `robohost` command.

pub mod api;
pub mod cli;
pub mod domain;
pub mod engine;
pub mod harness;
pub mod metrics;
pub mod package;
pub mod runtime;
pub mod storage;
pub mod web;
