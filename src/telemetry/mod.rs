//! What the gateway tells its operators: Prometheus metrics (`metrics`),
//! the access log (`accesslog`), the audit log (`audit`) and the
//! non-blocking line sinks both write through (`sink`). Telemetry reads
//! plain values handed to it, never the `Runtime`.

pub mod accesslog;
pub mod audit;
pub mod metrics;
pub mod sink;
