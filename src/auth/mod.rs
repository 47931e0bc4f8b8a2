//! Identity: the [`Principal`] a request acts as, and the [`Authenticator`]
//! that decides it from the request headers in `request_filter`, before any
//! byte is forwarded. One file per scheme (`apikey`, `jwt`, `mtls`).
//!
//! Precedence: a credential in the headers (API key or JWT) decides; without
//! one, a verified client certificate does (when `auth.client_cert` is set);
//! without either, anonymous access or 401.

pub mod apikey;
pub mod jwt;
pub mod mtls;

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

pub use apikey::{ApiKeys, KeyInfo};

/// How the principal was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An API key from `auth.api_keys`.
    ApiKey,
    /// A JWT verified against `auth.jwt`.
    Jwt,
    /// A verified client certificate mapped by `auth.client_cert`.
    ClientCert,
    /// `auth.anonymous: true` and no credentials.
    Anonymous,
}

impl Source {
    /// Label for logs and audit.
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::ApiKey => "api_key",
            Source::Jwt => "jwt",
            Source::ClientCert => "client_cert",
            Source::Anonymous => "anonymous",
        }
    }
}

/// Who a request acts as. Cheap to clone (shared strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Tenant (policy subject).
    pub tenant: Arc<str>,
    /// Client within the tenant (policy subject).
    pub client: Arc<str>,
    /// The API key id, when authenticated by key (never the key).
    pub key_id: Option<Arc<str>>,
    /// The token subject, when authenticated by JWT.
    pub subject: Option<Arc<str>>,
    /// How it was established.
    pub source: Source,
    /// Verified claims to send upstream as headers (`auth.jwt.forward_claims`).
    pub forward: Arc<[(HeaderName, HeaderValue)]>,
    /// Verified top-level JWT claims (text form), for policy subjects.
    pub claims: Arc<[(Box<str>, Box<str>)]>,
    /// [`crate::session::principal_digest`] when it was computed ahead of the
    /// request (API keys: at config load); read through [`Principal::digest`].
    pub precomputed_digest: Option<[u8; crate::session::DIGEST]>,
}

impl Principal {
    /// A verified claim's text value.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }

    /// The digest a session token binds to this principal (tenant, client).
    pub fn digest(&self) -> [u8; crate::session::DIGEST] {
        self.precomputed_digest
            .unwrap_or_else(|| crate::session::principal_digest(&self.tenant, &self.client))
    }
}

impl Principal {
    /// The anonymous principal (`auth.anonymous: true`); the client is the
    /// caller's address so rate limits can still tell callers apart.
    pub fn anonymous(client: &str) -> Principal {
        Principal {
            tenant: "anonymous".into(),
            client: client.into(),
            key_id: None,
            subject: None,
            source: Source::Anonymous,
            forward: Arc::new([]),
            claims: Arc::new([]),
            precomputed_digest: None,
        }
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials and anonymous access is off.
    Missing,
    /// Credentials were sent but are not valid.
    Invalid,
}

/// A credential found in the request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `Authorization: Bearer <token>`: an API key (or, with JWT configured, a token).
    Bearer(&'a [u8]),
    /// `Authorization: Api-Key K`, `X-API-Key: K`, `Api-Key: K`.
    ApiKey(&'a [u8]),
}

/// Finds the credential in the headers. Several different credentials in one
/// request are refused (`Err`), so no header can shadow another.
pub fn credential(headers: &HeaderMap) -> Result<Option<Credential<'_>>, AuthError> {
    let mut found: Option<Credential<'_>> = None;
    let authorization = headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .map(|v| {
            let v = v.as_bytes();
            let (scheme, rest) = match v.iter().position(|b| *b == b' ') {
                Some(i) => (&v[..i], v[i + 1..].trim_ascii()),
                None => return Err(AuthError::Invalid),
            };
            if scheme.eq_ignore_ascii_case(b"bearer") {
                Ok(Credential::Bearer(rest))
            } else if scheme.eq_ignore_ascii_case(b"api-key") {
                Ok(Credential::ApiKey(rest))
            } else {
                Err(AuthError::Invalid)
            }
        });
    let key_headers = ["x-api-key", "api-key"].into_iter().flat_map(|name| {
        headers
            .get_all(name)
            .iter()
            .map(|v| Ok(Credential::ApiKey(v.as_bytes().trim_ascii())))
    });
    for c in authorization.chain(key_headers) {
        let c = c?;
        let value = c.value();
        if value.is_empty() {
            return Err(AuthError::Invalid);
        }
        match found {
            None => found = Some(c),
            // two different credentials: refuse rather than pick one
            Some(prev) if prev.value() != value => return Err(AuthError::Invalid),
            Some(_) => {}
        }
    }
    Ok(found)
}

impl<'a> Credential<'a> {
    /// The credential bytes.
    pub fn value(&self) -> &'a [u8] {
        match self {
            Credential::Bearer(b) | Credential::ApiKey(b) => b,
        }
    }
}

/// The compiled identity configuration.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// `auth.anonymous`.
    pub anonymous: bool,
    /// `auth.api_keys`.
    pub keys: ApiKeys,
    /// `auth.jwt`.
    pub jwt: Option<Arc<jwt::JwtVerifier>>,
    /// `auth.client_cert`: how a verified client certificate names the principal.
    pub client_cert: Option<mtls::CertIdentity>,
}

impl Authenticator {
    /// Installs how `auth.jwt.jwks_url` is fetched (the server does, when
    /// the snapshot goes into service).
    pub fn set_jwks_fetcher(&self, fetcher: Arc<dyn jwt::JwksFetch>) {
        if let Some(j) = &self.jwt {
            j.set_fetcher(fetcher);
        }
    }

    /// Decides the principal for a request. A Bearer value shaped like a JWT
    /// goes to the JWT verifier when one is configured; anything else is
    /// looked up as an API key.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        client_ip: &str,
        cert: Option<&crate::auth::mtls::ClientCert>,
    ) -> Result<Principal, AuthError> {
        let from_cert = || {
            let id = self.client_cert.as_ref()?;
            id.principal(cert?)
        };
        match credential(headers)? {
            None => match from_cert() {
                Some(p) => Ok(p),
                None if self.anonymous => Ok(Principal::anonymous(client_ip)),
                None => Err(AuthError::Missing),
            },
            Some(Credential::Bearer(t)) if jwt::looks_like_jwt(t) && self.jwt.is_some() => {
                match &self.jwt {
                    Some(v) => v.verify(t).await,
                    None => Err(AuthError::Invalid),
                }
            }
            Some(Credential::Bearer(k) | Credential::ApiKey(k)) => {
                self.keys.lookup(k).ok_or(AuthError::Invalid)
            }
        }
    }

    /// Header names filled from verified claims; a client-sent copy is removed.
    pub fn claim_headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.jwt
            .iter()
            .flat_map(|j| j.settings().forward_claims.iter().map(|(_, h)| h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn credential_header_forms() {
        let forms: [&[(&'static str, &str)]; 5] = [
            &[("authorization", "Bearer k1")],
            &[("authorization", "bearer   k1")],
            &[("authorization", "Api-Key k1")],
            &[("x-api-key", "k1")],
            &[("api-key", "k1")],
        ];
        for f in forms {
            let h = headers(f);
            let c = credential(&h).unwrap().unwrap();
            assert_eq!(c.value(), b"k1", "{f:?}");
        }
        assert_eq!(credential(&headers(&[])).unwrap(), None);
    }

    #[test]
    fn conflicting_or_malformed_credentials_are_invalid() {
        for f in [
            &[("authorization", "Basic dXNlcjpwdw==")][..],
            &[("authorization", "Bearer")][..],
            &[("authorization", "Bearer ")][..],
            &[("x-api-key", "")][..],
            &[("authorization", "Bearer a"), ("x-api-key", "b")][..],
            &[("x-api-key", "a"), ("api-key", "b")][..],
        ] {
            assert_eq!(credential(&headers(f)), Err(AuthError::Invalid), "{f:?}");
        }
        // the same key twice is fine
        assert!(credential(&headers(&[
            ("authorization", "Bearer a"),
            ("x-api-key", "a")
        ]))
        .is_ok());
    }
}
