//! The YAML document: parsing it, refusing unknown top-level sections, and
//! deserializing each section on its own so that one mistake does not hide
//! the next (a failure is reported under the section's path plus the inner
//! path serde names).

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::errors::Errors;
use crate::config::{raw, ConfigError, Problem};

/// Sections this version understands; anything else at the top level is an error.
const SECTIONS: &[&str] = &[
    "server",
    "upstreams",
    "routing",
    "upstream_headers",
    "logging",
    "auth",
    "policy",
    "audit",
    "rate_limit",
    "proxy_protocol",
    "tls",
    "sessions",
    "admin",
    "tunnel",
    "virtual_servers",
    "legacy_sse",
    "tool_limits",
    "tool_overrides",
    "tool_integrity",
];

/// Parses the text into its mapping of sections; an empty, unparsable or
/// non-mapping document is refused at once.
pub(super) fn parse(text: &str) -> Result<Mapping, ConfigError> {
    match serde_yaml::from_str(text) {
        Ok(Value::Null) => Err(refused("(root)", "configuration is empty")),
        Ok(Value::Mapping(root)) => Ok(root),
        Ok(_) => Err(refused("(root)", "expected a mapping of sections")),
        Err(e) => Err(refused("(yaml)", e)),
    }
}

fn refused(path: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError(vec![Problem::new(path, message)])
}

/// Reports every top-level key that is not a known section.
pub(super) fn check_section_names(root: &Mapping, errs: &mut Errors) {
    for key in root.keys() {
        match key.as_str() {
            Some(k) if SECTIONS.contains(&k) => {}
            // an empty name (`!!tag : x` reads as one) has no path of its own
            Some("") => errs.push("(root)", "a section name is empty"),
            Some(k) => errs.push(
                k,
                format!("unknown section (known: {})", SECTIONS.join(", ")),
            ),
            None => errs.push("(root)", "section names must be strings"),
        }
    }
}

/// The entries of an optional list section (absent or null: none; not a
/// list: reported under `path`, none).
pub(super) fn optional_list<'v>(
    value: Option<&'v Value>,
    path: &str,
    errs: &mut Errors,
) -> &'v [Value] {
    match value {
        None | Some(Value::Null) => &[],
        Some(Value::Sequence(list)) => list,
        Some(_) => {
            errs.push(path, "expected a list");
            &[]
        }
    }
}

/// Deserializes `value` as `T`, reporting a failure under `path` plus the inner path.
pub(super) fn section<T: DeserializeOwned>(
    value: &Value,
    path: &str,
    errs: &mut Errors,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                format!("{path}.{inner}")
            };
            errs.push(full, e.into_inner());
            None
        }
    }
}

/// The single-valued sections, deserialized (list sections, `upstreams`
/// and `routing`, are read entry by entry by their own modules).
pub(super) struct Sections {
    pub server: Option<raw::Server>,
    pub logging: raw::Logging,
    pub auth: raw::Auth,
    pub policy: raw::Policy,
    pub audit: Option<raw::Audit>,
    pub admin: Option<raw::Admin>,
    pub tunnel: Option<raw::Tunnel>,
    pub legacy_sse: Option<raw::LegacySse>,
    pub tool_integrity: Option<raw::ToolIntegrity>,
    pub tls: Option<raw::Tls>,
    pub sessions: Option<raw::Sessions>,
    pub proxy_protocol: Option<raw::ProxyProtocol>,
    pub rate_limit: Option<raw::RateLimit>,
    pub headers: raw::UpstreamHeaders,
}

impl Sections {
    /// Deserializes each section present, in a fixed order (so problems
    /// are listed the same way every time).
    pub(super) fn read(root: &Mapping, errs: &mut Errors) -> Self {
        fn opt<T: DeserializeOwned>(root: &Mapping, key: &str, errs: &mut Errors) -> Option<T> {
            root.get(key).and_then(|v| section::<T>(v, key, errs))
        }
        let server = match root.get("server") {
            Some(v) => section::<raw::Server>(v, "server", errs),
            None => {
                errs.push("server", "missing (server.listen is required)");
                None
            }
        };
        Sections {
            server,
            logging: opt(root, "logging", errs).unwrap_or_default(),
            auth: opt(root, "auth", errs).unwrap_or_default(),
            policy: opt(root, "policy", errs).unwrap_or_default(),
            audit: opt(root, "audit", errs),
            admin: opt(root, "admin", errs),
            tunnel: opt(root, "tunnel", errs),
            legacy_sse: opt(root, "legacy_sse", errs),
            tool_integrity: opt(root, "tool_integrity", errs),
            tls: opt(root, "tls", errs),
            sessions: opt(root, "sessions", errs),
            proxy_protocol: opt(root, "proxy_protocol", errs),
            rate_limit: opt(root, "rate_limit", errs),
            headers: opt(root, "upstream_headers", errs).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{errors, one_error, GOOD};

    #[test]
    fn unknown_keys_are_reported_with_path() {
        one_error(
            &GOOD.replace("listen:", "lisen:"),
            "server.lisen: unknown field `lisen`",
        );
        one_error(&format!("{GOOD}\nbogus: 1\n"), "bogus: unknown section");
        // found by the config_load fuzzer: a tagged empty key
        one_error(
            &format!("{GOOD}\n!!ch2 : a\n"),
            "(root): a section name is empty",
        );
        one_error(
            &GOOD.replace("    url:", "    colour: red\n    url:"),
            "upstreams[0].colour: unknown field `colour`",
        );
        one_error(
            &GOOD.replace("{method: \"*\"}", "{methd: \"*\"}"),
            "routing[0].match.methd: unknown field `methd`",
        );
    }

    #[test]
    fn wrong_types_are_reported_with_path() {
        one_error(
            &GOOD.replace(
                "listen: 127.0.0.1:7332",
                "listen: 127.0.0.1:7332\n  limits: {max_body_bytes: lots}",
            ),
            "server.limits.max_body_bytes",
        );
    }

    #[test]
    fn missing_sections() {
        let e = errors("logging: {level: info}\n");
        for want in ["server: missing", "upstreams: missing", "routing: missing"] {
            assert!(
                e.iter().any(|l| l.contains(want)),
                "wanted {want:?} in {e:#?}"
            );
        }
        one_error("", "configuration is empty");
        one_error("- a\n- b\n", "expected a mapping");
        one_error("server: [", "(yaml)");
    }
}
