//! Line sinks for the access log and the audit trail: request hooks hand
//! finished lines to a bounded channel and a background thread writes them in
//! batches (every 20 ms, one `write` per batch). The thread starts with the
//! first line, i.e. after Pingora has daemonized (a fork keeps no threads).
//! A full queue either drops and counts the line or makes the caller wait
//! (`on_full: block`); files are rotated at a size limit.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::OnceLock;
use std::time::Duration;

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Standard error.
    Stderr,
    /// Standard output.
    Stdout,
    /// A file, rotated to `<path>.1` when it reaches `max_bytes`.
    File {
        /// The file.
        path: PathBuf,
        /// Rotation size.
        max_bytes: u64,
    },
}

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// Wait for the writer (no line is ever lost).
    Block,
    /// Drop the line and count it.
    Drop,
}

/// Batch interval of the writer thread.
const TICK: Duration = Duration::from_millis(20);

/// Set once the process starts shutting down: writers then write every line
/// as soon as it arrives, so nothing waits in memory when the process exits.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Switches every sink to write-through (called when shutdown begins).
pub fn shutting_down() {
    SHUTTING_DOWN.store(true, Ordering::Relaxed);
}

/// A lazily started line sink.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    capacity: usize,
    on_full: OnFull,
    tx: OnceLock<SyncSender<String>>,
    dropped: AtomicU64,
}

impl Sink {
    /// A sink; nothing starts until the first line.
    pub fn new(target: Target, capacity: usize, on_full: OnFull) -> Sink {
        Sink {
            target,
            capacity,
            on_full,
            tx: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Opens the target now (to report errors at startup); the file is closed again.
    pub fn check(&self) -> std::io::Result<()> {
        if let Target::File { path, .. } = &self.target {
            open_append(path)?;
        }
        Ok(())
    }

    fn sender(&'static self) -> &'static SyncSender<String> {
        self.tx.get_or_init(|| {
            let (tx, rx) = sync_channel::<String>(self.capacity);
            let target = self.target.clone();
            let spawned = std::thread::Builder::new()
                .name("log-sink".into())
                .spawn(move || writer(rx, target, self));
            if let Err(e) = spawned {
                log::error!("log writer thread failed to start: {e}");
            }
            tx
        })
    }

    /// Queues one line (no trailing newline); `false` if it was dropped.
    pub fn write(&'static self, line: String) -> bool {
        let tx = self.sender();
        let queued = match self.on_full {
            OnFull::Drop => tx.try_send(line).is_ok(),
            OnFull::Block => tx.send(line).is_ok(),
        };
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn open_append(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

enum Out {
    Stderr(std::io::Stderr),
    Stdout(std::io::Stdout),
    File { file: File, written: u64 },
}

impl Out {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::Stderr(s) => s.write(b),
            Out::Stdout(s) => s.write(b),
            Out::File { file, written } => {
                let n = file.write(b)?;
                *written += n as u64;
                Ok(n)
            }
        }
    }

    /// Writes `buf[*off..]`, advancing `off` past what reached the target,
    /// so a failed write (a full disk) can resume where it stopped and no
    /// line is ever written twice or cut in two.
    fn write_from(&mut self, buf: &[u8], off: &mut usize) -> std::io::Result<()> {
        while *off < buf.len() {
            match self.write(&buf[*off..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => *off += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn open_target(target: &Target) -> std::io::Result<Out> {
    Ok(match target {
        Target::Stderr => Out::Stderr(std::io::stderr()),
        Target::Stdout => Out::Stdout(std::io::stdout()),
        Target::File { path, .. } => {
            let file = open_append(path)?;
            let written = file.metadata().map(|m| m.len()).unwrap_or(0);
            Out::File { file, written }
        }
    })
}

fn rotate_if_needed(out: &mut Out, target: &Target) {
    let (Out::File { written, .. }, Target::File { path, max_bytes }) = (&*out, target) else {
        return;
    };
    if *written < *max_bytes {
        return;
    }
    let mut old = path.clone().into_os_string();
    old.push(".1");
    if let Err(e) = std::fs::rename(path, &old) {
        log::error!("cannot rotate {}: {e}", path.display());
        return;
    }
    match open_target(target) {
        Ok(o) => *out = o,
        Err(e) => log::error!("cannot reopen {} after rotation: {e}", path.display()),
    }
}

/// The longest wait between two tries of a failing write (`on_full: block`).
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Largest batch collected before a write.
const BATCH_BYTES: usize = 256 * 1024;

/// What a write failure leaves of `batch`, of which `off` bytes reached the
/// target (which already ended inside a line before the batch if `cut`),
/// under `on_full`, and how many lines that drops.
/// `Block` keeps everything not yet written (the writer retries and takes no
/// new lines meanwhile, so the bounded queue makes callers wait). `Drop`
/// keeps only the rest of a line cut by the failure (so the file never holds
/// half a line followed by another) and drops the whole lines after it.
fn after_failure(batch: &mut Vec<u8>, off: usize, cut: bool, on_full: OnFull) -> u64 {
    let ends_cut = match off {
        0 => cut,
        _ => batch.get(off - 1) != Some(&b'\n'),
    };
    let rest_of_cut_line = if ends_cut {
        batch[off..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(batch.len(), |i| off + i + 1)
    } else {
        off
    };
    let keep_to = match on_full {
        OnFull::Block => batch.len(),
        OnFull::Drop => rest_of_cut_line,
    };
    let dropped = batch[keep_to..].iter().filter(|&&b| b == b'\n').count() as u64;
    batch.truncate(keep_to);
    batch.drain(..off);
    dropped
}

fn writer(rx: Receiver<String>, target: Target, sink: &'static Sink) {
    let mut out = match open_target(&target) {
        Ok(o) => o,
        Err(e) => {
            log::error!("log sink {target:?} cannot be opened: {e}; lines are dropped");
            while rx.recv().is_ok() {
                sink.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut reported = 0;
    // since when writes fail (a full disk, an I/O error), and the next wait
    let mut failing: Option<std::time::Instant> = None;
    // the target ends inside a line (a write failed mid-line)
    let mut cut = false;
    let mut retry = TICK;
    loop {
        let mut closed = false;
        // while a blocked batch waits for the target, take no new lines:
        // the bounded queue fills and `write` makes the workers wait
        let hold = failing.is_some() && sink.on_full == OnFull::Block;
        while !hold && batch.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(line) => {
                    batch.extend_from_slice(line.as_bytes());
                    batch.push(b'\n');
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let mut off = 0;
            match out.write_from(&batch, &mut off) {
                Ok(()) => {
                    batch.clear();
                    cut = false;
                    if let Some(since) = failing.take() {
                        log::warn!(
                            "log sink {target:?}: writing again after {:.1} s",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    retry = TICK;
                    rotate_if_needed(&mut out, &target);
                }
                Err(e) => {
                    if failing.is_none() {
                        log::error!(
                            "log sink {target:?}: write failed: {e} (on_full: {:?}: {})",
                            sink.on_full,
                            match sink.on_full {
                                OnFull::Block => "lines wait, requests wait for them",
                                OnFull::Drop => "lines are dropped and counted",
                            }
                        );
                        failing = Some(std::time::Instant::now());
                    }
                    let ends_cut = match off {
                        0 => cut,
                        _ => batch.get(off - 1) != Some(&b'\n'),
                    };
                    let lost = after_failure(&mut batch, off, cut, sink.on_full);
                    cut = ends_cut;
                    sink.dropped.fetch_add(lost, Ordering::Relaxed);
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        let d = sink.dropped();
        if d != reported && failing.is_none() {
            log::warn!("log sink {target:?}: {} line(s) dropped so far", d);
            reported = d;
        }
        if closed && (batch.is_empty() || failing.is_some()) {
            return;
        }
        if failing.is_some() {
            std::thread::sleep(retry);
        } else if SHUTTING_DOWN.load(Ordering::Relaxed) {
            // write-through: wake for each line
            match rx.recv_timeout(TICK) {
                Ok(line) => {
                    batch.extend_from_slice(line.as_bytes());
                    batch.push(b'\n');
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            std::thread::sleep(TICK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak(s: Sink) -> &'static Sink {
        Box::leak(Box::new(s))
    }

    fn wait_for(path: &std::path::Path, n: usize) -> String {
        for _ in 0..200 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= n {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn file_sink_writes_in_order_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = leak(Sink::new(
            Target::File {
                path: path.clone(),
                max_bytes: 100,
            },
            1024,
            OnFull::Block,
        ));
        sink.check().unwrap();
        for i in 0..5 {
            sink.write(format!("line-{i:03}-xxxxxxxxxxxxxxxxxxxx"));
        }
        std::thread::sleep(Duration::from_millis(100));
        for i in 5..8 {
            sink.write(format!("line-{i:03}-xxxxxxxxxxxxxxxxxxxx"));
        }
        let text = wait_for(&path, 3);
        let rotated = std::fs::read_to_string(dir.path().join("audit.jsonl.1")).unwrap();
        let all: Vec<&str> = rotated.lines().chain(text.lines()).collect();
        assert_eq!(all.len(), 8, "{all:?}");
        for (i, l) in all.iter().enumerate() {
            assert!(l.starts_with(&format!("line-{i:03}")), "{all:?}");
        }
        assert_eq!(sink.dropped(), 0);
    }

    #[test]
    fn a_failed_write_keeps_or_drops_whole_lines() {
        let lines = b"aaaa\nbbbb\ncccc\n".to_vec();
        // block: everything not written stays, nothing is lost
        let mut b = lines.clone();
        assert_eq!(after_failure(&mut b, 7, false, OnFull::Block), 0);
        assert_eq!(b, b"bb\ncccc\n");
        // drop: the cut line is finished, the whole lines after it go
        let mut b = lines.clone();
        assert_eq!(after_failure(&mut b, 7, false, OnFull::Drop), 1);
        assert_eq!(b, b"bb\n");
        // drop at a line boundary: nothing kept
        let mut b = lines.clone();
        assert_eq!(after_failure(&mut b, 5, false, OnFull::Drop), 2);
        assert!(b.is_empty());
        let mut b = lines.clone();
        assert_eq!(after_failure(&mut b, 0, false, OnFull::Drop), 3);
        assert!(b.is_empty());
        // a line cut by an earlier failure is still finished first
        let mut b = lines;
        assert_eq!(after_failure(&mut b, 0, true, OnFull::Drop), 2);
        assert_eq!(b, b"aaaa\n");
    }

    #[test]
    fn drop_mode_counts_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let sink = leak(Sink::new(
            Target::File {
                path: path.clone(),
                max_bytes: u64::MAX,
            },
            2,
            OnFull::Drop,
        ));
        for i in 0..1000 {
            sink.write(format!("{i}"));
        }
        assert!(sink.dropped() > 0);
        // what was queued is written within a few ticks
        let mut written = 0;
        for _ in 0..100 {
            written = wait_for(&path, 1).lines().count() as u64;
            if written + sink.dropped() == 1000 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(written + sink.dropped(), 1000);
    }
}
