//! Lines for the run's log, which the admin reads in the run record. Always
//! allowed; the host caps the bytes it keeps per run, so log what explains a
//! decision, not every step.
//!
//! ```no_run
//! # use robohost_sdk::log;
//! # let (id, currency) = (42, "EUR");
//! log::warn(format!("deal {id} is in {currency}: skipped"));
//! ```

use crate::bindings::robohost::robot::log as host;
pub use crate::bindings::robohost::robot::log::Level;

/// Writes one line at `level`.
pub fn write(level: Level, message: impl AsRef<str>) {
    host::write(level, message.as_ref());
}

/// Writes a line of fine detail.
pub fn trace(message: impl AsRef<str>) {
    write(Level::Trace, message);
}

/// Writes a line of detail for the plugin's author.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message);
}

/// Writes a line of normal progress.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message);
}

/// Writes a line about something unexpected that the robot handled.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message);
}

/// Writes a line about something that failed.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message);
}
