//! The `logging` section: level, line format, and the JSON keys whose
//! values are redacted from logged bodies.

use super::errors::Errors;
use crate::config::raw;
use crate::runtime::LogFormat;

/// The checked `logging` values the runtime keeps.
pub(super) struct Logging {
    pub level: String,
    pub format: LogFormat,
    pub redact_keys: Vec<String>,
}

pub(super) fn compile_logging(logging: &raw::Logging, errs: &mut Errors) -> Logging {
    let level = logging.level.to_ascii_lowercase();
    if !["error", "warn", "info", "debug", "trace", "off"].contains(&level.as_str()) {
        errs.push(
            "logging.level",
            format!("unknown level \"{}\"", logging.level),
        );
    }
    let format = match logging.format.as_str() {
        "json" => LogFormat::Json,
        "text" => LogFormat::Text,
        other => {
            errs.push(
                "logging.format",
                format!("expected json or text, got \"{other}\""),
            );
            LogFormat::Json
        }
    };
    let redact_keys = logging
        .redact_keys
        .iter()
        .map(|k| k.to_ascii_lowercase())
        .collect();
    Logging {
        level,
        format,
        redact_keys,
    }
}
