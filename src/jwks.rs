//! The JWKS fetcher: GETs an `auth.jwt.jwks_url` over HTTP/1.1 (TLS for
//! https) with Pingora's connector, for the verifier in `crate::auth::jwt`
//! (which decides when to fetch and keeps the last good keys).

use std::sync::Arc;
use std::time::Duration;

use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use crate::auth::jwt::{JwksFetch, JWKS_FETCH_TIMEOUT, MAX_JWKS_BYTES};

/// The fetcher the server installs in every snapshot's verifier.
pub struct PingoraFetch;

#[async_trait::async_trait]
impl JwksFetch for PingoraFetch {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        fetch_jwks(url).await
    }
}

/// The shared fetcher.
pub fn fetcher() -> Arc<dyn JwksFetch> {
    Arc::new(PingoraFetch)
}

/// GETs a JWKS over HTTP/1.1 (TLS for https) with Pingora's connector: 200
/// only (redirects are refused), at most `MAX_JWKS_BYTES`.
async fn fetch_jwks(url: &str) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let tls = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or("URL has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    let mut peer = HttpPeer::new(addr, tls, host.clone());
    peer.options.connection_timeout = Some(Duration::from_secs(2));
    peer.options.read_timeout = Some(JWKS_FETCH_TIMEOUT);
    let connector = Connector::new(None);
    let (mut session, _) = connector
        .get_http_session(&peer)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).map_err(|e| e.to_string())?;
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    req.insert_header("host", authority)
        .map_err(|e| e.to_string())?;
    req.insert_header("accept", "application/json")
        .map_err(|e| e.to_string())?;
    session
        .write_request_header(Box::new(req))
        .await
        .map_err(|e| e.to_string())?;
    session
        .finish_request_body()
        .await
        .map_err(|e| e.to_string())?;
    session
        .read_response_header()
        .await
        .map_err(|e| e.to_string())?;
    let status = session.response_header().map_or(0, |h| h.status.as_u16());
    if status != 200 {
        return Err(format!("HTTP {status} (redirects are not followed)"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = session
        .read_response_body()
        .await
        .map_err(|e| e.to_string())?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
    }
    Ok(body)
}
