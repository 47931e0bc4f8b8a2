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
                // a hop written as IPv4-mapped IPv6 (`::ffff:192.0.2.1`, as a
                // dual-stack proxy may log it) is the IPv4 address it is, as
                // for the peer itself
                chain.push(addr.and_then(parse_ip).map(|ip| ip.to_canonical()));
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
        // the right-most element: the last line's last (a proxy may add a
        // line of its own after the client's)
        let text = |h: &HeaderName| {
            headers
                .get_all(h)
                .iter()
                .next_back()
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

/// The `for=` value of one `Forwarded` element: a token or one quoted
/// string; an element with `for=` twice (RFC 7239: once per element) or an
/// unbalanced quote has none.
fn forwarded_for(element: &str) -> Option<&str> {
    let mut fors = element.split(';').filter_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
    });
    let (Some(v), None) = (fors.next(), fors.next()) else {
        return None;
    };
    let v = match v.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?,
        None => v,
    };
    (!v.contains('"')).then_some(v)
}

/// An address, with an optional port: `192.0.2.1`, `192.0.2.1:80`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:80`. Anything else
/// (brackets around IPv4, text after the bracket, a port that is not
/// digits, blanks inside a quoted `for=` value) is not an address.
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let port = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ip = v6.parse::<std::net::Ipv6Addr>().ok()?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(port))
            .then_some(IpAddr::V6(ip));
    }
    let (host, p) = s.rsplit_once(':')?;
    let ip = host.parse::<std::net::Ipv4Addr>().ok()?;
    port(p).then_some(IpAddr::V4(ip))
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
    fn ipv4_mapped_hops_are_ipv4() {
        let t = tp(&["10.0.0.0/8"]);
        // a dual-stack proxy wrote itself and the client as IPv4-mapped IPv6
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.5, ::ffff:10.0.0.2")]);
        let c = t.resolve(ip("10.0.0.1"), &h);
        assert_eq!(c.ip, ip("203.0.113.5"));
        assert!(c.ip.is_ipv4());
        let h = headers(&[("x-forwarded-for", "[::ffff:198.51.100.7]:443")]);
        assert_eq!(t.resolve(ip("10.0.0.1"), &h).ip, ip("198.51.100.7"));
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

    #[test]
    fn contract_holds_on_known_requests() {
        for input in [
            "x-forwarded-for 10.1.2.3 10.0.0.0/8 192.168.1.1/32\nx-forwarded-for: 6.6.6.6, 198.51.100.4\nx-forwarded-for: 192.168.1.1\nx-forwarded-proto: https\n",
            "x-forwarded-for 203.0.113.7 10.0.0.0/8\nx-forwarded-for: 1.2.3.4\nx-forwarded-proto: https\n",
            "forwarded 127.0.0.1 127.0.0.1/32\nforwarded: for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"\n",
            "x-real-ip 127.0.0.1 127.0.0.1\nx-real-ip: 203.0.113.9:5555\n",
            "x-forwarded-for 10.0.0.2 10.0.0.0/8\nx-forwarded-proto: http\nx-forwarded-proto: https\n",
            "x-forwarded-for 10.0.0.2 10.0.0.0/8\nx-forwarded-for: [2001:db8::1]junk, 10.0.0.3\n",
        ] {
            check_contract(input.as_bytes());
        }
    }

    #[test]
    fn scheme_and_host_are_the_right_most_over_all_lines() {
        // found by the fuzz contract's oracle: the first line's value was
        // used, so a client's own X-Forwarded-Proto won over a proxy's line
        let t = tp(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-host", "mcp.example.com"),
        ]);
        let c = t.resolve(ip("10.0.0.2"), &h);
        assert_eq!(c.proto.as_deref(), Some("https"));
        assert_eq!(c.host.as_deref(), Some("mcp.example.com"));
    }

    #[test]
    fn malformed_hops_are_not_addresses() {
        for ok in [
            "192.0.2.1",
            "192.0.2.1:80",
            "2001:db8::1",
            "[2001:db8::1]",
            "[2001:db8::1]:80",
        ] {
            assert!(parse_ip(ok).is_some(), "{ok}");
        }
        // found writing the fuzz contract's oracle: these were read as addresses
        for bad in [
            "[2001:db8::1",
            "[2001:db8::1]junk",
            "[2001:db8::1]:x",
            "[192.0.2.1]",
            "192.0.2.1:+80",
            "::ffff:192.0.2.1:80",
            "192.0.2.1:",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
        assert_eq!(forwarded_for("for=192.0.2.1;for=10.0.0.1"), None);
        // found by the trusted_proxy fuzzer: a blank inside the quotes was
        // trimmed away, so a malformed hop was believed
        assert_eq!(forwarded_for("for=\"8.5.0.0 \"").and_then(parse_ip), None);
        assert_eq!(
            forwarded_for("for= \"8.5.0.0\" ").and_then(parse_ip),
            Some(ip("8.5.0.0"))
        );
        assert_eq!(forwarded_for("for=\"192.0.2.1"), None);
        assert_eq!(forwarded_for("for=\"\"192.0.2.1\"\""), None);
        assert_eq!(
            forwarded_for("proto=https; For = \"[::1]:80\""),
            Some("[::1]:80")
        );
    }
}
