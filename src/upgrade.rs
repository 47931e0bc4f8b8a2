//! Zero-downtime binary upgrade around Pingora's listener hand-off.
//!
//! Pingora moves the listening sockets from an old process to a new one
//! started with `-u`: the new one binds `server.upgrade_sock` and waits,
//! SIGQUIT makes the old one send its sockets there and drain. Pingora
//! alone has one hole: on SIGQUIT the old process shuts down even when no
//! new process took the sockets (a new binary that failed to start), and
//! the port goes dark. This module closes it and wraps the operator steps:
//!
//! - [`GuardedSignals`] replaces Pingora's signal watcher: SIGQUIT becomes
//!   an upgrade only once a new process is listening on the upgrade socket
//!   (seen in `/proc/net/unix`, without touching the socket); otherwise the
//!   old process logs the refusal and keeps serving. SIGTERM and SIGINT
//!   behave as in Pingora.
//! - [`upgrade`] (`mcp-edge upgrade -c FILE`, what `systemctl reload` runs):
//!   validates the configuration, starts `run -u -d` from the installed
//!   binary, waits until it waits for the sockets, sends SIGQUIT to the old
//!   process (from `server.pid_file`) and waits for the new pid file.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};

/// `__SO_ACCEPTCON`: the flag `/proc/net/unix` shows for a listening socket.
const ACCEPTING: u32 = 0x0001_0000;

/// Whether some process is listening on the Unix socket at `path`
/// (a new gateway waiting for the listeners). Reads `/proc/net/unix`.
pub fn receiver_waiting(path: &str) -> bool {
    std::fs::read_to_string("/proc/net/unix")
        .map(|table| listening_in(&table, path))
        .unwrap_or(false)
}

/// `/proc/net/unix` lines: `Num RefCount Protocol Flags Type St Inode Path`.
fn listening_in(table: &str, path: &str) -> bool {
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 8
            && f[7] == path
            && u32::from_str_radix(f[3], 16).is_ok_and(|flags| flags & ACCEPTING != 0)
    })
}

/// Pingora's Unix signal watcher, with SIGQUIT guarded (module doc).
pub struct GuardedSignals {
    /// `server.upgrade_sock`.
    pub upgrade_sock: String,
    /// How long SIGQUIT waits for a new process to appear.
    pub wait: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for GuardedSignals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            log::error!("cannot install signal handlers; falling back to SIGTERM-only shutdown");
            std::future::pending::<()>().await;
            return ShutdownSignal::GracefulTerminate;
        };
        loop {
            tokio::select! {
                _ = quit.recv() => {
                    if self.new_process_waiting().await {
                        log::info!("SIGQUIT: a new process waits on {}; handing the listeners over", self.upgrade_sock);
                        return ShutdownSignal::GracefulUpgrade;
                    }
                    log::error!(
                        "SIGQUIT: no new process is waiting on {} after {} ms; upgrade refused, still serving \
                         (start `mcp-edge run -u` first, or use `mcp-edge upgrade`)",
                        self.upgrade_sock,
                        self.wait.as_millis()
                    );
                }
                _ = term.recv() => {
                    log::info!("SIGTERM: draining and exiting");
                    return ShutdownSignal::GracefulTerminate;
                }
                _ = int.recv() => {
                    log::info!("SIGINT: exiting now");
                    return ShutdownSignal::FastShutdown;
                }
            }
        }
    }
}

impl GuardedSignals {
    async fn new_process_waiting(&self) -> bool {
        let end = Instant::now() + self.wait;
        loop {
            if receiver_waiting(&self.upgrade_sock) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Why an upgrade did not happen (the old process keeps serving in each case).
#[derive(Debug)]
pub enum UpgradeError {
    /// No running gateway: nothing to upgrade (start it instead).
    NotRunning(String),
    /// The new process could not be started or exited before taking over.
    NewProcess(String),
    /// The old process could not be signalled.
    Signal(String),
    /// The new process did not report itself within the time allowed.
    Timeout(String),
}

impl std::fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpgradeError::NotRunning(m) => write!(f, "nothing to upgrade: {m}"),
            UpgradeError::NewProcess(m) => write!(f, "new process: {m}"),
            UpgradeError::Signal(m) => write!(f, "signal: {m}"),
            UpgradeError::Timeout(m) => write!(f, "timeout: {m}"),
        }
    }
}

/// The pid in a pid file, if the file holds one.
pub fn read_pid(path: &str) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Upgrades the gateway whose pid file and upgrade socket `config` names
/// to the binary `exe`: start `exe run -u -d -c config`, wait until it
/// listens on the upgrade socket, SIGQUIT the old process, wait for the new
/// pid. Returns (old pid, new pid). The configuration must already be valid
/// (the caller compiled it).
pub fn upgrade(
    exe: &Path,
    config: &Path,
    pid_file: &str,
    upgrade_sock: &str,
    wait: Duration,
) -> Result<(i32, i32), UpgradeError> {
    let old = read_pid(pid_file)
        .filter(|p| alive(*p))
        .ok_or_else(|| UpgradeError::NotRunning(format!("no live pid in {pid_file}")))?;
    let mut child = std::process::Command::new(exe)
        .args(["run", "-u", "-d", "-c"])
        .arg(config)
        .spawn()
        .map_err(|e| UpgradeError::NewProcess(format!("{}: {e}", exe.display())))?;
    let end = Instant::now() + wait;
    // the new process binds the upgrade socket once its configuration compiled
    while !receiver_waiting(upgrade_sock) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(UpgradeError::NewProcess(format!(
                "exited ({status}) before taking the listeners; the old process ({old}) keeps serving"
            )));
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(UpgradeError::Timeout(format!(
                "the new process did not listen on {upgrade_sock}; the old process ({old}) keeps serving"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGQUIT,
    )
    .map_err(|e| UpgradeError::Signal(format!("SIGQUIT to {old}: {e}")))?;
    // the foreground half exits once it has the sockets and has daemonized
    let status = child
        .wait()
        .map_err(|e| UpgradeError::NewProcess(e.to_string()))?;
    if !status.success() {
        return Err(UpgradeError::NewProcess(format!("exited ({status})")));
    }
    loop {
        if let Some(new) = read_pid(pid_file).filter(|p| *p != old && alive(*p)) {
            return Ok((old, new));
        }
        if Instant::now() >= end + Duration::from_secs(10) {
            return Err(UpgradeError::Timeout(format!("no new pid in {pid_file}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/mcp-edge/upgrade.sock
0000000000000000: 00000003 00000000 00000000 0001 03 12346 /run/other.sock
0000000000000000: 00000003 00000000 00000000 0001 03 12347
";

    #[test]
    fn only_a_listening_socket_at_that_path_counts() {
        assert!(listening_in(TABLE, "/run/mcp-edge/upgrade.sock"));
        // connected, not listening
        assert!(!listening_in(TABLE, "/run/other.sock"));
        assert!(!listening_in(TABLE, "/run/mcp-edge/upgrade"));
        assert!(!listening_in("", "/x"));
    }

    #[test]
    fn a_real_listener_is_seen_and_gone_when_closed() {
        let dir = std::env::temp_dir().join(format!("mcp-edge-upg-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("u.sock");
        let _ = std::fs::remove_file(&path);
        let p = path.to_string_lossy().to_string();
        assert!(!receiver_waiting(&p));
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(receiver_waiting(&p));
        drop(l);
        assert!(!receiver_waiting(&p));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
