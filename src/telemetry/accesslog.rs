//! The access log: one JSON line per request on stderr, written through a
//! [`crate::telemetry::sink::Sink`] (batched, never blocking a worker; drops counted).

use std::sync::OnceLock;

use crate::telemetry::sink::{OnFull, Sink, Target};

/// Target of access-log records (`RUST_LOG=access=off` silences them).
pub const ACCESS_TARGET: &str = "access";

/// Process-wide on purpose: the access log is stderr, one writer thread
/// for the process whatever the configuration snapshot.
static SINK: OnceLock<Sink> = OnceLock::new();

fn sink() -> &'static Sink {
    SINK.get_or_init(|| Sink::new(Target::Stderr, 64 * 1024, OnFull::Drop))
}

/// Queues one access-log line.
pub fn write(line: String) {
    if !sink().write(line) {
        crate::telemetry::metrics::record_access_log_drop();
    }
}

/// Lines dropped because the writer could not keep up.
pub fn dropped() -> u64 {
    sink().dropped()
}
