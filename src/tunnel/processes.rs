//! Local stdio MCP server processes, one per MCP session, driven by the
//! relay's frames: `open` starts a process, `message` writes a line to its
//! stdin, `close` stops it; each JSON line it writes to stdout goes back as
//! a `message` frame and its exit as `closed`. The one copy of this
//! machinery: `mcp-edge tunnel` runs it at the far end of a WebSocket, the
//! gateway's `type: stdio` upstreams (`tunnel::local`) run it in-process.
//!
//! What every process gets:
//! - its own process group, stopped as a group: SIGTERM, then SIGKILL after
//!   the grace;
//! - a parent-death signal (SIGKILL), set by the gateway's own binary
//!   re-executed as a tiny launcher ([`exec_guarded`]) and spawned from one
//!   long-lived thread (the signal fires when the thread that forked the
//!   process ends), so a `kill -9` of the gateway leaves no orphan;
//! - bounded buffers: a stdout line over [`MAX_LINE`] is dropped and
//!   logged, a line that is not JSON is logged and dropped (the session
//!   goes on), a process that stops reading its stdin is stopped;
//! - stderr in the log, line by line, under the server's name.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::protocol::{ClosedReason, Frame, MAX_FRAME_BYTES};

/// The longest stdout line relayed (one frame).
pub const MAX_LINE: usize = MAX_FRAME_BYTES;
/// The longest stderr line logged whole (longer ones are cut).
const MAX_STDERR_LINE: usize = 16 * 1024;
/// Lines queued for a process's stdin before it counts as stuck.
const STDIN_QUEUE: usize = 256;
/// The first argument that makes the binary the launcher ([`exec_guarded`]).
pub const LAUNCHER_ARG: &str = "__stdio-exec";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program (a path, or a name looked up on the environment's `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// `None`: the launcher's own environment; `Some`: exactly these variables.
    pub env: Option<Vec<(String, String)>>,
}

impl Launch {
    /// `sh -c "exec LINE"` with the caller's environment (the tunnel
    /// client's `--local-stdio`).
    pub fn shell(line: &str) -> Launch {
        Launch {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), format!("exec {line}")],
            env: None,
        }
    }

    /// How it is shown in logs.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The bounds on a server's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Processes at most; a session beyond is refused.
    pub max_sessions: usize,
    /// A session with no traffic this long is stopped.
    pub idle_timeout: Duration,
    /// How long a stopped process has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

/// One running process.
struct Local {
    stdin: mpsc::Sender<String>,
    stop: Option<oneshot::Sender<ClosedReason>>,
    done: JoinHandle<()>,
    last_used: Instant,
}

/// The processes of one server, by session id.
pub struct Processes {
    name: String,
    launch: Launch,
    limits: Limits,
    stderr: log::Level,
    locals: HashMap<String, Local>,
    to_gw: mpsc::Sender<Frame>,
}

impl Processes {
    /// No process yet; frames for the gateway go to `to_gw`. `stderr` is
    /// the level the processes' stderr lines are logged at.
    pub fn new(
        name: &str,
        launch: Launch,
        limits: Limits,
        stderr: log::Level,
        to_gw: mpsc::Sender<Frame>,
    ) -> Processes {
        Processes {
            name: name.to_owned(),
            launch,
            limits,
            stderr,
            locals: HashMap::new(),
            to_gw,
        }
    }

    /// New sessions use `launch` and `limits` (running ones keep theirs).
    pub fn reconfigure(&mut self, launch: Launch, limits: Limits) {
        self.launch = launch;
        self.limits = limits;
    }

    /// Processes running.
    pub fn len(&self) -> usize {
        self.locals.len()
    }

    /// Whether no process runs.
    pub fn is_empty(&self) -> bool {
        self.locals.is_empty()
    }

    /// A `closed` frame is on its way to the gateway: forget the session.
    pub fn forget(&mut self, session: &str) {
        self.locals.remove(session);
    }

    /// Handles one frame from the gateway.
    pub async fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::Open { session } => self.open(session).await,
            Frame::Message { session, message } => {
                let Some(l) = self.locals.get_mut(&session) else {
                    self.closed(session, ClosedReason::Exited).await;
                    return;
                };
                l.last_used = Instant::now();
                match l.stdin.try_send(message.get().to_owned()) {
                    Ok(()) => {}
                    // the writer ended: the waiter reports the exit
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        log::warn!(
                            "{}: session {session}: the process stopped reading its stdin; stopping it",
                            self.name
                        );
                        self.stop(&session, ClosedReason::Crashed);
                    }
                }
            }
            Frame::Close { session } => self.stop(&session, ClosedReason::Exited),
            Frame::Closed { .. } => {}
        }
    }

    async fn closed(&self, session: String, reason: ClosedReason) {
        let _ = self.to_gw.send(Frame::Closed { session, reason }).await;
    }

    async fn open(&mut self, session: String) {
        if self.locals.len() >= self.limits.max_sessions {
            log::warn!(
                "{}: at its limit of {} processes; session refused",
                self.name,
                self.limits.max_sessions
            );
            self.closed(session, ClosedReason::Refused).await;
            return;
        }
        match start(self, &session).await {
            Ok(local) => {
                self.locals.insert(session, local);
            }
            Err(e) => {
                log::error!(
                    "{}: cannot start \"{}\": {e}",
                    self.name,
                    self.launch.display()
                );
                self.closed(session, ClosedReason::SpawnFailed).await;
            }
        }
    }

    /// Stops a session's process (its waiter reports `reason` when it is gone).
    fn stop(&mut self, session: &str, reason: ClosedReason) {
        if let Some(l) = self.locals.get_mut(session) {
            if let Some(stop) = l.stop.take() {
                let _ = stop.send(reason);
            }
        }
    }

    /// Stops the sessions idle longer than the idle timeout.
    pub fn reap_idle(&mut self) {
        let stale: Vec<String> = self
            .locals
            .iter()
            .filter(|(_, l)| l.stop.is_some() && l.last_used.elapsed() > self.limits.idle_timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for s in stale {
            log::info!(
                "{}: session {s} idle for {} s; stopping its process",
                self.name,
                self.limits.idle_timeout.as_secs()
            );
            self.stop(&s, ClosedReason::Idle);
        }
    }

    /// Stops every process and waits until they are gone (at most the
    /// grace and a second).
    pub async fn stop_all(&mut self) {
        let sessions: Vec<String> = self.locals.keys().cloned().collect();
        for s in &sessions {
            self.stop(s, ClosedReason::Exited);
        }
        let waits: Vec<JoinHandle<()>> = self.locals.drain().map(|(_, l)| l.done).collect();
        let all = async {
            for w in waits {
                let _ = w.await;
            }
        };
        let _ = tokio::time::timeout(self.limits.stop_grace + Duration::from_secs(1), all).await;
    }
}

/// One spawn request for the spawner thread.
type Job = (
    tokio::runtime::Handle,
    Command,
    oneshot::Sender<std::io::Result<Child>>,
);

/// Spawns `cmd` from the process's one spawner thread (which never ends:
/// a parent-death signal fires when the thread that forked ends).
async fn spawn_from_spawner(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("mcp-edge-spawner".into())
            .spawn(move || {
                for (handle, mut cmd, reply) in rx {
                    let _entered = handle.enter();
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = started {
            log::error!("cannot start the process spawner thread: {e}");
        }
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = oneshot::channel();
    let sent = spawner
        .lock()
        .map_err(|_| std::io::Error::other("process spawner poisoned"))?
        .send((tokio::runtime::Handle::current(), cmd, reply));
    if sent.is_err() {
        return Err(std::io::Error::other("the process spawner thread is gone"));
    }
    answer
        .await
        .map_err(|_| std::io::Error::other("the process spawner thread is gone"))?
}

/// The command for `launch`: through the launcher (parent-death signal),
/// in its own process group, with the environment `launch` says.
fn command(launch: &Launch) -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(LAUNCHER_ARG)
        .arg(std::process::id().to_string())
        .arg(&launch.program)
        .args(&launch.args);
    if let Some(env) = &launch.env {
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Starts the process for `session` and its relay tasks.
async fn start(p: &Processes, session: &str) -> std::io::Result<Local> {
    let mut child = spawn_from_spawner(command(&p.launch)).await?;
    let pid = child.id();
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
        return Err(std::io::Error::other("no stdio pipes"));
    };
    let (tx, mut rx) = mpsc::channel::<String>(STDIN_QUEUE);
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if stdin.write_all(line.as_bytes()).await.is_err()
                || stdin.write_all(b"\n").await.is_err()
                || stdin.flush().await.is_err()
            {
                break;
            }
        }
    });
    let reader = tokio::spawn(relay_stdout(
        p.name.clone(),
        session.to_owned(),
        stdout,
        p.to_gw.clone(),
    ));
    tokio::spawn(log_stderr(
        p.name.clone(),
        session.to_owned(),
        stderr,
        p.stderr,
    ));
    let (stop, stopped) = oneshot::channel();
    let done = tokio::spawn(wait(
        child,
        pid,
        stopped,
        p.limits.stop_grace,
        reader,
        session.to_owned(),
        p.to_gw.clone(),
    ));
    Ok(Local {
        stdin: tx,
        stop: Some(stop),
        done,
        last_used: Instant::now(),
    })
}

/// Waits for the process to exit, or stops it when asked; then reports
/// its end (after everything it wrote to stdout).
async fn wait(
    mut child: Child,
    pid: Option<u32>,
    stopped: oneshot::Receiver<ClosedReason>,
    grace: Duration,
    reader: JoinHandle<()>,
    session: String,
    to_gw: mpsc::Sender<Frame>,
) {
    let reason = tokio::select! {
        status = child.wait() => match status {
            Ok(s) if s.success() => ClosedReason::Exited,
            _ => ClosedReason::Crashed,
        },
        asked = stopped => {
            let reason = asked.unwrap_or(ClosedReason::Exited);
            signal_group(pid, nix::sys::signal::Signal::SIGTERM);
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill().await;
            }
            reason
        }
    };
    // what it wrote before it ended reaches the gateway first (bounded: a
    // child of the process may hold stdout open)
    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    let _ = to_gw.send(Frame::Closed { session, reason }).await;
}

/// Sends `sig` to the process group led by `pid`.
fn signal_group(pid: Option<u32>, sig: nix::sys::signal::Signal) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), sig);
}

/// One line of a bounded reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line (without its newline).
    Text(Vec<u8>),
    /// A line longer than the bound: dropped, its length.
    TooLong(usize),
}

/// The next line of `r`, never holding more than `max` bytes of it.
pub async fn next_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let mut over = 0usize;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (buf.is_empty(), over) {
                (true, 0) => None,
                (_, 0) => Some(Line::Text(buf)),
                _ => Some(Line::TooLong(over)),
            });
        }
        let (part, used, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        if over > 0 || buf.len() + part.len() > max {
            over += buf.len() + part.len();
            buf = Vec::new();
        } else {
            buf.extend_from_slice(part);
        }
        r.consume(used);
        if end {
            return Ok(Some(if over > 0 {
                Line::TooLong(over)
            } else {
                Line::Text(buf)
            }));
        }
    }
}

/// A line for the log: at most 200 characters, lossy UTF-8.
fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]);
    s.escape_debug().to_string()
}

/// stdout → `message` frames; what is not JSON is logged and dropped.
async fn relay_stdout(
    name: String,
    session: String,
    stdout: tokio::process::ChildStdout,
    to_gw: mpsc::Sender<Frame>,
) {
    let mut r = BufReader::new(stdout);
    let mut dropped = 0u64;
    loop {
        let line = match next_line(&mut r, MAX_LINE).await {
            Ok(Some(l)) => l,
            Ok(None) | Err(_) => return,
        };
        let text = match line {
            Line::Text(t) => t,
            Line::TooLong(n) => {
                log::warn!(
                    "{name}: session {session} wrote a stdout line of {n} bytes (over {MAX_LINE}); dropped"
                );
                continue;
            }
        };
        let trimmed = text.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        match Frame::message(&session, trimmed) {
            Ok(f) => {
                if to_gw.send(f).await.is_err() {
                    return;
                }
            }
            Err(_) => {
                dropped += 1;
                // the first few, then every hundredth: a chatty process
                // cannot flood the log
                if dropped <= 5 || dropped % 100 == 0 {
                    log::warn!(
                        "{name}: session {session} wrote a stdout line that is not JSON ({dropped} so far); dropped: \"{}\"",
                        excerpt(trimmed)
                    );
                }
            }
        }
    }
}

/// stderr → the log at `level`, under the server's name.
async fn log_stderr(
    name: String,
    session: String,
    stderr: tokio::process::ChildStderr,
    level: log::Level,
) {
    let mut r = BufReader::new(stderr);
    while let Ok(Some(line)) = next_line(&mut r, MAX_STDERR_LINE).await {
        match line {
            Line::Text(t) => log::log!(
                target: "mcp_edge::stdio",
                level,
                "{name} [{session}] stderr: {}",
                String::from_utf8_lossy(t.trim_ascii_end())
            ),
            Line::TooLong(n) => log::log!(
                target: "mcp_edge::stdio",
                level,
                "{name} [{session}] stderr: (a line of {n} bytes, not logged)"
            ),
        }
    }
}

/// The launcher: `mcp-edge __stdio-exec <parent pid> <program> <args…>`.
/// Asks for SIGKILL when its parent dies, checks the parent is still the
/// one that started it, then becomes `program` (the signal survives the
/// exec). Returns only on failure, with the exit code to use.
pub fn exec_guarded(args: &[String]) -> i32 {
    use std::os::unix::process::CommandExt;
    let (Some(parent), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("mcp-edge {LAUNCHER_ARG}: usage: <parent pid> <program> [args…]");
        return 2;
    };
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("mcp-edge {LAUNCHER_ARG}: parent-death signal: {e}");
        return 126;
    }
    // the parent may have died before the signal was armed
    if parent.parse::<i32>().ok() != Some(nix::unistd::getppid().as_raw()) {
        return 1;
    }
    let e = std::process::Command::new(program).args(&args[2..]).exec();
    eprintln!("mcp-edge {LAUNCHER_ARG}: cannot run \"{program}\": {e}");
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        while let Some(l) = next_line(&mut r, max).await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn bounded_lines() {
        assert_eq!(
            lines(b"ab\ncdef\n\nlast", 4).await,
            vec![
                Line::Text(b"ab".to_vec()),
                Line::Text(b"cdef".to_vec()),
                Line::Text(vec![]),
                Line::Text(b"last".to_vec())
            ]
        );
        // a long line is dropped whole, across buffer refills, and the next one is read
        assert_eq!(
            lines(b"0123456789\nok\n01234", 4).await,
            vec![
                Line::TooLong(10),
                Line::Text(b"ok".to_vec()),
                Line::TooLong(5)
            ]
        );
        assert!(lines(b"", 4).await.is_empty());
    }

    #[test]
    fn shell_launch_and_display() {
        let l = Launch::shell("node server.js --x");
        assert_eq!(l.args, vec!["-c", "exec node server.js --x"]);
        assert_eq!(l.display(), "/bin/sh -c exec node server.js --x");
    }
}
