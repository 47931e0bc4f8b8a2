//! JWT bearer tokens checked against a JWKS (`auth.jwt`): asymmetric
//! algorithms only (RS*, PS*, ES*, EdDSA; `none` and HMAC can never verify, so
//! the HMAC-with-public-key confusion is impossible), `iss`, `aud`, `exp`,
//! `nbf` with `leeway_secs`. Keys come from `jwks_file` or `jwks_url` (fetched
//! on demand, refreshed every `jwks_refresh_secs`, refetched on an unknown
//! `kid` at most every 30 s, served stale when the endpoint is down; bounded
//! size and time, no redirects). Verified tokens are cached by SHA-256 until
//! they expire, so a repeated token costs a hash lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::{AuthError, Principal, Source};

/// Default shortest interval between two fetches caused by unknown `kid`s.
pub const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(30);
/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 1 << 20;
/// Time allowed for one JWKS fetch.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Most verified tokens kept in the cache (cleared when full).
pub const TOKEN_CACHE_MAX: usize = 100_000;

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS file read at load time.
    File(String),
    /// An http(s) URL fetched by the gateway.
    Url(String),
}

/// Compiled `auth.jwt`.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Accepted `iss`.
    pub issuer: String,
    /// Accepted `aud` values (any of them).
    pub audiences: Vec<String>,
    /// Accepted algorithms (asymmetric only).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed for `exp`/`nbf`.
    pub leeway_secs: u64,
    /// Claim that names the tenant (missing = the issuer).
    pub tenant_claim: String,
    /// Claim that names the client (missing = `sub`).
    pub client_claim: String,
    /// Verified claims copied into upstream request headers.
    pub forward_claims: Vec<(String, HeaderName)>,
    /// Key source.
    pub source: JwksSource,
    /// Refresh interval for `jwks_url`.
    pub refresh: Duration,
    /// Shortest interval between refetches caused by unknown `kid`s.
    pub unknown_kid_refetch: Duration,
}

/// Parses an algorithm name; only asymmetric algorithms are allowed.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let alg = match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" | "HS384" | "HS512" => {
            return Err(format!("{name}: shared-secret algorithms are not accepted"))
        }
        other => return Err(format!("unknown algorithm \"{other}\"")),
    };
    Ok(alg)
}

/// The keys currently known, by `kid`.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, DecodingKey>,
    /// Keys without a `kid` (tried in order when the token has none).
    anonymous: Vec<DecodingKey>,
}

impl KeySet {
    fn from_jwks(text: &[u8]) -> Result<KeySet, String> {
        let set: JwkSet = serde_json::from_slice(text).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut ks = KeySet::default();
        for jwk in &set.keys {
            // symmetric ("oct") keys are never used: tokens must be signed asymmetrically
            if matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            ) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match &jwk.common.key_id {
                Some(kid) => {
                    ks.by_kid.insert(kid.clone(), key);
                }
                None => ks.anonymous.push(key),
            }
        }
        if ks.by_kid.is_empty() && ks.anonymous.is_empty() {
            return Err("the JWKS has no usable public key".into());
        }
        Ok(ks)
    }
}

struct Fetch {
    /// Last fetch of any kind (initial, periodic or for an unknown kid).
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
    /// Last fetch caused by an unknown `kid`.
    last_unknown_kid: Option<Instant>,
}

struct Cached {
    principal: Principal,
    exp: u64,
}

/// Verifies tokens; one per configuration snapshot.
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: ArcSwap<KeySet>,
    fetch: tokio::sync::Mutex<Fetch>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// How a `jwks_url` is fetched, installed by the server when it takes
    /// the snapshot into service (none: URL keys are never fetched).
    fetcher: OnceLock<Arc<dyn JwksFetch>>,
}

/// Fetches a JWKS document (implemented over Pingora's connector in
/// `crate::jwks`): the body of a 200 answer, or why not.
#[async_trait::async_trait]
pub trait JwksFetch: Send + Sync {
    /// GETs `url`.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.settings.issuer)
            .finish()
    }
}

use crate::base::clock::now_secs;

/// Whether a bearer value has the shape of a JWS compact token.
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.iter().filter(|b| **b == b'.').count() == 2
        && token
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(b))
}

impl JwtVerifier {
    /// A verifier; a `jwks_file` is read now (errors are config errors).
    pub fn new(settings: JwtSettings) -> Result<JwtVerifier, String> {
        let keys = match &settings.source {
            JwksSource::File(path) => {
                let text = crate::base::hermetic::read(std::path::Path::new(path))
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                KeySet::from_jwks(&text)?
            }
            JwksSource::Url(_) => KeySet::default(),
        };
        Ok(JwtVerifier {
            settings,
            keys: ArcSwap::from_pointee(keys),
            fetch: tokio::sync::Mutex::new(Fetch {
                last_attempt: None,
                last_success: None,
                last_unknown_kid: None,
            }),
            cache: Mutex::new(HashMap::new()),
            fetcher: OnceLock::new(),
        })
    }

    /// Installs the JWKS fetcher (the first one installed stays).
    pub fn set_fetcher(&self, fetcher: Arc<dyn JwksFetch>) {
        let _ = self.fetcher.set(fetcher);
    }

    /// The settings.
    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// Verifies a token and maps its claims to a principal.
    pub async fn verify(&self, token: &[u8]) -> Result<Principal, AuthError> {
        let digest = super::apikey::digest(token);
        let now = now_secs();
        if let Some(p) = self.cached(&digest, now) {
            return Ok(p);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.clone();
        self.maybe_refresh(kid.as_deref()).await;
        let keys = self.keys.load();
        let candidates: Vec<&DecodingKey> = match &kid {
            Some(k) => keys.by_kid.get(k).into_iter().collect(),
            None => keys.anonymous.iter().collect(),
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.settings.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&self.settings.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = candidates
            .iter()
            .find_map(|key| jsonwebtoken::decode::<Value>(token, key, &validation).ok())
            .ok_or(AuthError::Invalid)?
            .claims;
        let principal = self.principal(&claims)?;
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
        self.remember(digest, &principal, exp);
        Ok(principal)
    }

    fn cached(&self, digest: &[u8; 32], now: u64) -> Option<Principal> {
        let cache = self.cache.lock().ok()?;
        let c = cache.get(digest)?;
        // expiry is checked with the same leeway as a fresh verification
        (c.exp + self.settings.leeway_secs > now).then(|| c.principal.clone())
    }

    fn remember(&self, digest: [u8; 32], principal: &Principal, exp: u64) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                digest,
                Cached {
                    principal: principal.clone(),
                    exp,
                },
            );
        }
    }

    fn principal(&self, claims: &Value) -> Result<Principal, AuthError> {
        let s = &self.settings;
        let text = |name: &str| claims.get(name).and_then(claim_text);
        let subject = text("sub");
        let tenant = text(&s.tenant_claim).unwrap_or_else(|| s.issuer.clone());
        let client = text(&s.client_claim)
            .or_else(|| subject.clone())
            .ok_or(AuthError::Invalid)?;
        let mut forward = Vec::new();
        for (claim, header) in &s.forward_claims {
            if let Some(v) = claims.get(claim).and_then(claim_text) {
                // a claim that cannot be a header value is dropped, never forwarded raw
                if let Ok(hv) = HeaderValue::from_str(&v) {
                    forward.push((header.clone(), hv));
                }
            }
        }
        Ok(Principal {
            tenant: tenant.into(),
            client: client.into(),
            key_id: None,
            subject: subject.map(Into::into),
            precomputed_digest: None,
            source: Source::Jwt,
            forward: forward.into(),
            claims: claims
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| claim_text(v).map(|t| (k.as_str().into(), t.into())))
                        .collect::<Vec<(Box<str>, Box<str>)>>()
                })
                .unwrap_or_default()
                .into(),
        })
    }

    /// Fetches the JWKS when none is loaded yet, when it is older than the
    /// refresh interval, or when the token names an unknown `kid` (at most
    /// every 30 s). Concurrent requests share one fetch; failures keep the
    /// keys already known (served stale).
    pub async fn maybe_refresh(&self, kid: Option<&str>) {
        let JwksSource::Url(url) = &self.settings.source else {
            return;
        };
        let mut f = self.fetch.lock().await;
        let limit = self.settings.unknown_kid_refetch;
        let stale = f
            .last_success
            .is_none_or(|t| t.elapsed() >= self.settings.refresh);
        // a failing endpoint is retried at the unknown-kid pace, not per request
        let retry_ok = f.last_attempt.is_none_or(|t| t.elapsed() >= limit);
        // checked under the lock: another request may have fetched meanwhile
        let unknown_kid = kid.is_some_and(|k| !self.keys.load().by_kid.contains_key(k));
        let kid_ok = f.last_unknown_kid.is_none_or(|t| t.elapsed() >= limit);
        let for_kid = unknown_kid && kid_ok && f.last_success.is_some();
        let periodic = stale && retry_ok;
        if !(periodic || for_kid) {
            return;
        }
        f.last_attempt = Some(Instant::now());
        if for_kid {
            f.last_unknown_kid = f.last_attempt;
        }
        let Some(fetcher) = self.fetcher.get() else {
            log::warn!("jwks {url}: no fetcher installed; keeping the keys already known");
            return;
        };
        match tokio::time::timeout(JWKS_FETCH_TIMEOUT, fetcher.fetch(url)).await {
            Ok(Ok(text)) => match KeySet::from_jwks(&text) {
                Ok(ks) => {
                    self.keys.store(Arc::new(ks));
                    f.last_success = Some(Instant::now());
                }
                Err(e) => log::warn!("jwks {url}: {e}; keeping the keys already known"),
            },
            Ok(Err(e)) => log::warn!("jwks {url}: {e}; keeping the keys already known"),
            Err(_) => log::warn!("jwks {url}: timed out; keeping the keys already known"),
        }
    }
}

fn claim_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
