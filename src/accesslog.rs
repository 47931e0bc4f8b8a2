//! The access-log sink: request hooks hand finished lines to a bounded channel
//! and a background thread writes them in batches every 20 ms (one `write` per
//! batch, not per request). Nothing on the request path blocks on I/O: when the channel is
//! full the line is dropped and counted, and the count is reported.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

/// Lines that may wait in the channel before new ones are dropped.
const CAPACITY: usize = 64 * 1024;

struct Sink {
    tx: SyncSender<String>,
}

static SINK: OnceLock<Sink> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The writer thread (stderr) starts with the first line, so that it is
/// created after Pingora daemonizes (a fork keeps no threads).
fn sink() -> &'static Sink {
    SINK.get_or_init(|| {
        let (tx, rx) = sync_channel::<String>(CAPACITY);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(rx, std::io::stderr()));
        if let Err(e) = spawned {
            log::error!("access log writer thread failed to start: {e}");
        }
        Sink { tx }
    })
}

/// Queues one line (without newline); never blocks.
pub fn write(line: String) {
    match sink().tx.try_send(line) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Lines dropped because the writer could not keep up.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// How often the writer wakes to write what has queued. The writer never
/// blocks in `recv`, so request threads never pay for waking it.
const TICK: Duration = Duration::from_millis(20);

fn writer<W: Write>(rx: Receiver<String>, out: W) {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    let mut reported = 0;
    loop {
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.write_all(b"\n");
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let _ = out.flush();
        let d = dropped();
        if d != reported {
            log::warn!(
                "access log: {} line(s) dropped (writer behind)",
                d - reported
            );
            reported = d;
        }
        if closed {
            return;
        }
        std::thread::sleep(TICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writer_batches_lines_in_order() {
        let (tx, rx) = sync_channel(16);
        let buf = Shared::default();
        let out = buf.clone();
        let t = std::thread::spawn(move || writer(rx, out));
        for i in 0..10 {
            tx.send(format!("line {i}")).unwrap_or_default();
        }
        drop(tx);
        t.join().unwrap_or_default();
        let text = String::from_utf8(buf.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let want: String = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, want);
    }
}
