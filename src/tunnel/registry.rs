//! The process's connected tunnels by upstream name, and where its tunnel
//! bridge listens. One registration per name: a second tunnel registering a
//! name that is connected is refused (the first keeps serving its sessions;
//! docs/tunnel.md). Registering and unregistering flip the health of the
//! `type: tunnel` endpoint, so routing and `/health` see the tunnel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::relay::Link;

/// Connected tunnels.
#[derive(Debug, Default)]
pub struct Registry {
    links: Mutex<HashMap<String, Arc<Link>>>,
}

/// Connected tunnels, process-wide on purpose: a tunnel's WebSocket
/// outlives configuration snapshots (a reload must not drop it), and the
/// bridge service, the admin API and the metrics all see the same links.
static REGISTRY: OnceLock<Registry> = OnceLock::new();
/// The bridge's Unix socket, fixed at startup (a listener, not a setting a
/// reload can change).
static BRIDGE_SOCKET: OnceLock<String> = OnceLock::new();

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(Registry::default)
}

/// Sets the tunnel bridge's Unix socket path (once, at server build).
pub fn set_bridge_socket(path: &str) {
    let _ = BRIDGE_SOCKET.set(path.to_owned());
}

/// The tunnel bridge's Unix socket path.
pub fn bridge_socket() -> String {
    BRIDGE_SOCKET
        .get()
        .cloned()
        .unwrap_or_else(|| "/nonexistent/mcp-edge-tunnel.sock".into())
}

fn set_health(name: &str, up: bool) {
    crate::health::state_of(&format!("tunnel/{name}")).set(up);
}

impl Registry {
    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Link>>> {
        self.links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a tunnel is registered under `name`.
    pub fn is_connected(&self, name: &str) -> bool {
        self.links().contains_key(name)
    }

    /// The tunnel registered under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Link>> {
        self.links().get(name).cloned()
    }

    /// Registers `link`; `false` if its name is already connected.
    pub fn register(&self, link: Arc<Link>) -> bool {
        let mut links = self.links();
        if links.contains_key(&link.name) {
            return false;
        }
        set_health(&link.name, true);
        links.insert(link.name.clone(), link);
        true
    }

    /// Removes `link` (if it is still the one registered under its name)
    /// and ends its sessions.
    pub fn unregister(&self, link: &Link) {
        let mut links = self.links();
        if links.get(&link.name).is_some_and(|l| l.id == link.id) {
            links.remove(&link.name);
            set_health(&link.name, false);
        }
        drop(links);
        link.fail_all();
    }

    /// Every connected tunnel.
    pub fn list(&self) -> Vec<Arc<Link>> {
        let mut v: Vec<_> = self.links().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The tunnel with admin id `id`.
    pub fn by_id(&self, id: &str) -> Option<Arc<Link>> {
        self.links().values().find(|l| l.id == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_registration_per_name_and_health_follows() {
        let r = Registry::default();
        let (a, _rx_a) = Link::new("reg-test", "x", 1);
        let (b, _rx_b) = Link::new("reg-test", "y", 1);
        let (a, b) = (Arc::new(a), Arc::new(b));
        assert!(r.register(a.clone()));
        assert!(crate::health::state_of("tunnel/reg-test").is_up());
        assert!(!r.register(b.clone()), "a second registration is refused");
        // the refused one going away does not unregister the first
        r.unregister(&b);
        assert!(r.is_connected("reg-test"));
        assert_eq!(r.by_id(&a.id).map(|l| l.remote.clone()), Some("x".into()));
        r.unregister(&a);
        assert!(!r.is_connected("reg-test"));
        assert!(!crate::health::state_of("tunnel/reg-test").is_up());
    }
}
