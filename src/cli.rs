//! Command line: `run`, `upgrade`, `validate`, `routes`, `health`, `hash-key`.
//! The only place that prints to the terminal and maps failures to exit codes.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config;
use crate::logsetup;
use crate::server::{self, RunOptions};

/// mcp-edge: an edge gateway for MCP servers.
#[derive(Debug, Parser)]
#[command(name = "mcp-edge", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Run in the background.
        #[arg(short = 'd', long)]
        daemon: bool,
        /// Take the listeners over from the running instance (zero-downtime upgrade).
        #[arg(short = 'u', long)]
        upgrade: bool,
    },
    /// Zero-downtime upgrade of the running gateway to this binary: validate
    /// the config, start `run -u -d`, hand the listeners over (SIGQUIT to the
    /// old process), wait for the new pid. A failure leaves the old one serving.
    Upgrade {
        /// Configuration file (the same the running gateway uses).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// How long the new process may take to be ready for the hand-over.
        #[arg(long, default_value_t = 15000)]
        wait_ms: u64,
    },
    /// Check a configuration file; prints every problem with its YAML path.
    Validate {
        /// Configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Print the routing table and the upstream each rule reaches.
    Routes {
        /// Configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Ask a running gateway whether it is ready (exit 0 = healthy).
    Health {
        /// Health URL (default: /health on the first listener of --config, or 127.0.0.1:7332).
        #[arg(long)]
        url: Option<String>,
        /// Configuration file to find the listener in.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Serve a local stdio MCP server through a gateway's reverse tunnel
    /// (outbound connection only; docs/tunnel.md).
    Tunnel {
        /// The stdio MCP server command line (run with `sh -c`, one process per MCP session).
        #[arg(long = "local-stdio")]
        local_stdio: Option<String>,
        /// Gateway tunnel URL: ws(s)://host:port[/path] or http(s)://host:port.
        #[arg(long, env = "MCP_EDGE_TUNNEL_GATEWAY")]
        gateway: Option<String>,
        /// Tunnel token (one of the gateway's tunnel.tokens).
        #[arg(long, env = "MCP_EDGE_TUNNEL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Upstream name to register (declared `type: tunnel` on the gateway).
        #[arg(long)]
        name: Option<String>,
        /// YAML or JSON file: the same options plus `servers:` (several local
        /// servers, each to one or more gateways); flags are its defaults.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// First reconnect delay in ms (doubles with jitter up to --max-delay).
        #[arg(
            long = "reconnect-delay",
            env = "MCP_EDGE_TUNNEL_RECONNECT_DELAY",
            default_value_t = 1000
        )]
        reconnect_delay: u64,
        /// Longest reconnect delay in ms.
        #[arg(long = "max-delay", default_value_t = 60000)]
        max_delay: u64,
        /// Failed attempts in a row before giving up (0 = retry forever).
        #[arg(
            long = "max-retries",
            env = "MCP_EDGE_TUNNEL_MAX_RETRIES",
            default_value_t = 0
        )]
        max_retries: u32,
        /// WebSocket ping interval in ms; two silent intervals = dead link.
        #[arg(long, default_value_t = 20000)]
        keepalive: u64,
        /// Local processes at most (one per MCP session).
        #[arg(long = "max-sessions", default_value_t = 16)]
        max_sessions: usize,
        /// End a session idle this long (ms).
        #[arg(long = "idle-timeout", default_value_t = 1_800_000)]
        idle_timeout: u64,
        /// CA bundle (PEM) to verify a wss:// gateway signed by a private CA.
        #[arg(long = "ca-file")]
        ca_file: Option<String>,
        /// error, warn, info, debug, trace.
        #[arg(
            long = "log-level",
            env = "MCP_EDGE_TUNNEL_LOG_LEVEL",
            default_value = "info"
        )]
        log_level: String,
        /// Same as --log-level debug (local processes' stderr included).
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// Print the `sha256:<hex>` form of an API key for `auth.api_keys[].key_hash`.
    HashKey {
        /// The key.
        key: String,
    },
    /// Tool pins (`tool_integrity.pins_file`): list them with the changes
    /// waiting for approval, or approve changes (then reload the gateways).
    Pins {
        #[command(subcommand)]
        action: PinsAction,
    },
}

#[derive(Debug, Subcommand)]
enum PinsAction {
    /// Every pin, and every changed definition waiting for approval.
    List {
        /// Configuration file (its `tool_integrity.pins_file`).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Pin the changed definitions seen (all, or of one upstream / tool).
    Approve {
        /// Configuration file (its `tool_integrity.pins_file`).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Only this upstream's changes.
        #[arg(long)]
        upstream: Option<String>,
        /// Only this tool's changes (the upstream's own name).
        #[arg(long)]
        tool: Option<String>,
    },
}

/// Parses arguments and runs the command; returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            daemon,
            upgrade,
        } => serve(config, daemon, upgrade),
        Command::Upgrade { config, wait_ms } => upgrade(&config, Duration::from_millis(wait_ms)),
        Command::Validate { config } => match config::load_file(&config) {
            Ok(rt) => {
                println!("{}: ok", config.display());
                println!("{}", listener_summary(&rt));
                0
            }
            Err(e) => {
                eprintln!("{}: {e}", config.display());
                1
            }
        },
        Command::Routes { config } => match config::load_file(&config) {
            Ok(rt) => {
                print!("{}", crate::config::routes::table(&rt));
                0
            }
            Err(e) => {
                eprintln!("{}: {e}", config.display());
                1
            }
        },
        Command::Health {
            url,
            config,
            timeout_ms,
        } => health(url, config, Duration::from_millis(timeout_ms)),
        cmd @ Command::Tunnel { .. } => tunnel(cmd),
        Command::HashKey { key } => {
            println!("{}", crate::auth::apikey::hash_form(key.as_bytes()));
            0
        }
        Command::Pins { action } => pins(action),
    }
}

/// `mcp-edge pins list|approve`: reads and edits the pins file the
/// configuration names; the running gateways read it at their next reload.
fn pins(action: PinsAction) -> i32 {
    use crate::tools::integrity::PinsFile;
    let config = match &action {
        PinsAction::List { config } | PinsAction::Approve { config, .. } => config,
    };
    let rt = match config::load_file(config) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            return 2;
        }
    };
    let Some(path) = rt.tool_integrity.pins_file.clone() else {
        eprintln!(
            "{}: tool_integrity.pins_file is not set (pins are kept in memory only)",
            config.display()
        );
        return 2;
    };
    let mut file = match PinsFile::read(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    match action {
        PinsAction::List { .. } => {
            println!("{:<20} {:<32} {:<10} digest", "upstream", "tool", "state");
            for (up, tools) in &file.pins {
                for (tool, pin) in tools {
                    let change = file.changes.get(up).and_then(|c| c.get(tool));
                    let state = if change.is_some() {
                        "changed"
                    } else {
                        "pinned"
                    };
                    println!("{up:<20} {tool:<32} {state:<10} {}", pin.digest);
                    if let Some(c) = change {
                        println!("{:<20} {:<32} {:<10} {}", "", "", "listed", c.seen);
                    }
                }
            }
            let waiting: usize = file.changes.values().map(|c| c.len()).sum();
            println!(
                "{} pinned, {waiting} changed (approve: mcp-edge pins approve -c FILE [--upstream U] [--tool T])",
                file.pins.values().map(|p| p.len()).sum::<usize>()
            );
            0
        }
        PinsAction::Approve { upstream, tool, .. } => {
            let done = file.approve(upstream.as_deref(), tool.as_deref());
            if done.is_empty() {
                eprintln!("no changed definition matches");
                return 1;
            }
            if let Err(e) = file.write(&path) {
                eprintln!("{e}");
                return 2;
            }
            for (u, t) in &done {
                println!("approved {u}/{t}");
            }
            println!(
                "{} approved in {}; reload the gateways (SIGHUP) to serve them",
                done.len(),
                path.display()
            );
            0
        }
    }
}

/// `mcp-edge run`: compile, check, build the Pingora server and run it.
fn serve(config: PathBuf, daemon: bool, upgrade: bool) -> i32 {
    match config::load_file(&config) {
        Ok(rt) => {
            logsetup::init(&rt.log_level, rt.log_format);
            if let Err(e) = check_redis(&rt) {
                eprintln!("{}: rate_limit.redis: {e}", config.display());
                return 2;
            }
            log::info!(
                "mcp-edge {} starting on {:?} with {} worker(s), {} upstream(s)",
                env!("CARGO_PKG_VERSION"),
                rt.server.listen,
                rt.server.threads,
                rt.upstreams.len()
            );
            raise_fd_limit();
            if rt.sessions.is_none() {
                log::warn!(
                    "sessions.keys not set: session ids are sealed with a per-process key, \
                 so MCP sessions end with this process (restart, upgrade) and do not \
                 span gateway replicas"
                );
            }
            let (_, upgrade_sock) = server::pid_and_socket(&rt);
            match server::build(rt, &config, &RunOptions { daemon, upgrade }) {
                Ok(srv) => {
                    srv.run(pingora::server::RunArgs {
                        shutdown_signal: Box::new(crate::upgrade::GuardedSignals {
                            upgrade_sock,
                            wait: Duration::from_secs(10),
                        }),
                    });
                    0
                }
                Err(e) => {
                    eprintln!("{}: {e}", config.display());
                    2
                }
            }
        }
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            2
        }
    }
}

/// `mcp-edge tunnel`: one or more tunnel clients until they end.
fn tunnel(cmd: Command) -> i32 {
    let Command::Tunnel {
        local_stdio,
        gateway,
        token,
        name,
        config,
        reconnect_delay,
        max_delay,
        max_retries,
        keepalive,
        max_sessions,
        idle_timeout,
        ca_file,
        log_level,
        verbose,
    } = cmd
    else {
        return 2;
    };
    let base = crate::tunnel::client::Options {
        command: local_stdio.clone().unwrap_or_default(),
        gateway: gateway.clone().unwrap_or_default(),
        token: token.clone().unwrap_or_default(),
        name: name.clone().unwrap_or_default(),
        reconnect_delay: Duration::from_millis(reconnect_delay.max(10)),
        max_delay: Duration::from_millis(max_delay.max(reconnect_delay)),
        max_retries,
        keepalive: Duration::from_millis(keepalive.max(500)),
        max_sessions: max_sessions.max(1),
        idle_timeout: Duration::from_millis(idle_timeout.max(1000)),
        ca_file,
    };
    let (clients, file_level) = match &config {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return 2;
                }
            };
            let defaults = crate::tunnel::clientconf::Defaults {
                gateway,
                token,
                base,
            };
            let env = |k: &str| std::env::var(k).ok();
            match crate::tunnel::clientconf::parse(&text, &defaults, &env) {
                Ok(v) => v,
                Err(errs) => {
                    for e in errs {
                        eprintln!("{}: {e}", path.display());
                    }
                    return 2;
                }
            }
        }
        None => {
            let missing: Vec<&str> = [
                ("--local-stdio", local_stdio.is_none()),
                ("--gateway (or MCP_EDGE_TUNNEL_GATEWAY)", gateway.is_none()),
                ("--token (or MCP_EDGE_TUNNEL_TOKEN)", token.is_none()),
                ("--name", name.is_none()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(f, _)| *f)
            .collect();
            if !missing.is_empty() {
                eprintln!(
                    "tunnel: missing {} (or give --config FILE)",
                    missing.join(", ")
                );
                return 2;
            }
            (vec![base], None)
        }
    };
    let level = if verbose {
        "debug".to_string()
    } else {
        file_level.unwrap_or(log_level)
    };
    crate::logsetup::init(&level, crate::runtime::LogFormat::Text);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tunnel: cannot start a runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for opts in clients {
            set.spawn(async move {
                let label = format!("{} via {}", opts.name, opts.gateway);
                (label, crate::tunnel::client::run(opts).await)
            });
        }
        let mut code = 0;
        while let Some(done) = set.join_next().await {
            match done {
                Ok((_, Ok(()))) => {}
                Ok((label, Err(e))) => {
                    eprintln!("tunnel {label}: {e}");
                    code = 1;
                }
                Err(e) => {
                    eprintln!("tunnel: {e}");
                    code = 1;
                }
            }
        }
        code
    })
}

/// `mcp-edge upgrade`: the new configuration must compile before anything
/// is started; then the hand-over of `crate::upgrade::upgrade`.
fn upgrade(config: &std::path::Path, wait: Duration) -> i32 {
    let rt = match config::load_file(config) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            eprintln!("upgrade refused: the running gateway keeps serving");
            return 1;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot find this binary: {e}");
            return 1;
        }
    };
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let (pid_file, sock) = server::pid_and_socket(&rt);
    match crate::upgrade::upgrade(&exe, &config, &pid_file, &sock, wait) {
        Ok((old, new)) => {
            println!(
                "upgraded: pid {old} -> {new} ({}); {old} drains for up to {} s",
                exe.display(),
                rt.server.grace_period_secs + 5
            );
            0
        }
        Err(e) => {
            eprintln!("upgrade failed: {e}");
            1
        }
    }
}

/// Redis unreachable at startup = refuse to start (a gateway that silently
/// limited per process would let N × replicas through). The check uses a
/// throwaway runtime; the serving connection is made later on the workers.
fn check_redis(rt: &crate::runtime::Runtime) -> Result<(), String> {
    let Some(store) = rt.rate_limits.as_ref().and_then(|l| l.redis.clone()) else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(store.ping(Duration::from_secs(3)))
        .map_err(|e| format!("Redis is unreachable at startup: {e}"))
}

fn health(url: Option<String>, config: Option<PathBuf>, timeout: Duration) -> i32 {
    let target = match (url, config) {
        (Some(u), _) => u,
        (None, Some(c)) => match config::load_file(&c) {
            Ok(rt) => {
                let listen = rt.server.listen.first().cloned().unwrap_or_default();
                let listen = listen
                    .replace("0.0.0.0", "127.0.0.1")
                    .replace("[::]", "[::1]");
                format!("http://{listen}/health")
            }
            Err(e) => {
                eprintln!("{}: {e}", c.display());
                return 2;
            }
        },
        (None, None) => "http://127.0.0.1:7332/health".into(),
    };
    match http_get(&target, timeout) {
        Ok((status, body)) => {
            println!("{status} {}", body.trim());
            if status == 200 {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("{target}: {e}");
            1
        }
    }
}

/// Minimal blocking HTTP/1.1 GET for `health` (plain http only).
fn http_get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/health"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("cannot resolve")?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("not an HTTP response")?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// Raises the soft open-file limit to the hard one: each client connection
/// and each upstream connection is a descriptor, and the common soft default
/// (1024) is far below what `server.limits.max_connections` allows.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => log::info!("open-file limit raised from {soft} to {hard}"),
            Err(e) => log::warn!("cannot raise the open-file limit ({soft}): {e}"),
        },
        Ok((soft, _)) => log::debug!("open-file limit {soft}"),
        Err(e) => log::warn!("cannot read the open-file limit: {e}"),
    }
}

/// What the listener will be, and which of it a reload cannot change.
fn listener_summary(rt: &crate::runtime::Runtime) -> String {
    use crate::tls_material::ClientAuth;
    let scheme = match &rt.tls {
        None => "http (plaintext, h2c)".to_string(),
        Some(t) => format!(
            "https (TLS 1.2+, ALPN h2/http1.1, certificate serial {}{})",
            t.serial,
            match t.files.client_auth {
                ClientAuth::None => "",
                ClientAuth::Required => ", client certificates required",
                ClientAuth::Optional => ", client certificates optional",
            }
        ),
    };
    let admin = match &rt.admin {
        None => "admin: off (no admin section)".to_string(),
        Some(a) => format!(
            "admin: http on {} (/healthz, /health{})",
            a.listen,
            if a.token.is_some() {
                ", /metrics with admin.token"
            } else {
                "; no admin.token: /metrics answers 403"
            }
        ),
    };
    format!(
        "listener: {scheme} on {}{}\n{admin}\n\
         restart or upgrade (mcp-edge upgrade) needed to change: TLS on/off, client certificates on/off, \
         server.listen, server.threads, server.pid_file, server.upgrade_sock, admin.listen, proxy_protocol; \
         everything else (certificates and admin.token included) reloads on SIGHUP",
        rt.server.listen.join(", "),
        if rt.proxy_protocol.is_some() {
            ", PROXY protocol from trusted_cidrs"
        } else {
            ""
        }
    )
}
