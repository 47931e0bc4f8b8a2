//! The gateway's own `type: stdio` upstreams: each is a [`Link`] (the same
//! relay a reverse tunnel uses) whose frames go to a [`Processes`] in this
//! process instead of over a WebSocket. The bridge serves them at
//! `/stdio/<name>` exactly as it serves tunnels, so every hook applies.
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

use tokio::sync::{mpsc, watch, Notify};

use super::processes::{Launch, Limits, Processes};
use super::protocol::Frame;
use super::relay::Link;
use crate::upstream::Spawn;

/// How long a stopped process has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// One `type: stdio` upstream.
struct Server {
    link: Arc<Link>,
    spec: watch::Sender<Spawn>,
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

/// Takes the stdio upstreams of a configuration (at start and on every
/// reload): new names are added, known ones get the new settings for their
/// next sessions.
pub fn configure<'a>(specs: impl IntoIterator<Item = (&'a str, &'a Spawn)>) {
    let mut all = servers();
    for (name, spec) in specs {
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

/// The link of the stdio upstream `name`, its task started on the current
/// runtime if it was not running.
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

/// Every stdio upstream's name and open sessions (admin API).
pub fn list() -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = servers()
        .iter()
        .map(|(n, s)| (n.clone(), s.link.session_count()))
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

/// One stdio upstream's task: the link's frames to the processes and back.
async fn run(server: Arc<Server>, mut frames: mpsc::Receiver<Frame>) {
    let name = server.link.name.clone();
    let mut spec = server.spec.subscribe();
    let (launch, limits) = launch_of(&spec.borrow_and_update());
    let (to_gw, mut from_procs) = mpsc::channel::<Frame>(1024);
    let mut procs = Processes::new(
        &format!("stdio upstream {name}"),
        launch,
        limits,
        log::Level::Info,
        to_gw,
    );
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
                let (launch, limits) = launch_of(&spec.borrow_and_update());
                procs.reconfigure(launch, limits);
            }
            _ = server.stop.notified() => break,
        }
    }
    log::info!(
        "stdio upstream {name}: stopping {} process(es)",
        procs.len()
    );
    // nobody reads their exit reports any more
    drop(from_procs);
    procs.stop_all().await;
    server.link.fail_all();
    server.stopped.notify_one();
}
