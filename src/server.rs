//! Process bootstrap: turns a compiled [`Runtime`] into a Pingora `Server` with
//! the proxy service, its listeners, the admin listener, worker threads,
//! graceful-shutdown and upgrade settings, and the SIGHUP reloader. Pingora then owns the process:
//! SIGTERM drains, SIGQUIT hands the listeners to a new binary started with `-u`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig, DEFAULT_L4_WRITE_BUFFER_SIZE};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;

use crate::edge::listener::{EdgeApp, Gate, PreTls};
use crate::proxy::Gateway;
use crate::reload::Reloader;
use crate::runtime::Runtime;
use pingora::services::listening::Service;

/// How `run` was asked to start.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Detach into the background (`-d`).
    pub daemon: bool,
    /// Take the listeners over from a running instance (`-u`).
    pub upgrade: bool,
}

/// Read and write buffers of each public connection. Pingora's default read
/// buffer is 64 KiB per connection, allocated zeroed at accept: most of what
/// an idle connection (an open SSE stream, a slowloris) costs. Header and
/// body reads go through their own buffers, so a small one costs no
/// throughput (BENCHMARKS.md, issue 9).
fn listener_buffers() -> L4BufferSettings {
    L4BufferSettings::new(LISTENER_READ_BUFFER, DEFAULT_L4_WRITE_BUFFER_SIZE)
}

/// See [`listener_buffers`].
const LISTENER_READ_BUFFER: usize = 4096;

/// A file-name-safe tag for the first listener, used for default pid/upgrade paths
/// so that two gateways on one host do not share them.
fn listener_tag(rt: &Runtime) -> String {
    rt.server
        .listen
        .first()
        .map(|a| {
            a.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect()
        })
        .unwrap_or_else(|| "default".into())
}

/// `server.pid_file` and `server.upgrade_sock`, or their per-listener defaults.
pub fn pid_and_socket(rt: &Runtime) -> (String, String) {
    let tag = listener_tag(rt);
    (
        rt.server
            .pid_file
            .clone()
            .unwrap_or_else(|| format!("/tmp/mcp-edge-{tag}.pid")),
        rt.server
            .upgrade_sock
            .clone()
            .unwrap_or_else(|| format!("/tmp/mcp-edge-{tag}.sock")),
    )
}

/// Removes tunnel bridge sockets of processes that are gone (nothing
/// accepts on them); those of a draining process stay.
fn sweep_stale_bridges(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let stale = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("mcp-edge-tunnel-") && n.ends_with(".sock"))
            && std::os::unix::net::UnixStream::connect(&path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Pingora's server configuration derived from ours.
pub fn server_conf(rt: &Runtime, opts: &RunOptions) -> ServerConf {
    let (pid_file, upgrade_sock) = pid_and_socket(rt);
    ServerConf {
        threads: rt.server.threads,
        daemon: opts.daemon,
        pid_file,
        upgrade_sock,
        grace_period_seconds: Some(rt.server.grace_period_secs),
        graceful_shutdown_timeout_seconds: Some(5),
        // retries happen only after connect failures, on another pool member
        // (fail_to_connect decides; at most 2 per request)
        max_retries: 3,
        ..ServerConf::default()
    }
}

/// Builds the Pingora server for a compiled configuration.
pub fn build(rt: Runtime, config_path: &Path, opts: &RunOptions) -> std::io::Result<Server> {
    rt.open_audit()
        .map_err(|e| std::io::Error::other(format!("audit.path: {e}")))?;
    rt.open_pins()
        .map_err(|e| std::io::Error::other(format!("tool_integrity.pins_file: {e}")))?;
    let conf = server_conf(&rt, opts);
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: opts.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let listen = rt.server.listen.clone();
    let proxy_protocol = rt.proxy_protocol.clone();
    let tls = rt.tls.clone();
    let admin = rt.admin.as_ref().map(|a| a.listen);
    rt.auth.set_jwks_fetcher(crate::jwks::fetcher());
    let shared = Arc::new(ArcSwap::from_pointee(rt));
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let mut proxy = pingora_proxy::http_proxy(&server.configuration, Gateway::new(shared.clone()));
    let mut options = HttpServerOptions::default();
    // HTTP/2 with prior knowledge on plaintext listeners (h2c); on TLS, ALPN decides
    options.h2c = true;
    proxy.server_options = Some(options);
    let gate = Gate::new(shared.clone());
    let app = EdgeApp {
        inner: Arc::new(proxy),
        gate: gate.clone(),
        // on TLS listeners the PROXY header is read before the handshake
        proxy_protocol: if tls.is_some() {
            None
        } else {
            proxy_protocol.clone()
        },
    };
    let mut svc = Service::new("mcp-edge".to_string(), app);
    match tls {
        Some(material) => {
            // before adding endpoints: the hook is copied into each
            svc.endpoints().set_pre_tls_callback(Arc::new(PreTls {
                gate,
                proxy_protocol,
            }));
            for addr in &listen {
                let settings = crate::edge::tls::settings(shared.clone(), material.clone())
                    .map_err(|e| std::io::Error::other(format!("TLS settings: {e}")))?;
                svc.add_listener(
                    ListenerConfig::tcp(addr.as_str())
                        .tls(settings)
                        .l4_buffer(listener_buffers()),
                );
            }
        }
        None => {
            for addr in &listen {
                svc.add_listener(ListenerConfig::tcp(addr.as_str()).l4_buffer(listener_buffers()));
            }
        }
    }
    server.add_service(svc);
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(admin) = &admin {
        let mut svc = Service::new(
            "mcp-edge admin".to_string(),
            crate::admin::AdminApp {
                runtime: shared.clone(),
                draining: draining.clone(),
            },
        );
        svc.add_tcp(&admin.to_string());
        server.add_service(svc);
    }
    {
        // a private socket per process: after an upgrade each process's
        // bridge serves the tunnels connected to that process and the stdio
        // processes it runs
        let (_, sock) = pid_and_socket(&shared.load());
        let dir = Path::new(&sock)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        sweep_stale_bridges(&dir);
        let bridge = dir.join(format!(
            "mcp-edge-tunnel-{}.sock",
            crate::tunnel::protocol::new_session_id()
        ));
        let bridge = bridge.to_string_lossy().into_owned();
        crate::tunnel::set_bridge_socket(&bridge);
        let mut svc = Service::new("mcp-edge bridge".to_string(), crate::tunnel::bridge::Bridge);
        svc.add_uds(
            &bridge,
            Some(std::os::unix::fs::PermissionsExt::from_mode(0o600)),
        );
        server.add_service(svc);
    }
    crate::tunnel::local::set_sse_driver(crate::proxy::legacy::driver);
    crate::tunnel::local::configure(shared.load().local_upstreams());
    server.add_service(background_service(
        "stdio upstreams",
        StdioShutdown {
            grace: Duration::from_secs(shared.load().server.grace_period_secs),
        },
    ));
    server.add_service(background_service(
        "upstream health checks",
        crate::checker::Checker {
            runtime: shared.clone(),
        },
    ));
    server.add_service(background_service(
        "config reload",
        Reloader {
            path: PathBuf::from(config_path),
            runtime: shared,
            draining,
        },
    ));
    Ok(server)
}

/// Stops the stdio upstreams' processes at shutdown (`tunnel::local`): once
/// no request waits on them, or when the grace period is nearly over.
struct StdioShutdown {
    grace: Duration,
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for StdioShutdown {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
        let wait = self
            .grace
            .saturating_sub(crate::tunnel::local::STOP_GRACE + Duration::from_secs(1));
        crate::tunnel::local::stop_all(wait).await;
    }
}
