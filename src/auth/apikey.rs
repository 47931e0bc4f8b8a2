//! API keys: stored as SHA-256 digests (`key_hash: "sha256:<hex>"`, or a
//! plain development `key` hashed at load). A presented key is hashed once,
//! looked up by digest, and the digest is compared in constant time.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Principal, Source};

/// What a key maps to.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The key id (shown in logs; never the key).
    pub id: Arc<str>,
    /// Tenant.
    pub tenant: Arc<str>,
    /// Client.
    pub client: Arc<str>,
    digest: [u8; 32],
    /// The session principal digest of (tenant, client), computed once.
    principal: [u8; crate::session::DIGEST],
}

/// The key table.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], KeyInfo>,
}

/// SHA-256 of a key.
pub fn digest(key: &[u8]) -> [u8; 32] {
    crate::base::digest::sha256(key)
}

/// `sha256:<hex>` form of a key, as `mcp-edge hash-key` prints it.
pub fn hash_form(key: &[u8]) -> String {
    format!("sha256:{}", crate::base::digest::hex(&digest(key)))
}

/// Parses `sha256:<64 hex>`.
pub fn parse_hash(s: &str) -> Result<[u8; 32], String> {
    let hex = s
        .strip_prefix("sha256:")
        .ok_or_else(|| "key_hash must look like \"sha256:<64 hex digits>\"".to_string())?;
    if hex.len() != 64 {
        return Err("key_hash must have 64 hex digits after \"sha256:\"".into());
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).map_err(|_| "key_hash is not hex".to_string())?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| "key_hash is not hex".to_string())?;
    }
    Ok(out)
}

impl ApiKeys {
    /// Adds a key; `Err` if its digest is already present.
    pub fn insert(
        &mut self,
        id: &str,
        digest: [u8; 32],
        tenant: &str,
        client: &str,
    ) -> Result<(), String> {
        if self.by_digest.contains_key(&digest) {
            return Err("the same key is configured twice".into());
        }
        self.by_digest.insert(
            digest,
            KeyInfo {
                id: id.into(),
                tenant: tenant.into(),
                client: client.into(),
                digest,
                principal: crate::session::principal_digest(tenant, client),
            },
        );
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The principal for a presented key, if it is known.
    pub fn lookup(&self, presented: &[u8]) -> Option<Principal> {
        let d = digest(presented);
        // The map lookup only sees a SHA-256 digest of the secret; the final
        // comparison is constant-time.
        let info = self.by_digest.get(&d)?;
        if !crate::base::digest::ct_eq(&info.digest, &d) {
            return None;
        }
        Some(Principal {
            tenant: info.tenant.clone(),
            client: info.client.clone(),
            key_id: Some(info.id.clone()),
            subject: None,
            source: Source::ApiKey,
            forward: Arc::new([]),
            claims: Arc::new([]),
            precomputed_digest: Some(info.principal),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_roundtrip_and_lookup() {
        let h = hash_form(b"dev_key_1");
        assert!(h.starts_with("sha256:"));
        let d = parse_hash(&h).unwrap();
        assert_eq!(d, digest(b"dev_key_1"));
        let mut keys = ApiKeys::default();
        keys.insert("local-dev-key", d, "client", "local-dev")
            .unwrap();
        let p = keys.lookup(b"dev_key_1").unwrap();
        assert_eq!(&*p.tenant, "client");
        assert_eq!(p.key_id.as_deref(), Some("local-dev-key"));
        // the session digest comes precomputed and equals the computed one
        assert!(p.precomputed_digest.is_some());
        assert_eq!(
            p.digest(),
            crate::session::principal_digest("client", "local-dev")
        );
        assert!(keys.lookup(b"dev_key_2").is_none());
        assert!(keys.lookup(b"").is_none());
        assert!(keys.insert("again", d, "t", "c").is_err());
    }

    #[test]
    fn bad_hash_forms() {
        for bad in [
            "",
            "md5:00",
            "sha256:abc",
            &format!("sha256:{}", "zz".repeat(32)),
        ] {
            assert!(parse_hash(bad).is_err(), "{bad}");
        }
    }
}
