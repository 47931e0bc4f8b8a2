//! Gateway configurations as typed YAML values, edited by path instead of by
//! text: [`Config::base`] (what most tests start from), a test's own template
//! ([`Config::parse`]) or the file a gateway runs with ([`Config::load`]);
//! the sections several tests add (API keys, audit, sessions, the admin
//! listener, endpoint pools) as named edits. No edit misses silently:
//! [`Config::set`] and [`Config::remove`] panic with the path when it does
//! not exist, [`Config::insert`] when it already does. `{PORT}` and `{DIR}`
//! in string values stand for the gateway's port and directory until the
//! launcher (or [`Config::with_port`], [`Config::with_dir`]) fills them in.

use std::path::Path;

use serde::Serialize;
use serde_yaml::{Mapping, Value};

use super::ports::Port;

/// [`Config::base`]: the test's port and directory, one worker, a short
/// grace; anonymous access to one upstream `up`; a policy that allows
/// everything to every tenant; JSON logs.
const BASE: &str = r#"
server:
  listen: 127.0.0.1:{PORT}
  path: /mcp
  threads: 1
  grace_period_secs: 2
  pid_file: "{DIR}/gw.pid"
  upgrade_sock: "{DIR}/gw.sock"
auth: {anonymous: true}
upstreams:
  - name: up
    url: set-by-config-base
    timeout_ms: 2000
    connect_timeout_ms: 1000
    auth: {header: X-Upstream-Key, value: upstream-secret}
routing:
  - match: {method: "*"}
    upstream: up
policy:
  rules:
    - subject: {tenant: "*"}
      allow: {methods: ["*"], tools: ["*"], resources: ["*"], prompts: ["*"]}
logging: {level: info, format: json}
"#;

/// A YAML value (what [`yaml`] and [`api_key`] return).
pub type Yaml = Value;

/// A configuration being built, and the port reservations it names (kept
/// by the gateway started with it).
#[derive(Clone, Debug)]
pub struct Config {
    root: Value,
    ports: Vec<Port>,
}

/// A YAML snippet as a value: `yaml("{interval_ms: 200, timeout_ms: 100}")`.
pub fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("bad YAML ({e}):\n{text}"))
}

/// An `auth.api_keys` entry; no `client` field when `client` is `None`.
pub fn api_key(id: &str, key: &str, tenant: &str, client: Option<&str>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in [("id", id), ("key", key), ("tenant", tenant)] {
        m.insert(k.into(), v.into());
    }
    if let Some(c) = client {
        m.insert("client".into(), c.into());
    }
    Value::Mapping(m)
}

fn value(v: impl Serialize) -> Value {
    serde_yaml::to_value(v).expect("a YAML value")
}

/// One step of a path: `upstreams[0].url` is `upstreams`, `0`, `url`.
#[derive(Clone, Copy, Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let key_end = part.find('[').unwrap_or(part.len());
        if key_end > 0 {
            out.push(Seg::Key(&part[..key_end]));
        }
        let mut rest = &part[key_end..];
        while !rest.is_empty() {
            let (index, after) = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(i, after)| Some((i.parse().ok()?, after)))
                .unwrap_or_else(|| panic!("bad config path `{path}`"));
            out.push(Seg::Index(index));
            rest = after;
        }
    }
    assert!(!out.is_empty(), "empty config path");
    out
}

fn child<'v>(v: &'v mut Value, seg: Seg<'_>) -> Option<&'v mut Value> {
    match seg {
        Seg::Key(k) => v.as_mapping_mut()?.get_mut(k),
        Seg::Index(i) => v.as_sequence_mut()?.get_mut(i),
    }
}

/// Replaces `pat` in every string value; how many strings changed.
fn fill(v: &mut Value, pat: &str, with: &str) -> usize {
    match v {
        Value::String(s) if s.contains(pat) => {
            *s = s.replace(pat, with);
            1
        }
        Value::Sequence(items) => items.iter_mut().map(|i| fill(i, pat, with)).sum(),
        Value::Mapping(m) => m.iter_mut().map(|(_, i)| fill(i, pat, with)).sum(),
        Value::Tagged(t) => fill(&mut t.value, pat, with),
        _ => 0,
    }
}

impl Config {
    /// The configuration most tests start from (see [`BASE`]), for an
    /// upstream at `upstream_url`.
    pub fn base(upstream_url: &str) -> Config {
        Config::parse(BASE).set("upstreams[0].url", upstream_url)
    }

    /// A test's own YAML template.
    pub fn parse(text: &str) -> Config {
        let root = yaml(text);
        assert!(root.is_mapping(), "a config is a mapping:\n{text}");
        Config {
            root,
            ports: Vec::new(),
        }
    }

    /// A configuration file (one a gateway runs with, or a shipped one).
    pub fn load(path: &Path) -> Config {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Config::parse(&text)
    }

    fn missing(&self, path: &str, what: &str) -> ! {
        panic!(
            "config: `{path}` {what} (set/remove change keys that exist, insert adds new ones) in:\n{}",
            self.to_yaml()
        )
    }

    /// The value at `path`, if there is one.
    pub fn try_get(&self, path: &str) -> Option<&Value> {
        segments(path)
            .into_iter()
            .try_fold(&self.root, |node, seg| match seg {
                Seg::Key(k) => node.as_mapping()?.get(k),
                Seg::Index(i) => node.as_sequence()?.get(i),
            })
    }

    /// Whether `path` exists.
    pub fn has(&self, path: &str) -> bool {
        self.try_get(path).is_some()
    }

    /// The value at `path`; panics if there is none.
    pub fn get(&self, path: &str) -> &Value {
        self.try_get(path)
            .unwrap_or_else(|| self.missing(path, "does not exist"))
    }

    fn at_mut(&mut self, path: &str) -> &mut Value {
        // checked first, so the panic can show the whole configuration
        if !self.has(path) {
            self.missing(path, "does not exist");
        }
        segments(path)
            .into_iter()
            .try_fold(&mut self.root, child)
            .expect("checked above")
    }

    /// Changes the existing value at `path`.
    pub fn set(mut self, path: &str, v: impl Serialize) -> Config {
        *self.at_mut(path) = value(v);
        self
    }

    /// Adds a new key (missing parent mappings are created) or, for a
    /// sequence index, a new item before that index; panics if the key
    /// already exists.
    pub fn insert(mut self, path: &str, v: impl Serialize) -> Config {
        let segs = segments(path);
        let (last, parents) = segs.split_last().expect("a path");
        if self.has(path) && matches!(last, Seg::Key(_)) {
            self.missing(path, "already exists");
        }
        let mut node = &mut self.root;
        for seg in parents {
            node = match (*seg, node) {
                (Seg::Key(k), Value::Mapping(m)) => {
                    if !m.contains_key(k) {
                        m.insert(k.into(), Value::Mapping(Mapping::new()));
                    }
                    m.get_mut(k).expect("inserted")
                }
                (Seg::Index(i), Value::Sequence(s)) if i < s.len() => &mut s[i],
                _ => panic!("config: cannot insert `{path}`: {seg:?} is not there"),
            };
        }
        match (*last, node) {
            (Seg::Key(k), Value::Mapping(m)) => {
                m.insert(k.into(), value(v));
            }
            (Seg::Index(i), Value::Sequence(s)) if i <= s.len() => s.insert(i, value(v)),
            _ => panic!("config: cannot insert `{path}`: its parent is not a mapping/sequence"),
        }
        self
    }

    /// Appends to the existing sequence at `path`.
    pub fn push(mut self, path: &str, v: impl Serialize) -> Config {
        let v = value(v);
        match self.at_mut(path) {
            Value::Sequence(s) => s.push(v),
            _ => panic!("config: `{path}` is not a sequence"),
        }
        self
    }

    /// Removes the existing key or sequence item at `path`.
    pub fn remove(mut self, path: &str) -> Config {
        if !self.has(path) {
            self.missing(path, "does not exist");
        }
        let segs = segments(path);
        let (last, parents) = segs.split_last().expect("a path");
        let parent = parents
            .iter()
            .copied()
            .try_fold(&mut self.root, child)
            .expect("checked above");
        match (*last, parent) {
            (Seg::Key(k), Value::Mapping(m)) => {
                m.shift_remove(k);
            }
            (Seg::Index(i), Value::Sequence(s)) => {
                s.remove(i);
            }
            _ => unreachable!("checked above"),
        }
        self
    }

    fn fill_in(mut self, pat: &str, with: &str) -> Config {
        if fill(&mut self.root, pat, with) == 0 {
            panic!("config: no {pat} to fill in:\n{}", self.to_yaml());
        }
        self
    }

    /// `{PORT}` filled in (panics if no value has it).
    pub fn with_port(self, port: u16) -> Config {
        self.fill_in("{PORT}", &port.to_string())
    }

    /// `{DIR}` filled in (panics if no value has it).
    pub fn with_dir(self, dir: impl AsRef<Path>) -> Config {
        let dir = dir.as_ref().display().to_string();
        self.fill_in("{DIR}", &dir)
    }

    /// `auth` replaced by these API keys ([`api_key`]; anonymous access off).
    pub fn api_keys(self, keys: impl Serialize) -> Config {
        let mut auth = Mapping::new();
        auth.insert("api_keys".into(), value(keys));
        self.set("auth", auth)
    }

    /// An audit log in the gateway's directory (`{DIR}/audit.jsonl`).
    pub fn audit(self) -> Config {
        self.insert("audit", yaml(r#"{path: "{DIR}/audit.jsonl"}"#))
    }

    /// Sealed sessions with these keys (the first seals).
    pub fn sessions(self, keys: &[&str]) -> Config {
        let mut sessions = Mapping::new();
        sessions.insert("keys".into(), value(keys));
        self.insert("sessions", sessions)
    }

    /// The admin listener on a reserved port (held as long as this config
    /// and the gateway started with it), with or without a token.
    pub fn admin(mut self, port: &Port, token: Option<&str>) -> Config {
        let mut admin = Mapping::new();
        admin.insert("listen".into(), format!("127.0.0.1:{port}").into());
        if let Some(t) = token {
            admin.insert("token".into(), t.into());
        }
        self.ports.push(port.clone());
        self.insert("admin", admin)
    }

    /// The first upstream as a pool of `urls` instead of one `url`.
    pub fn endpoints(self, urls: &[String]) -> Config {
        self.remove("upstreams[0].url")
            .insert("upstreams[0].endpoints", urls)
    }

    /// The port reservations the configuration names.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// The configuration as YAML text.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.root).expect("serialize config")
    }

    /// Writes the YAML file a gateway (or `mcp-edge validate`) reads.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.to_yaml())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}
