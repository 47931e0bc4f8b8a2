//! Loopback ports that cannot race. A port is taken from a fixed range below
//! the kernel's ephemeral range (so no outgoing connection is ever given it)
//! and reserved with a lock file, `/tmp/mcp-edge-test-ports/<port>`, holding
//! the owner's pid: exclusive across the threads of one test binary, across
//! test binaries and across checkouts running tests at the same time. A
//! reservation is checked bindable before it is handed out and released when
//! the last clone of its [`Port`] drops; files of dead processes are reclaimed.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::procfs::pid_alive;

/// Where the reservations live (shared by every process on the machine).
pub const PORTS_DIR: &str = "/tmp/mcp-edge-test-ports";
/// The range ports are taken from, less whatever of it the kernel uses for
/// outgoing connections (`/proc/sys/net/ipv4/ip_local_port_range`).
pub const PORT_RANGE: std::ops::Range<u16> = 20000..32000;

/// A reserved loopback port. Clones share the reservation; it ends when the
/// last one drops (the launcher keeps one for a gateway's whole life).
#[derive(Clone, Debug)]
pub struct Port(Arc<Reservation>);

#[derive(Debug)]
struct Reservation {
    port: u16,
    file: PathBuf,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

impl Port {
    /// Reserves a port nobody else holds and that can be bound right now.
    pub fn reserve() -> Port {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let ports = candidates();
        let dir = Path::new(PORTS_DIR);
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {PORTS_DIR}: {e}"));
        // each process starts somewhere else in the range and moves on with
        // every reservation, so a port just released is not handed out again
        let start =
            (std::process::id() as usize).wrapping_mul(7919) + NEXT.fetch_add(1, Ordering::Relaxed);
        for i in 0..ports.len() {
            let port = ports[(start + i) % ports.len()];
            if let Some(r) = claim(dir, port) {
                if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                    return Port(Arc::new(r));
                }
            }
        }
        panic!("no free test port in {PORT_RANGE:?} (reservations in {PORTS_DIR})");
    }

    /// The port number.
    pub fn get(&self) -> u16 {
        self.0.port
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.port)
    }
}

/// [`PORT_RANGE`] without the kernel's ephemeral ports.
fn candidates() -> Vec<u16> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = text
        .split_whitespace()
        .filter_map(|n| n.parse::<u16>().ok());
    let (lo, hi) = match (bounds.next(), bounds.next()) {
        (Some(lo), Some(hi)) => (lo, hi),
        _ => (32768, 60999),
    };
    let ports: Vec<u16> = PORT_RANGE.filter(|p| *p < lo || *p > hi).collect();
    assert!(
        ports.len() >= 1000,
        "the ephemeral port range {lo}-{hi} leaves too few test ports in {PORT_RANGE:?}"
    );
    ports
}

/// Who holds a reservation file.
enum Owner {
    Gone,
    Alive,
    Dead,
}

fn owner(file: &Path) -> Owner {
    match fs::read_to_string(file) {
        Err(e) if e.kind() == ErrorKind::NotFound => Owner::Gone,
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) if pid_alive(pid) => Owner::Alive,
            _ => Owner::Dead,
        },
        // unreadable: leave it alone
        Err(_) => Owner::Alive,
    }
}

/// Creates `file` holding this process's pid, atomically: the pid is written
/// to a fresh private file first (`create_new`), which is then hard-linked
/// to `file`; the link fails if `file` exists, so a reader never sees a
/// half-written owner.
fn create_owned(file: &Path) -> std::io::Result<()> {
    static TMP: AtomicUsize = AtomicUsize::new(0);
    let pid = std::process::id();
    let tmp = file.with_file_name(format!(
        ".new-{pid}-{}",
        TMP.fetch_add(1, Ordering::Relaxed)
    ));
    // a leftover of a dead process that had this pid
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let linked = writeln!(f, "{pid}").and_then(|_| fs::hard_link(&tmp, file));
    let _ = fs::remove_file(&tmp);
    linked
}

/// Takes the reservation file of `port`, reclaiming it from a dead owner.
fn claim(dir: &Path, port: u16) -> Option<Reservation> {
    let file = dir.join(port.to_string());
    for _ in 0..2 {
        match create_owned(&file) {
            Ok(()) => return Some(Reservation { port, file }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if !reclaim(dir, port, &file) {
                    return None;
                }
            }
            Err(e) => panic!("cannot reserve {}: {e}", file.display()),
        }
    }
    None
}

/// Removes `file` if its owner is dead; whether it is gone now. Removal
/// happens under `<port>.reclaim` (taken like a reservation), and the owner
/// is read again under it, so a reclaimer never removes a reservation another
/// one has just made. A reclaimer that died holding that lock leaves the port
/// skipped, never shared.
fn reclaim(dir: &Path, port: u16, file: &Path) -> bool {
    match owner(file) {
        Owner::Gone => return true,
        Owner::Alive => return false,
        Owner::Dead => {}
    }
    let lock = dir.join(format!("{port}.reclaim"));
    if create_owned(&lock).is_err() {
        return false;
    }
    let gone = match owner(file) {
        Owner::Gone => true,
        Owner::Alive => false,
        Owner::Dead => fs::remove_file(file).is_ok(),
    };
    let _ = fs::remove_file(&lock);
    gone
}
