//! What compiling a configuration touches besides its text: the files it
//! names (certificates, keys, CA bundles, a JWKS file), the audit directory
//! it checks, the programs `type: stdio` upstreams run, the user's home
//! directory, and the host names it resolves (`server.listen`, upstream
//! URLs). The compiler goes through these functions, which do the real thing,
//! except on a thread inside [`hermetic`]: there no file is read ("not
//! read"), every directory exists, and only IP literals and `localhost`
//! resolve. That is how the config fuzz contract compiles arbitrary text
//! without touching the machine or the network (a fuzzed path could name
//! `/dev/zero`, a fuzzed host name would be a DNS query).

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

thread_local! {
    static HERMETIC: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with file reads and name resolution off on this thread.
#[cfg(any(test, feature = "contracts"))]
pub(crate) fn hermetic<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            HERMETIC.with(|h| h.set(self.0));
        }
    }
    let _restore = Restore(HERMETIC.with(|h| h.replace(true)));
    f()
}

fn on() -> bool {
    HERMETIC.with(Cell::get)
}

/// `std::fs::read`, or a "not read" error inside [`hermetic`].
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    if on() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "not read (hermetic check)",
        ));
    }
    std::fs::read(path)
}

/// `Path::is_dir`, or `true` inside [`hermetic`].
pub(crate) fn is_dir(path: &Path) -> bool {
    on() || path.is_dir()
}

/// Inside [`hermetic`]: an IP literal or `localhost` (127.0.0.1), nothing else.
fn literal(host: &str, port: u16) -> Option<SocketAddr> {
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
            .parse()
            .ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// The first address a `host:port` text resolves to.
pub(crate) fn resolve(addr: &str) -> Option<SocketAddr> {
    if on() {
        if let Ok(a) = addr.parse() {
            return Some(a);
        }
        let (host, port) = addr.rsplit_once(':')?;
        return literal(host, port.parse().ok()?);
    }
    addr.to_socket_addrs().ok()?.next()
}

/// The first address `host` resolves to, with `port`.
pub(crate) fn resolve_host(host: &str, port: u16) -> Option<SocketAddr> {
    if on() {
        return literal(host, port);
    }
    (host, port).to_socket_addrs().ok()?.next()
}

/// Where `program` is found: itself when it names a path (has a `/`), else
/// the first executable file of that name on `search` (a `PATH` value).
/// Inside [`hermetic`] every program is found.
pub(crate) fn find_executable(program: &str, search: &str) -> Result<PathBuf, String> {
    if on() {
        return Ok(PathBuf::from(program));
    }
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = Path::new(program);
        return if !p.exists() {
            Err(format!("\"{program}\" does not exist"))
        } else if executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(format!("\"{program}\" is not an executable file"))
        };
    }
    search
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| executable(p))
        .ok_or_else(|| format!("\"{program}\" is not an executable on PATH \"{search}\""))
}

/// The home directory of the user the gateway runs as (the user database),
/// `/` when it has none; `/` inside [`hermetic`].
pub(crate) fn home_dir() -> String {
    if on() {
        return "/".into();
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "/".into(), |u| u.dir.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermetic_reads_nothing_and_resolves_only_literals() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(read(&here).is_ok());
        hermetic(|| {
            assert!(read(&here).is_err());
            assert!(is_dir(Path::new("/no/such/dir")));
            assert_eq!(resolve("127.0.0.1:80"), "127.0.0.1:80".parse().ok());
            assert_eq!(resolve("localhost:80"), "127.0.0.1:80".parse().ok());
            assert_eq!(resolve("[::1]:80"), "[::1]:80".parse().ok());
            assert_eq!(resolve("example.com:80"), None);
            assert_eq!(resolve_host("::1", 9), "[::1]:9".parse().ok());
            assert_eq!(resolve_host("mcp.example.com", 443), None);
        });
        // and back to normal afterwards
        assert!(read(&here).is_ok());
        assert!(!is_dir(Path::new("/no/such/dir")));
    }

    #[test]
    fn executables_are_found_by_path_or_on_path() {
        assert!(find_executable("/bin/sh", "").is_ok());
        assert!(find_executable("sh", "/nonexistent:/usr/bin:/bin").is_ok());
        let missing = find_executable("/nonexistent/server", "").unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        let plain = find_executable("/etc/passwd", "").unwrap_err();
        assert!(plain.contains("not an executable"), "{plain}");
        assert!(find_executable("no-such-program-x", "/usr/bin:/bin").is_err());
        // a directory is not a program
        assert!(find_executable("/usr/bin", "").is_err());
        assert!(hermetic(
            || find_executable("/nonexistent/server", "").is_ok()
        ));
    }
}
