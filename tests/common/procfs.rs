//! Probes of a running process through /proc: open descriptors, fields of
//! `/proc/<pid>/status` (resident memory, threads), whether a pid exists,
//! which sockets use a port.

/// Open file descriptors of a process.
pub fn pid_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A numeric field of /proc/<pid>/status (`VmRSS:` in KiB, `Threads:`, ...).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// Whether a process with this pid exists (a zombie counts).
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The IPv4 TCP sockets whose local port is `port`, as "state uid inode"
/// triples from /proc/net/tcp, each with the pid holding it when one is
/// found (a diagnostic for a port that could not be bound).
pub fn sockets_on(port: u16) -> String {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let want = format!(":{port:04X}");
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || !f[1].ends_with(&want) {
            continue;
        }
        let holder = holder_of(f[9]).map_or_else(|| "?".to_string(), |p| p.to_string());
        out.push(format!(
            "state {} uid {} inode {} pid {holder}",
            f[3], f[7], f[9]
        ));
    }
    if out.is_empty() {
        "none".to_string()
    } else {
        out.join("; ")
    }
}

/// The pid of a process holding the socket with this inode.
fn holder_of(inode: &str) -> Option<u32> {
    let target = format!("socket:[{inode}]");
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_dir
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                return Some(pid);
            }
        }
    }
    None
}
