//! Process logging through `log` + env_logger: level from `logging.level`
//! (`RUST_LOG` overrides), `json` or `text` lines. Access-log records arrive
//! already serialised and are written as they are.

use std::io::Write;

use crate::runtime::LogFormat;
use crate::telemetry::accesslog::ACCESS_TARGET;

/// Installs the global logger. Safe to call more than once (later calls are no-ops).
pub fn init(level: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    // Pingora logs every proxied error at error level; our access log says it once.
    builder.filter_module("pingora_proxy", log::LevelFilter::Warn);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    match format {
        LogFormat::Json => {
            builder.format(|buf, record| {
                if record.target() == ACCESS_TARGET {
                    return writeln!(buf, "{}", record.args());
                }
                let line = serde_json::json!({
                    "ts": buf.timestamp_millis().to_string(),
                    "level": record.level().as_str(),
                    "target": record.target(),
                    "msg": record.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
        LogFormat::Text => {
            builder.format_timestamp_millis();
        }
    }
    let _ = builder.try_init();
}
