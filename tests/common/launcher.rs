//! Starting the real `mcp-edge` binary: a [`Config`] written to the
//! gateway's own temporary directory with its reserved port and directory
//! filled in, readiness probes, its log and access lines, signals, and
//! `mcp-edge validate` on a configuration.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::client::raw;
use super::config::Config;
use super::ports::Port;

/// Path of the built gateway binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mcp-edge")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running gateway process. Its port reservations (its own and the ones
/// its configuration names) end after the process is killed.
pub struct Gateway {
    pub port: u16,
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    _ports: Vec<Port>,
}

impl Gateway {
    /// Starts the gateway with `cfg` (`{PORT}`: its port, `{DIR}`: its directory).
    pub fn start(cfg: &Config) -> Gateway {
        Self::start_with_env(cfg, &[])
    }

    /// Like `start`, with extra environment variables.
    pub fn start_with_env(cfg: &Config, env: &[(&str, &str)]) -> Gateway {
        Self::start_full(cfg, env, b"")
    }

    /// Like `start`; the readiness probe sends `probe_prefix` first (a PROXY
    /// protocol header when the gateway expects one).
    pub fn start_with_probe_prefix(cfg: &Config, probe_prefix: &[u8]) -> Gateway {
        Self::start_full(cfg, &[], probe_prefix)
    }

    fn start_full(cfg: &Config, env: &[(&str, &str)], probe_prefix: &[u8]) -> Gateway {
        let mut probe = probe_prefix.to_vec();
        probe.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Self::start_probed(cfg, env, &|port| {
            raw(port, &probe).is_ok_and(|r| r.status == 200)
        })
    }

    /// Starts the gateway and waits until `ready(port)` says it serves (a
    /// TLS listener needs a TLS probe).
    pub fn start_probed(
        cfg: &Config,
        env: &[(&str, &str)],
        ready: &dyn Fn(u16) -> bool,
    ) -> Gateway {
        Self::start_prepared(cfg, env, &|_| {}, ready)
    }

    /// Like `start_probed`, running `prepare(dir)` before the gateway starts
    /// (files the configuration names under `{DIR}`).
    pub fn start_prepared(
        cfg: &Config,
        env: &[(&str, &str)],
        prepare: &dyn Fn(&Path),
        ready: &dyn Fn(u16) -> bool,
    ) -> Gateway {
        let reservation = Port::reserve();
        let port = reservation.get();
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("gw.yaml");
        let filled = cfg.clone().with_port(port).with_dir(dir.path());
        prepare(dir.path());
        filled.write(&conf);
        let log = dir.path().join("gw.log");
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin());
        cmd.args(["run", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(logf)
            .env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn mcp-edge");
        let mut ports = cfg.ports().to_vec();
        ports.push(reservation);
        let gw = Gateway {
            port,
            child,
            dir,
            log,
            _ports: ports,
        };
        gw.wait_ready(ready);
        gw
    }

    fn wait_ready(&self, ready: &dyn Fn(u16) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ready(self.port) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not become ready; log:\n{}", self.log_text());
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The configuration file the gateway runs with.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("gw.yaml")
    }

    /// The admin listener's port, read from the configuration it runs with.
    pub fn admin_port(&self) -> u16 {
        let cfg = Config::load(&self.conf());
        let listen = cfg.get("admin.listen").as_str().expect("admin.listen");
        listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("admin port")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Access-log lines (JSON) for the MCP endpoint written so far (the
    /// readiness probes of `start` are left out).
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "access" && v["path"] != "/healthz")
            .collect()
    }

    /// Waits until at least `n` access lines exist (logging runs after the response).
    pub fn wait_access_lines(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.access_lines();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mcp-edge validate` on `cfg` as it is (written to a temporary
/// file): (success, stdout, stderr).
pub fn validate(cfg: &Config) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("validate.yaml");
    cfg.write(&path);
    let out = Command::new(bin())
        .args(["validate", "-c"])
        .arg(&path)
        .output()
        .expect("run mcp-edge validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
