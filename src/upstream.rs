//! Upstream MCP servers: the parsed endpoint, its credential header, timeouts,
//! and the Pingora `HttpPeer` built for each request. (Pools of endpoints,
//! health checks and load balancing arrive with issue 6.)

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use pingora::upstreams::peer::HttpPeer;

/// A credential header added to every request to an upstream.
#[derive(Clone)]
pub struct UpstreamAuth {
    /// Header name.
    pub header: HeaderName,
    /// Header value (marked sensitive).
    pub value: HeaderValue,
}

impl std::fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UpstreamAuth({}: <redacted>)", self.header)
    }
}

impl UpstreamAuth {
    /// Validates the header name and value.
    pub fn new(header: &str, value: &str) -> Result<Self, String> {
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("\"{header}\" is not a valid header name"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| "value is not a valid header value".to_string())?;
        value.set_sensitive(true);
        Ok(UpstreamAuth { header, value })
    }
}

/// One upstream MCP endpoint.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Name used by routing rules and logs.
    pub name: Arc<str>,
    /// The configured URL (for display).
    pub url: String,
    /// Resolved address (resolved at config load).
    pub addr: SocketAddr,
    /// `https://` upstream.
    pub tls: bool,
    /// SNI and verified host name for TLS.
    pub sni: String,
    /// Verify the upstream certificate.
    pub verify_tls: bool,
    /// CA bundle for verification instead of the system store.
    pub ca_file: Option<String>,
    /// `Host` header sent upstream (`host[:port]` from the URL).
    pub host_header: String,
    /// Request path (and query) of the upstream MCP endpoint.
    pub path: String,
    /// `path` as a request URI.
    pub uri: http::Uri,
    /// Credential added to each request.
    pub auth: Option<UpstreamAuth>,
    /// Longest wait for upstream bytes on POST requests.
    pub timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence on a GET SSE stream.
    pub sse_idle_timeout: Duration,
}

/// The parts of an upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `https`.
    pub tls: bool,
    /// Host without brackets.
    pub host: String,
    /// `Host` header value.
    pub host_header: String,
    /// Path and query, at least `/`.
    pub path: String,
    /// First resolved address.
    pub addr: SocketAddr,
}

/// Parses and resolves `http(s)://host[:port]/path`.
pub fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("\"{url}\" is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("\"{url}\": scheme must be http or https")),
    };
    let auth = uri
        .authority()
        .ok_or_else(|| format!("\"{url}\": missing host"))?;
    if auth.as_str().contains('@') {
        return Err(format!(
            "\"{url}\": credentials in the URL are not allowed; use auth"
        ));
    }
    let host = auth
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = auth.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("\"{url}\": cannot resolve host \"{host}\""))?;
    Ok(ParsedUrl {
        tls,
        host_header: auth.as_str().to_string(),
        host,
        path,
        addr,
    })
}

impl Upstream {
    /// The peer for one request. `stream` = a GET listen stream, which uses the
    /// SSE idle timeout instead of the response timeout.
    pub fn peer(&self, stream: bool) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(self.addr, self.tls, self.sni.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(self.connect_timeout);
        o.read_timeout = Some(if stream {
            self.sse_idle_timeout
        } else {
            self.timeout
        });
        o.write_timeout = Some(self.timeout);
        o.idle_timeout = Some(Duration::from_secs(60));
        o.verify_cert = self.verify_tls;
        o.verify_hostname = self.verify_tls;
        Box::new(peer)
    }

    /// A placeholder upstream for unit tests.
    pub fn for_tests(name: &str) -> Upstream {
        Upstream {
            name: name.into(),
            url: format!("http://127.0.0.1:1/{name}"),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            tls: false,
            sni: String::new(),
            verify_tls: true,
            ca_file: None,
            host_header: "127.0.0.1:1".into(),
            path: format!("/{name}"),
            uri: http::Uri::from_static("/"),
            auth: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            sse_idle_timeout: Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = parse_url("http://127.0.0.1:9000/mcp").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.addr, SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!(p.path, "/mcp");
        assert_eq!(p.host_header, "127.0.0.1:9000");
        assert!(!p.tls);
        let p = parse_url("https://localhost/x?y=1").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.tls);
        assert_eq!(p.addr.port(), 443);
        assert_eq!(p.path, "/x?y=1");
        assert_eq!(p.host, "localhost");
        let p = parse_url("http://[::1]:8080").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.path, "/");
        assert_eq!(p.host, "::1");
        for bad in [
            "ftp://x/y",
            "not a url",
            "http://u:p@127.0.0.1/x",
            "/just/path",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auth_header_is_sensitive_and_redacted() {
        let a =
            UpstreamAuth::new("Authorization", "Bearer s3cret").unwrap_or_else(|e| panic!("{e}"));
        assert!(a.value.is_sensitive());
        assert!(!format!("{a:?}").contains("s3cret"));
        assert!(UpstreamAuth::new("bad name", "v").is_err());
        assert!(UpstreamAuth::new("x", "bad\nvalue").is_err());
    }
}
