//! The real MCP peers tests run against: `@modelcontextprotocol/server-everything`
//! and the Python SDK `MCPServer` (tests/peers/) on reserved loopback
//! ports, the SDK client scripts, and checks for the tools they need.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::launcher::root;
use super::ports::Port;

/// Whether a command exists on PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Path to the test peers (node/python scripts).
pub fn peers_dir() -> PathBuf {
    root().join("tests/peers")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A real MCP peer process (server-everything or the Python SDK server).
pub struct Peer {
    pub port: u16,
    child: std::process::Child,
    reservation: Port,
}

impl Peer {
    /// `@modelcontextprotocol/server-everything` (streamableHttp) on a reserved loopback port.
    pub fn everything() -> Peer {
        Self::everything_on(Port::reserve())
    }

    /// server-everything on a reserved port (a restarted upstream that forgot
    /// its sessions: [`Peer::reservation`] of the one it replaces).
    pub fn everything_on(reservation: Port) -> Peer {
        let port = reservation.get();
        let dir = peers_dir();
        assert!(
            dir.join("node_modules/@modelcontextprotocol/server-everything")
                .exists(),
            "npm test peers missing: run `make peers` (scripts/deps.sh)"
        );
        let child = Command::new(dir.join("everything.sh"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server-everything");
        Self::ready(Peer {
            port,
            child,
            reservation,
        })
    }

    /// server-everything in its legacy HTTP+SSE (2024-11-05) mode: GET `/sse`,
    /// POSTs to the path its `endpoint` event names.
    pub fn everything_sse() -> Peer {
        let reservation = Port::reserve();
        let port = reservation.get();
        let dir = peers_dir();
        let child = Command::new("node")
            .arg("-r")
            .arg(dir.join("loopback.cjs"))
            .arg(dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
            .arg("sse")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server-everything sse");
        Self::ready(Peer {
            port,
            child,
            reservation,
        })
    }

    /// The Python SDK `MCPServer` (tests/peers/py_server.py) on a reserved loopback port.
    pub fn python() -> Peer {
        Peer::python_with(&[])
    }

    /// The same with more flags (`--json`: JSON answers instead of SSE).
    pub fn python_with(flags: &[&str]) -> Peer {
        let reservation = Port::reserve();
        let port = reservation.get();
        let child = Command::new("python3")
            .arg(peers_dir().join("py_server.py"))
            .args(["--port", &port.to_string()])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start py_server.py");
        Self::ready(Peer {
            port,
            child,
            reservation,
        })
    }

    fn ready(p: Peer) -> Peer {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", p.port)).is_ok() {
                return p;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("MCP peer did not listen on {}", p.port);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The port's reservation, to start a replacement on it after this peer is dropped.
    pub fn reservation(&self) -> Port {
        self.reservation.clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client script and returns its JSON step lines; panics with its
/// output if it fails.
pub fn run_client(cmd: &mut Command) -> Vec<serde_json::Value> {
    let out = cmd
        .current_dir(peers_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let all_ok = steps.iter().all(|s| s["ok"] == true);
    let done = steps.last().is_some_and(|s| s["step"] == "done");
    assert!(
        out.status.success() && all_ok && done,
        "client failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    steps
}
