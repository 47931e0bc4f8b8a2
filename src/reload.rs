//! SIGHUP handling and background upkeep. Pingora installs no SIGHUP handler,
//! so the signal would kill the process; this background service catches it
//! and reloads the configuration file: a valid file is compiled and swapped
//! in whole, an invalid one is logged with every error and the last good
//! snapshot stays. It also keeps the live snapshot's JWKS fresh.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config;
use crate::runtime::SharedRuntime;

/// Reloads the configuration on SIGHUP.
pub struct Reloader {
    /// The file to re-read.
    pub path: PathBuf,
    /// The live snapshot to swap.
    pub runtime: SharedRuntime,
    /// Set when the process starts shutting down (the admin `/health` then
    /// says draining).
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Reloader {
    /// Re-reads the file and swaps the snapshot if it is valid.
    pub fn reload(&self) -> Result<(), config::ConfigError> {
        let new = config::load_file(&self.path)?;
        new.auth.set_jwks_fetcher(crate::jwks::fetcher());
        if let Err(e) = new.open_audit() {
            return Err(config::ConfigError(vec![config::Problem::new(
                "audit.path",
                e,
            )]));
        }
        if let Err(e) = new.open_pins() {
            return Err(config::ConfigError(vec![config::Problem::new(
                "tool_integrity.pins_file",
                e,
            )]));
        }
        let old = self.runtime.load();
        listener_compatible(&old, &new)?;
        if new.server.listen != old.server.listen || new.server.threads != old.server.threads {
            log::warn!(
                "reload: server.listen/threads changed; they take effect on restart or upgrade (-u)"
            );
        }
        if new.admin.as_ref().map(|a| a.listen) != old.admin.as_ref().map(|a| a.listen) {
            log::warn!("reload: admin.listen changed; it takes effect on restart or upgrade (-u)");
        }
        let proxy_protocol = |rt: &crate::runtime::Runtime| {
            rt.proxy_protocol
                .as_ref()
                .map(|p| (p.trusted.clone(), p.header_timeout))
        };
        if proxy_protocol(&old) != proxy_protocol(&new) {
            log::warn!(
                "reload: proxy_protocol changed; it takes effect on restart or upgrade (-u)"
            );
        }
        if let (Some(a), Some(b)) = (&old.tls, &new.tls) {
            if a.serial != b.serial {
                log::info!(
                    "reload: TLS certificate serial {} replaces {}",
                    b.serial,
                    a.serial
                );
            }
        }
        crate::tunnel::local::configure(new.local_upstreams());
        self.runtime.store(Arc::new(new));
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot install the SIGHUP handler: {e}");
                return;
            }
        };
        // JWKS are fetched in the background too (at start and when due), so
        // requests rarely wait for one
        let mut jwks_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = jwks_tick.tick() => {
                    let jwt = self.runtime.load().auth.jwt.clone();
                    if let Some(jwt) = jwt {
                        jwt.maybe_refresh(None).await;
                    }
                }
                _ = hup.recv() => {
                    let result = self.reload();
                    crate::telemetry::metrics::record_reload(result.is_ok());
                    match result {
                        Ok(()) => log::info!("reload: configuration {} applied", self.path.display()),
                        Err(e) => log::error!("reload: kept the previous configuration; {e}"),
                    }
                }
                _ = shutdown.changed() => {
                    self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
                    // from now on log and audit lines are written as they come
                    crate::telemetry::sink::shutting_down();
                    return;
                }
            }
        }
    }
}

/// Listener-level settings a reload cannot change: TLS on/off and whether
/// client certificates are requested are fixed when the listener is built.
/// A reload that changes them is refused whole (restart or upgrade instead).
pub fn listener_compatible(
    old: &crate::runtime::Runtime,
    new: &crate::runtime::Runtime,
) -> Result<(), config::ConfigError> {
    let mode = |rt: &crate::runtime::Runtime| rt.tls.as_ref().map(|t| t.files.client_auth);
    match (mode(old), mode(new)) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if a == b => Ok(()),
        (None, Some(_)) | (Some(_), None) => Err(config::ConfigError(vec![config::Problem::new(
            "tls",
            "switching TLS on or off needs a restart or upgrade (-u)",
        )])),
        (Some(_), Some(_)) => Err(config::ConfigError(vec![config::Problem::new(
            "tls.client_ca/tls.client_auth",
            "changing whether client certificates are requested needs a restart or upgrade (-u)",
        )])),
    }
}
