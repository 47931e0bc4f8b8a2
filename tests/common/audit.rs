//! Reading a gateway's audit log (JSON lines): one reader whose per-test
//! differences are options: a pause for the writer first, strict parsing
//! (a line that is not JSON fails the test) or skipping such lines, leaving
//! out the readiness probes' `/healthz` lines, waiting for a line count.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::launcher::Gateway;

/// An audit log and how to read it. Defaults: read at once, skip lines that
/// are not JSON, keep `/healthz` lines.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
    settle: Duration,
    strict: bool,
    skip_health: bool,
}

impl AuditLog {
    /// The audit log a gateway's configuration puts in its directory
    /// (`{DIR}/audit.jsonl`, [`super::Config::audit`]).
    pub fn of(g: &Gateway) -> AuditLog {
        AuditLog::at(&g.dir.path().join("audit.jsonl"))
    }

    /// An audit log anywhere.
    pub fn at(path: &Path) -> AuditLog {
        AuditLog {
            path: path.to_path_buf(),
            settle: Duration::ZERO,
            strict: false,
            skip_health: false,
        }
    }

    /// Waits `ms` before each read (audit lines are written after the response).
    pub fn settle_ms(mut self, ms: u64) -> AuditLog {
        self.settle = Duration::from_millis(ms);
        self
    }

    /// Every line must be JSON (panics naming the line otherwise).
    pub fn strict(mut self) -> AuditLog {
        self.strict = true;
        self
    }

    /// Leaves out the lines of `/healthz` requests (the readiness probes).
    pub fn skip_health(mut self) -> AuditLog {
        self.skip_health = true;
        self
    }

    /// The file's lines as they are (no parsing, no filtering).
    pub fn raw(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The lines, parsed.
    pub fn lines(&self) -> Vec<Value> {
        if !self.settle.is_zero() {
            thread::sleep(self.settle);
        }
        self.raw()
            .iter()
            .filter_map(|l| match serde_json::from_str::<Value>(l) {
                Ok(v) => Some(v),
                Err(e) if self.strict => panic!("audit line is not JSON ({e}): {l}"),
                Err(_) => None,
            })
            .filter(|a| !self.skip_health || a["path"] != "/healthz")
            .collect()
    }

    /// The lines once there are at least `n` (or after 5 s, whatever there is).
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.lines();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `reason` of every line that has one.
    pub fn reasons(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|v| v["reason"].as_str().map(String::from))
            .collect()
    }
}
