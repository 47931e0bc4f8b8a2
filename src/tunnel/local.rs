//! The upstreams the gateway serves from inside itself: `type: stdio` and
//! `type: sse`. Each is a [`Link`] (the same relay a reverse tunnel uses)
//! whose frames go to a [`Driver`] in this process instead of over a
//! WebSocket: [`Processes`] for stdio, the legacy HTTP+SSE client
//! (`proxy::legacy`) for sse. The bridge serves them at `/stdio/<name>` and
//! `/sse/<name>` exactly as it serves tunnels, so every hook applies.
//!
//! Process-wide on purpose: the processes outlive configuration snapshots
//! (a reload changes what new sessions run, running sessions keep theirs;
//! an upstream removed by a reload keeps its sessions until they end or go
//! idle). A server's task starts with its first request, on the bridge's
//! runtime, and ends at shutdown: once no request waits on it (at most the
//! grace period), its processes get SIGTERM, then SIGKILL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch, Notify};

use super::processes::{Launch, Limits, Processes};
use super::protocol::Frame;
use super::relay::Link;
use crate::upstream::{Spawn, Upstream};

/// What serves one in-process upstream's sessions from the link's frames
/// (`open`, `message`, `close`), answering with `message` and `closed`
/// frames on the sender it was built with.
#[async_trait]
pub trait Driver: Send {
    /// One frame from the gateway side.
    async fn handle(&mut self, frame: Frame);
    /// A `closed` frame for `session` is on its way: forget it.
    fn forget(&mut self, session: &str);
    /// Ends sessions idle past their timeout.
    fn reap_idle(&mut self);
    /// New settings for the next sessions.
    fn reconfigure(&mut self, spec: &Spec);
    /// Ends every session and waits until they are gone.
    async fn stop_all(&mut self);
    /// Sessions open.
    fn len(&self) -> usize;
    /// Whether no session is open.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub use crate::upstream::LocalSpec as Spec;

/// Builds the driver of an sse upstream (installed by the app layer: the
/// legacy client lives with the proxy's HTTP client).
pub type SseDriver = fn(&str, Arc<Upstream>, mpsc::Sender<Frame>) -> Box<dyn Driver>;

static SSE_DRIVER: OnceLock<SseDriver> = OnceLock::new();

/// Installs the sse driver (once, at server build).
pub fn set_sse_driver(d: SseDriver) {
    let _ = SSE_DRIVER.set(d);
}

#[async_trait]
impl Driver for Processes {
    async fn handle(&mut self, frame: Frame) {
        Processes::handle(self, frame).await;
    }
    fn forget(&mut self, session: &str) {
        Processes::forget(self, session);
    }
    fn reap_idle(&mut self) {
        Processes::reap_idle(self);
    }
    fn reconfigure(&mut self, spec: &Spec) {
        if let Spec::Stdio(s) = spec {
            let (launch, limits) = launch_of(s);
            Processes::reconfigure(self, launch, limits);
        }
    }
    async fn stop_all(&mut self) {
        Processes::stop_all(self).await;
    }
    fn len(&self) -> usize {
        Processes::len(self)
    }
}

/// How long a stopped process has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// One `type: stdio` upstream.
struct Server {
    link: Arc<Link>,
    spec: watch::Sender<Spec>,
    /// The link's outgoing frames, until the task takes them.
    frames: Mutex<Option<mpsc::Receiver<Frame>>>,
    stop: Notify,
    stopped: Notify,
    running: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Servers {
    by_name: Mutex<HashMap<String, Arc<Server>>>,
}

/// The stdio upstreams of this process.
static SERVERS: OnceLock<Servers> = OnceLock::new();

fn servers() -> std::sync::MutexGuard<'static, HashMap<String, Arc<Server>>> {
    SERVERS
        .get_or_init(Servers::default)
        .by_name
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn launch_of(s: &Spawn) -> (Launch, Limits) {
    let (program, args) = match s.command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), Vec::new()),
    };
    (
        Launch {
            program,
            args,
            env: Some(s.env.clone()),
        },
        Limits {
            max_sessions: s.max_processes,
            idle_timeout: s.idle_timeout,
            stop_grace: STOP_GRACE,
        },
    )
}

/// Takes the in-process upstreams of a configuration (at start and on every
/// reload): new names are added, known ones get the new settings for their
/// next sessions.
pub fn configure(specs: impl IntoIterator<Item = (String, Spec)>) {
    let mut all = servers();
    for (name, spec) in specs {
        let spec = &spec;
        let name = name.as_str();
        match all.get(name) {
            Some(s) => {
                s.spec.send_if_modified(|old| {
                    let changed = old != spec;
                    *old = spec.clone();
                    changed
                });
            }
            None => {
                let (link, frames) = Link::new(name, "local", 1024);
                let (tx, _) = watch::channel(spec.clone());
                all.insert(
                    name.to_owned(),
                    Arc::new(Server {
                        link: Arc::new(link),
                        spec: tx,
                        frames: Mutex::new(Some(frames)),
                        stop: Notify::new(),
                        stopped: Notify::new(),
                        running: std::sync::atomic::AtomicBool::new(false),
                    }),
                );
            }
        }
    }
}

/// The link of the in-process upstream `name`, its task started on the
/// current runtime if it was not running.
pub fn link(name: &str) -> Option<Arc<Link>> {
    let server = servers().get(name).cloned()?;
    let frames = server
        .frames
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(frames) = frames {
        server
            .running
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(run(server.clone(), frames));
    }
    Some(server.link.clone())
}

/// Every in-process upstream: name, `stdio` or `sse`, open sessions, and
/// requests waiting on them (admin API).
pub fn list() -> Vec<(String, &'static str, usize, usize)> {
    let mut v: Vec<_> = servers()
        .iter()
        .map(|(n, s)| {
            let kind = match &*s.spec.borrow() {
                Spec::Stdio(_) => "stdio",
                Spec::Sse(_) => "sse",
            };
            (n.clone(), kind, s.link.session_count(), s.link.waiting())
        })
        .collect();
    v.sort();
    v
}

/// Shutdown: waits (at most `grace`) until no request waits on a stdio
/// process, then stops every process and waits until they are gone.
pub async fn stop_all(grace: Duration) {
    let all: Vec<Arc<Server>> = servers().values().cloned().collect();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && all.iter().any(|s| s.link.waiting() > 0) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in &all {
        if s.running.load(std::sync::atomic::Ordering::SeqCst) {
            let stopped = s.stopped.notified();
            s.stop.notify_one();
            let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(2), stopped).await;
        }
    }
}

/// The driver for `spec`.
fn driver(name: &str, spec: &Spec, to_gw: mpsc::Sender<Frame>) -> Option<Box<dyn Driver>> {
    Some(match spec {
        Spec::Stdio(s) => {
            let (launch, limits) = launch_of(s);
            Box::new(Processes::new(
                &format!("stdio upstream {name}"),
                launch,
                limits,
                log::Level::Info,
                to_gw,
            ))
        }
        Spec::Sse(up) => (SSE_DRIVER.get()?)(name, up.clone(), to_gw),
    })
}

/// One in-process upstream's task: the link's frames to its driver and back.
async fn run(server: Arc<Server>, mut frames: mpsc::Receiver<Frame>) {
    let name = server.link.name.clone();
    let mut spec = server.spec.subscribe();
    let (to_gw, mut from_procs) = mpsc::channel::<Frame>(1024);
    let first = spec.borrow_and_update().clone();
    let Some(mut procs) = driver(&name, &first, to_gw) else {
        log::error!("upstream {name}: no driver for it in this process");
        server.link.fail_all();
        return;
    };
    let mut idle = tokio::time::interval(Duration::from_secs(1));
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(frame) = frames.recv() => procs.handle(frame).await,
            Some(frame) = from_procs.recv() => {
                if let Frame::Closed { session, .. } = &frame {
                    procs.forget(session);
                }
                if let Some(reply) = server.link.on_frame(frame).await {
                    procs.handle(reply).await;
                }
            }
            _ = idle.tick() => procs.reap_idle(),
            Ok(()) = spec.changed() => {
                let now = spec.borrow_and_update().clone();
                procs.reconfigure(&now);
            }
            _ = server.stop.notified() => break,
        }
    }
    log::info!("upstream {name}: stopping {} session(s)", procs.len());
    // nobody reads their exit reports any more
    drop(from_procs);
    procs.stop_all().await;
    server.link.fail_all();
    server.stopped.notify_one();
}
