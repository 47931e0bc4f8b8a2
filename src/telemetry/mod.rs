//! What the gateway tells its operators: Prometheus metrics (`metrics`),
//! the access log (`accesslog`), the audit log (`audit`), the lines for
//! refused connections (`refused`) and the non-blocking line sinks they
//! write through (`sink`). Telemetry reads
//! plain values handed to it, never the `Runtime`.

pub mod accesslog;
pub mod audit;
pub mod metrics;
pub mod refused;
pub mod sink;
