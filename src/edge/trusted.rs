//! `server.trust_proxy`: X-Forwarded-For / Forwarded / X-Real-IP (and the
//! protocol/host headers) are believed only when the direct peer is a trusted
//! proxy; the client is then the right-most address that is not itself a
//! trusted proxy. From anyone else the headers are ignored, and they are never
//! passed upstream as sent (they are on `hygiene::NEVER_FORWARDED`): the
//! gateway writes its own. Pingora-free.

use std::net::IpAddr;

use http::header::HeaderName;
use http::HeaderMap;
use ipnet::IpNet;

/// Compiled `server.trust_proxy`.
#[derive(Debug, Clone)]
pub struct TrustProxy {
    /// Peers whose forwarding headers are believed.
    pub proxies: Vec<IpNet>,
    /// Header naming the client chain (`X-Forwarded-For`, `Forwarded` or `X-Real-IP`).
    pub client_ip: HeaderName,
    /// Header naming the original scheme.
    pub protocol: HeaderName,
    /// Header naming the original host.
    pub host: HeaderName,
}

/// What the edge decided about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client address.
    pub ip: IpAddr,
    /// The original scheme, from a trusted proxy.
    pub proto: Option<String>,
    /// The original host, from a trusted proxy.
    pub host: Option<String>,
}

impl Default for TrustProxy {
    fn default() -> Self {
        TrustProxy {
            proxies: Vec::new(),
            client_ip: HeaderName::from_static("x-forwarded-for"),
            protocol: HeaderName::from_static("x-forwarded-proto"),
            host: HeaderName::from_static("x-forwarded-host"),
        }
    }
}

impl TrustProxy {
    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|n| n.contains(&ip))
    }

    /// Resolves the client for a request from `peer`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> Client {
        let untrusted = Client {
            ip: peer,
            proto: None,
            host: None,
        };
        if !self.trusted(peer) {
            return untrusted;
        }
        // the chain, left (oldest) to right (nearest), over all header lines
        let mut chain: Vec<Option<IpAddr>> = Vec::new();
        let forwarded = self.client_ip.as_str() == "forwarded";
        for v in headers.get_all(&self.client_ip) {
            let Ok(text) = v.to_str() else {
                chain.push(None);
                continue;
            };
            for part in text.split(',') {
                let addr = if forwarded {
                    forwarded_for(part)
                } else {
                    Some(part.trim())
                };
                chain.push(addr.and_then(parse_ip));
            }
        }
        // right to left: skip our own trusted proxies; the first other hop is
        // the client. An unparsable hop ends the walk: nothing left of it can
        // be believed, so the last trusted hop is used.
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) if self.trusted(*ip) => client = *ip,
                Some(ip) => {
                    client = *ip;
                    break;
                }
                None => break,
            }
        }
        let text = |h: &HeaderName| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(',').next_back().unwrap_or("").trim().to_string())
                .filter(|s| !s.is_empty() && s.len() <= 255)
        };
        Client {
            ip: client,
            proto: text(&self.protocol).filter(|p| p == "http" || p == "https"),
            host: text(&self.host),
        }
    }
}

/// The `for=` value of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// An address, with an optional port (`1.2.3.4:80`, `[::1]:80`) or brackets.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn tp(cidrs: &[&str]) -> TrustProxy {
        TrustProxy {
            proxies: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            ..TrustProxy::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let t = tp(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = t.resolve(ip("203.0.113.7"), &h);
        assert_eq!(
            c,
            Client {
                ip: ip("203.0.113.7"),
                proto: None,
                host: None
            }
        );
        // nothing trusted at all
        assert_eq!(
            TrustProxy::default().resolve(ip("10.0.0.1"), &h).ip,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn right_most_untrusted_hop_is_the_client() {
        let t = tp(&["10.0.0.0/8", "192.168.1.1/32"]);
        // the client forged "6.6.6.6"; the real client is what our proxies appended
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.4"),
            ("x-forwarded-for", "192.168.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mcp.example.com"),
        ]);
        let c = t.resolve(ip("10.1.2.3"), &h);
        assert_eq!(c.ip, ip("198.51.100.4"));
        assert_eq!(c.proto.as_deref(), Some("https"));
        assert_eq!(c.host.as_deref(), Some("mcp.example.com"));
        // all hops trusted: the left-most wins
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.8.8.8")]);
        assert_eq!(t.resolve(ip("10.1.2.3"), &h).ip, ip("10.9.9.9"));
        // garbage stops the walk at the last trusted hop
        let h = headers(&[("x-forwarded-for", "198.51.100.4, nonsense, 10.8.8.8")]);
        assert_eq!(t.resolve(ip("10.1.2.3"), &h).ip, ip("10.8.8.8"));
        // no header: the peer itself
        assert_eq!(
            t.resolve(ip("10.1.2.3"), &HeaderMap::new()).ip,
            ip("10.1.2.3")
        );
    }

    #[test]
    fn forwarded_and_real_ip_and_ports() {
        let mut t = tp(&["127.0.0.1/32"]);
        t.client_ip = HeaderName::from_static("forwarded");
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711""#,
        )]);
        assert_eq!(t.resolve(ip("127.0.0.1"), &h).ip, ip("2001:db8::1"));
        t.client_ip = HeaderName::from_static("x-real-ip");
        let h = headers(&[("x-real-ip", "203.0.113.9:5555")]);
        assert_eq!(t.resolve(ip("127.0.0.1"), &h).ip, ip("203.0.113.9"));
        // a bogus proto is not believed
        let h = headers(&[("x-forwarded-proto", "gopher")]);
        assert_eq!(
            tp(&["127.0.0.1/32"]).resolve(ip("127.0.0.1"), &h).proto,
            None
        );
    }
}
