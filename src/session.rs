//! Sealed MCP sessions (issue 6): the session id a client sees is an opaque
//! token that seals who owns the session upstream, so any gateway process
//! with the same keys can route it, across restarts and replicas, without a
//! shared store.
//!
//! A token seals [`Owner`]: the upstream pool, the endpoint that answered
//! `initialize`, the upstream's own `Mcp-Session-Id`, a digest of the
//! principal that created it, and the issue time, with AES-256-GCM (AES-NI:
//! ~0.2 µs; ChaCha20-Poly1305 measured 2 µs here without a SIMD backend).
//! Keys come from `sessions.keys` (derived once with HKDF-SHA256 when the
//! configuration is compiled, never per request); the first seals, all
//! open, so keys rotate by prepending. Format (all visible ASCII, spec):
//!
//! ```text
//! "1" base64url( hint(1) nonce(12) ciphertext+tag )
//! ```
//!
//! `hint` is one byte of the key's fingerprint (saves trying every key);
//! nothing of the upstream is readable. A virtual server's session is a
//! [`Composite`] (every member's session) sealed the same way as version
//! `2` under its own associated data, so neither kind opens as the other.
//! Anything that does not open, or
//! opens for another principal, or is too old, is refused: the gateway
//! answers 404 so the client re-initializes, and never routes it.

use std::time::Duration;

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Token version prefix.
const VERSION: u8 = b'1';
/// Bound to every token (AEAD associated data).
const AAD: &[u8] = b"mcp-edge/session/v1";
/// Version prefix of a virtual server's token.
const COMPOSITE_VERSION: u8 = b'2';
/// Bound to every virtual server token.
const COMPOSITE_AAD: &[u8] = b"mcp-edge/session/v2/composite";
/// Longest virtual server token accepted (base64 characters after the
/// version): room for 16 members with long ids.
pub const MAX_COMPOSITE_CHARS: usize = 8192;
/// Shortest accepted secret in `sessions.keys`.
pub const MIN_SECRET_LEN: usize = 32;
/// Longest upstream session id sealed (the spec sets no limit; tokens stay compact).
pub const MAX_UPSTREAM_ID: usize = 512;
/// How far in the future an issue time may be (clock skew between replicas).
const SKEW_SECS: u64 = 300;

/// Longest token body accepted (base64 characters after the version);
/// the longest token sealed is 1 + 12 + 16 + 8 + 16 + 2 + 255 + 255 + 512
/// bytes, under 1 500 characters.
const MAX_TOKEN_CHARS: usize = 1500;
const NONCE: usize = 12;
const TAG: usize = 16;
/// Bytes of the principal digest a token carries.
pub const DIGEST: usize = 16;

/// Who owns a session upstream; what a token seals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Upstream (pool) name.
    pub upstream: String,
    /// The endpoint that answered `initialize` (as configured).
    pub endpoint: String,
    /// The upstream's own `Mcp-Session-Id`.
    pub session: String,
    /// [`principal_digest`] of the principal that initialized it.
    pub principal: [u8; DIGEST],
    /// Unix seconds when it was sealed.
    pub issued: u64,
}

/// One member's session inside a virtual server's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSession {
    /// The member's upstream name.
    pub upstream: String,
    /// The endpoint that answered its `initialize`.
    pub endpoint: String,
    /// Its own `Mcp-Session-Id` (empty: it issued none).
    pub session: String,
    /// The protocol version it chose.
    pub version: String,
}

/// What a virtual server's token seals: every member's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composite {
    /// The virtual server's path.
    pub server: String,
    /// The members that joined, in the order of their namespaced ids.
    pub members: Vec<MemberSession>,
    /// [`principal_digest`] of the principal that initialized it.
    pub principal: [u8; DIGEST],
    /// Unix seconds when it was sealed.
    pub issued: u64,
}

impl Composite {
    /// The index and session of the member on `upstream`.
    pub fn member(&self, upstream: &str) -> Option<(usize, &MemberSession)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, m)| m.upstream == upstream)
    }
}

/// Keys for a gateway without `sessions.keys`: one random key per process
/// (sessions then end with the process and do not span replicas; `run`
/// warns). Process-wide on purpose: a reload without `sessions.keys` must
/// keep opening the sessions sealed before it.
pub fn ephemeral() -> &'static SessionKeys {
    static KEYS: std::sync::OnceLock<SessionKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let secret = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        match SessionKeys::new(&[secret], Duration::from_secs(7 * 86_400)) {
            Ok(k) => k,
            // unreachable: the secret is 64 characters
            Err(_) => SessionKeys {
                keys: Vec::new(),
                max_age: Duration::ZERO,
            },
        }
    })
}

/// Why a token was refused (all answered 404; the label goes to the audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a token of this format (wrong prefix, bad base64, too short).
    Malformed,
    /// Did not open with any key: tampered, truncated, or sealed with a key
    /// no longer configured.
    NotOpened,
    /// Opened, but belongs to another principal.
    OtherPrincipal,
    /// Older than `sessions.max_age_secs`, or issued in the future.
    Expired,
}

impl Refused {
    /// Label for logs and audit.
    pub fn label(&self) -> &'static str {
        match self {
            Refused::Malformed => "session_malformed",
            Refused::NotOpened => "session_not_opened",
            Refused::OtherPrincipal => "session_other_principal",
            Refused::Expired => "session_expired",
        }
    }
}

/// The digest of a principal a session is bound to.
pub fn principal_digest(tenant: &str, client: &str) -> [u8; DIGEST] {
    let mut h = Sha256::new();
    h.update(b"mcp-edge/principal\0");
    h.update(tenant.as_bytes());
    h.update([0]);
    h.update(client.as_bytes());
    let full = h.finalize();
    let mut out = [0u8; DIGEST];
    out.copy_from_slice(&full[..DIGEST]);
    out
}

struct SealKey {
    hint: u8,
    aead: Aes256Gcm,
}

/// The compiled `sessions:` section: derived keys and the age limit.
pub struct SessionKeys {
    keys: Vec<SealKey>,
    max_age: Duration,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("keys", &self.keys.len())
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl SessionKeys {
    /// Derives the keys from the configured secrets (first seals, all open).
    /// Errors are `(index, message)` for each bad secret.
    pub fn new(secrets: &[String], max_age: Duration) -> Result<SessionKeys, Vec<(usize, String)>> {
        let mut errs = Vec::new();
        if secrets.is_empty() {
            errs.push((0, "at least one key is required".to_string()));
        }
        let mut keys = Vec::new();
        for (i, s) in secrets.iter().enumerate() {
            if s.len() < MIN_SECRET_LEN {
                errs.push((i, format!("must be at least {MIN_SECRET_LEN} characters")));
                continue;
            }
            if secrets[..i].contains(s) {
                errs.push((i, "duplicate key".to_string()));
                continue;
            }
            let hk = hkdf::Hkdf::<Sha256>::new(Some(b"mcp-edge sessions"), s.as_bytes());
            let mut okm = [0u8; 32];
            if hk.expand(b"aes-256-gcm v1", &mut okm).is_err() {
                errs.push((i, "key derivation failed".to_string()));
                continue;
            }
            let hint = Sha256::digest(okm)[0];
            keys.push(SealKey {
                hint,
                aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&okm)),
            });
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(SessionKeys { keys, max_age })
    }

    /// Seals an owner into a token; `None` when a field is too long to seal
    /// (upstream/endpoint over 255 bytes, upstream id over 512).
    pub fn seal(&self, owner: &Owner) -> Option<String> {
        let (up, ep, id) = (
            owner.upstream.as_bytes(),
            owner.endpoint.as_bytes(),
            owner.session.as_bytes(),
        );
        if up.len() > 255 || ep.len() > 255 || id.len() > MAX_UPSTREAM_ID {
            return None;
        }
        let mut plain = Vec::with_capacity(8 + DIGEST + 2 + up.len() + ep.len() + id.len());
        plain.extend_from_slice(&owner.issued.to_be_bytes());
        plain.extend_from_slice(&owner.principal);
        plain.push(up.len() as u8);
        plain.extend_from_slice(up);
        plain.push(ep.len() as u8);
        plain.extend_from_slice(ep);
        plain.extend_from_slice(id);
        self.seal_with(VERSION, AAD, &plain)
    }

    /// Seals a virtual server's session (every member's session id) into
    /// one token; `None` when it does not fit ([`MAX_COMPOSITE_CHARS`]).
    pub fn seal_composite(&self, c: &Composite) -> Option<String> {
        let mut plain = Vec::with_capacity(64 + c.members.len() * 96);
        plain.extend_from_slice(&c.issued.to_be_bytes());
        plain.extend_from_slice(&c.principal);
        push_short(&mut plain, c.server.as_bytes())?;
        plain.push(u8::try_from(c.members.len()).ok()?);
        for m in &c.members {
            push_short(&mut plain, m.upstream.as_bytes())?;
            push_short(&mut plain, m.endpoint.as_bytes())?;
            push_short(&mut plain, m.version.as_bytes())?;
            if m.session.len() > MAX_UPSTREAM_ID {
                return None;
            }
            plain.extend_from_slice(&(m.session.len() as u16).to_be_bytes());
            plain.extend_from_slice(m.session.as_bytes());
        }
        let token = self.seal_with(COMPOSITE_VERSION, COMPOSITE_AAD, &plain)?;
        (token.len() <= MAX_COMPOSITE_CHARS + 1).then_some(token)
    }

    /// Opens a virtual server's token presented by `principal` at `now`;
    /// the same refusals as [`SessionKeys::open`] (a single-upstream token
    /// is `Malformed` here, and a composite one there).
    pub fn open_composite(
        &self,
        token: &str,
        principal: &[u8; DIGEST],
        now: u64,
    ) -> Result<Composite, Refused> {
        let body = token
            .as_bytes()
            .split_first()
            .filter(|(v, _)| **v == COMPOSITE_VERSION)
            .map(|(_, rest)| rest)
            .ok_or(Refused::Malformed)?;
        if body.len() > MAX_COMPOSITE_CHARS {
            return Err(Refused::Malformed);
        }
        let mut raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Refused::Malformed)?;
        let n = raw.len();
        if n < 1 + NONCE + TAG + 8 + DIGEST + 2 {
            return Err(Refused::Malformed);
        }
        let hint = raw[0];
        let nonce = *Nonce::from_slice(&raw[1..1 + NONCE]);
        let tag = *Tag::from_slice(&raw[n - TAG..]);
        let sealed = raw[1 + NONCE..n - TAG].to_vec();
        let plain = &mut raw[1 + NONCE..n - TAG];
        let opened = self.keys.iter().filter(|k| k.hint == hint).any(|k| {
            plain.copy_from_slice(&sealed);
            k.aead
                .decrypt_in_place_detached(&nonce, COMPOSITE_AAD, plain, &tag)
                .is_ok()
        });
        if !opened {
            return Err(Refused::NotOpened);
        }
        let c = parse_composite(plain).ok_or(Refused::Malformed)?;
        if c.principal != *principal {
            return Err(Refused::OtherPrincipal);
        }
        let age = now.saturating_sub(c.issued);
        if age > self.max_age.as_secs() || c.issued > now.saturating_add(SKEW_SECS) {
            return Err(Refused::Expired);
        }
        Ok(c)
    }

    /// AES-256-GCM under the first key: `version` + base64url(hint nonce
    /// ciphertext+tag).
    fn seal_with(&self, version: u8, aad: &[u8], plain: &[u8]) -> Option<String> {
        let key = self.keys.first()?;
        let nonce: [u8; NONCE] = rand::random();
        let sealed = key
            .aead
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .ok()?;
        let mut raw = Vec::with_capacity(1 + NONCE + sealed.len());
        raw.push(key.hint);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        let mut out = String::with_capacity(1 + raw.len().div_ceil(3) * 4);
        out.push(version as char);
        URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
        Some(out)
    }

    /// Opens a token presented by `principal` at `now` (Unix seconds).
    pub fn open(&self, token: &str, principal: &[u8; DIGEST], now: u64) -> Result<Owner, Refused> {
        let body = token
            .as_bytes()
            .split_first()
            .filter(|(v, _)| **v == VERSION)
            .map(|(_, rest)| rest)
            .ok_or(Refused::Malformed)?;
        if body.len() > MAX_TOKEN_CHARS {
            return Err(Refused::Malformed);
        }
        // decoded and opened on the stack: no allocation before the token is known good
        let mut raw = [0u8; MAX_TOKEN_CHARS * 3 / 4 + 3];
        let n = URL_SAFE_NO_PAD
            .decode_slice(body, &mut raw)
            .map_err(|_| Refused::Malformed)?;
        if n < 1 + NONCE + TAG + 8 + DIGEST + 2 {
            return Err(Refused::Malformed);
        }
        let (hint, nonce) = (raw[0], Nonce::from_slice(&raw[1..1 + NONCE]));
        let (sealed, tag) = raw[1 + NONCE..n].split_at(n - 1 - NONCE - TAG);
        let tag = Tag::from_slice(tag);
        let mut plain = [0u8; MAX_TOKEN_CHARS * 3 / 4];
        let plain = &mut plain[..sealed.len()];
        let opened = self.keys.iter().filter(|k| k.hint == hint).any(|k| {
            plain.copy_from_slice(sealed);
            k.aead
                .decrypt_in_place_detached(nonce, AAD, plain, tag)
                .is_ok()
        });
        if !opened {
            return Err(Refused::NotOpened);
        }
        // authenticated from here on: a layout error is our own bug, still refused
        let owner = parse_plain(plain).ok_or(Refused::Malformed)?;
        if owner.principal != *principal {
            return Err(Refused::OtherPrincipal);
        }
        let age = now.saturating_sub(owner.issued);
        // saturating: a clock near u64::MAX (found by the fuzz contract) must not overflow
        if age > self.max_age.as_secs() || owner.issued > now.saturating_add(SKEW_SECS) {
            return Err(Refused::Expired);
        }
        Ok(owner)
    }
}

fn push_short(out: &mut Vec<u8>, s: &[u8]) -> Option<()> {
    out.push(u8::try_from(s.len()).ok()?);
    out.extend_from_slice(s);
    Some(())
}

fn parse_composite(p: &[u8]) -> Option<Composite> {
    let issued = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let mut principal = [0u8; DIGEST];
    principal.copy_from_slice(p.get(8..8 + DIGEST)?);
    let mut at = 8 + DIGEST;
    let short = |at: &mut usize| -> Option<String> {
        let n = usize::from(*p.get(*at)?);
        let s = p.get(*at + 1..*at + 1 + n)?;
        *at += 1 + n;
        String::from_utf8(s.to_vec()).ok()
    };
    let server = short(&mut at)?;
    let count = usize::from(*p.get(at)?);
    at += 1;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let upstream = short(&mut at)?;
        let endpoint = short(&mut at)?;
        let version = short(&mut at)?;
        let n = usize::from(u16::from_be_bytes(p.get(at..at + 2)?.try_into().ok()?));
        let session = String::from_utf8(p.get(at + 2..at + 2 + n)?.to_vec()).ok()?;
        at += 2 + n;
        members.push(MemberSession {
            upstream,
            endpoint,
            session,
            version,
        });
    }
    (at == p.len()).then_some(Composite {
        server,
        members,
        principal,
        issued,
    })
}

fn parse_plain(p: &[u8]) -> Option<Owner> {
    let issued = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let mut principal = [0u8; DIGEST];
    principal.copy_from_slice(p.get(8..8 + DIGEST)?);
    let mut at = 8 + DIGEST;
    let mut field = |p: &[u8]| -> Option<String> {
        let n = usize::from(*p.get(at)?);
        let s = p.get(at + 1..at + 1 + n)?;
        at += 1 + n;
        String::from_utf8(s.to_vec()).ok()
    };
    let upstream = field(p)?;
    let endpoint = field(p)?;
    let session = String::from_utf8(p.get(at..)?.to_vec()).ok()?;
    Some(Owner {
        upstream,
        endpoint,
        session,
        principal,
        issued,
    })
}

/// The fuzz contract (`contracts` feature; see `contract.rs`).
#[cfg(any(test, feature = "contracts"))]
mod contract;
#[cfg(any(test, feature = "contracts"))]
#[doc(hidden)]
pub use contract::check_contract;
#[cfg(test)]
#[allow(unused_imports)]
use contract::*;

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn keys(secrets: &[&str]) -> SessionKeys {
        SessionKeys::new(
            &secrets.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            DAY,
        )
        .unwrap()
    }

    fn composite() -> Composite {
        Composite {
            server: "/tools".into(),
            members: vec![
                MemberSession {
                    upstream: "ev".into(),
                    endpoint: "127.0.0.1:9000/mcp".into(),
                    session: "3f2c6f1e-8a0b-4c55-9d8e-0d6c1b7a9e21".into(),
                    version: "2025-11-25".into(),
                },
                MemberSession {
                    upstream: "py".into(),
                    endpoint: "127.0.0.1:9001/mcp".into(),
                    session: String::new(),
                    version: "2025-06-18".into(),
                },
            ],
            principal: principal_digest("acme", "ci-bot"),
            issued: 1_800_000_000,
        }
    }

    #[test]
    fn composite_tokens_round_trip_and_do_not_mix_with_single_ones() {
        let k = keys(&[A]);
        let c = composite();
        let t = k.seal_composite(&c).unwrap();
        assert!(t.starts_with('2'));
        let now = c.issued + 10;
        assert_eq!(k.open_composite(&t, &c.principal, now), Ok(c.clone()));
        assert_eq!(k.open(&t, &c.principal, now), Err(Refused::Malformed));
        let single = k.seal(&owner()).unwrap();
        assert_eq!(
            k.open_composite(&single, &owner().principal, now),
            Err(Refused::Malformed)
        );
        let other = principal_digest("acme", "other");
        assert_eq!(
            k.open_composite(&t, &other, now),
            Err(Refused::OtherPrincipal)
        );
        assert_eq!(
            k.open_composite(&t, &c.principal, now + 2 * 86_400),
            Err(Refused::Expired)
        );
        let mut bad = t.clone().into_bytes();
        let i = bad.len() / 2;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            k.open_composite(&bad, &c.principal, now),
            Err(Refused::NotOpened)
        );
        assert_eq!(
            keys(&[B]).open_composite(&t, &c.principal, now),
            Err(Refused::NotOpened)
        );
        // a token naming many members still fits
        let mut many = c.clone();
        many.members = (0..16)
            .map(|i| MemberSession {
                upstream: format!("upstream-{i}"),
                endpoint: format!("10.0.0.{i}:9000/mcp"),
                session: "x".repeat(64),
                version: "2025-11-25".into(),
            })
            .collect();
        let t = k.seal_composite(&many).unwrap();
        assert_eq!(k.open_composite(&t, &c.principal, now), Ok(many));
    }

    fn owner() -> Owner {
        Owner {
            upstream: "mcp-math".into(),
            endpoint: "10.0.0.12:9000".into(),
            session: "3f2c6f1e-8a0b-4c55-9d8e-0d6c1b7a9e21".into(),
            principal: principal_digest("acme", "ci-bot"),
            issued: 1_800_000_000,
        }
    }

    const A: &str = "first-secret-0123456789-abcdefghijkl";
    const B: &str = "second-secret-0123456789-abcdefghijk";

    #[test]
    fn round_trip_is_compact_visible_ascii_and_hides_the_upstream() {
        let k = keys(&[A]);
        let o = owner();
        let t = k.seal(&o).unwrap();
        assert!(t.len() < 200, "{} bytes", t.len());
        assert!(t.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{t}");
        for secret in ["10.0.0.12", "mcp-math", "3f2c6f1e"] {
            assert!(!t.contains(secret));
        }
        assert_eq!(k.open(&t, &o.principal, o.issued + 10), Ok(o.clone()));
        // two seals of the same owner differ (random nonce)
        assert_ne!(k.seal(&o).unwrap(), t);
    }

    #[test]
    fn rotation_first_seals_all_open() {
        let old = keys(&[A]);
        let rotated = keys(&[B, A]);
        let o = owner();
        let t_old = old.seal(&o).unwrap();
        assert!(rotated.open(&t_old, &o.principal, o.issued).is_ok());
        let t_new = rotated.seal(&o).unwrap();
        // a process that only knows the old key cannot open new tokens
        assert_eq!(
            old.open(&t_new, &o.principal, o.issued),
            Err(Refused::NotOpened)
        );
        // once the old key is dropped, old tokens are refused
        let only_new = keys(&[B]);
        assert_eq!(
            only_new.open(&t_old, &o.principal, o.issued),
            Err(Refused::NotOpened)
        );
    }

    #[test]
    fn tampered_truncated_malformed_foreign_are_refused() {
        let k = keys(&[A]);
        let o = owner();
        let t = k.seal(&o).unwrap();
        // flip every character in turn
        for i in 1..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(b).unwrap();
            if forged == t {
                continue;
            }
            assert!(
                k.open(&forged, &o.principal, o.issued).is_err(),
                "flip at {i}"
            );
        }
        for n in 0..t.len() {
            assert!(
                k.open(&t[..n], &o.principal, o.issued).is_err(),
                "truncated to {n}"
            );
        }
        for junk in [
            "",
            "1",
            "2abc",
            "1!!!!",
            "3f2c6f1e-8a0b-4c55-9d8e-0d6c1b7a9e21",
        ] {
            assert!(k.open(junk, &o.principal, o.issued).is_err(), "{junk}");
        }
        let foreign = keys(&[B]).seal(&o).unwrap();
        assert_eq!(
            k.open(&foreign, &o.principal, o.issued),
            Err(Refused::NotOpened)
        );
    }

    #[test]
    fn other_principal_and_age_are_refused() {
        let k = keys(&[A]);
        let o = owner();
        let t = k.seal(&o).unwrap();
        let mallory = principal_digest("acme", "mallory");
        assert_eq!(k.open(&t, &mallory, o.issued), Err(Refused::OtherPrincipal));
        assert_eq!(
            k.open(&t, &o.principal, o.issued + DAY.as_secs() + 1),
            Err(Refused::Expired)
        );
        assert_eq!(
            k.open(&t, &o.principal, o.issued - SKEW_SECS - 1),
            Err(Refused::Expired)
        );
        assert!(
            k.open(&t, &o.principal, o.issued - 10).is_ok(),
            "small skew is fine"
        );
    }

    #[test]
    fn key_and_field_limits() {
        let errs = SessionKeys::new(&["short".into(), A.into(), A.into()], DAY).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(SessionKeys::new(&[], DAY).is_err());
        let k = keys(&[A]);
        let mut o = owner();
        o.session = "x".repeat(MAX_UPSTREAM_ID + 1);
        assert!(k.seal(&o).is_none());
        o.session = "x".repeat(MAX_UPSTREAM_ID);
        let t = k.seal(&o).unwrap();
        assert_eq!(
            k.open(&t, &o.principal, o.issued).unwrap().session.len(),
            MAX_UPSTREAM_ID
        );
    }

    #[test]
    fn contract_holds_for_edge_times_and_sizes() {
        let owner_input = |issued: u64, clock: u8, id_len: u16, ops: &[u8]| {
            let mut v = vec![0u8];
            v.extend_from_slice(&issued.to_be_bytes());
            v.push(clock);
            v.extend_from_slice(&(-5i32).to_be_bytes());
            v.extend_from_slice(&[7u8; DIGEST]);
            v.extend_from_slice(&[8, 14]);
            v.extend_from_slice(b"mcp-math10.0.0.12:9000");
            v.extend_from_slice(&id_len.to_be_bytes());
            v.extend(std::iter::repeat_n(b's', usize::from(id_len)));
            v.extend_from_slice(ops);
            v
        };
        for issued in [0, CONTRACT_NOW, u64::MAX - 1, u64::MAX] {
            for clock in [0, 253, 254, 255] {
                check_contract(&owner_input(
                    issued,
                    clock,
                    36,
                    &[0, 0, 9, 3, 2, 0, 0, b'A'],
                ));
            }
        }
        check_contract(&owner_input(CONTRACT_NOW, 0, 512, &[]));
        check_contract(&owner_input(CONTRACT_NOW, 0, 513, &[]));
        // a genuine token, presented as is
        let k = contract_keys(&CONTRACT_SECRETS).unwrap();
        let o = Owner {
            principal: principal_digest("fuzz", "contract"),
            issued: CONTRACT_NOW - 60,
            ..owner()
        };
        let t = k.seal(&o).unwrap();
        check_contract(t.as_bytes());
        for junk in ["", "1", "1AAAA", "2abc", &"1".repeat(3000)] {
            check_contract(junk.as_bytes());
        }
    }

    #[test]
    fn a_clock_at_the_end_of_time_does_not_overflow() {
        // found by the fuzz contract: `now + SKEW_SECS` overflowed
        let k = keys(&[A]);
        let mut o = owner();
        let t = k.seal(&o).unwrap();
        assert_eq!(k.open(&t, &o.principal, u64::MAX), Err(Refused::Expired));
        o.issued = u64::MAX;
        let t = k.seal(&o).unwrap();
        assert_eq!(k.open(&t, &o.principal, u64::MAX), Ok(o));
    }
}
