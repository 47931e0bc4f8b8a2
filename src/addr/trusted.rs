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
/// digits) is not an address.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
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

/// Builds a resolver, a peer and request headers from fuzz bytes. The first
/// line is `<client_ip header> <peer> <trusted CIDR or address>...`; every
/// other line is one `name: value` header (lines that are not a valid
/// header are skipped). Values may be any bytes a header allows.
fn contract_input(data: &[u8]) -> (TrustProxy, IpAddr, HeaderMap) {
    let mut lines = data.split(|b| *b == b'\n');
    let first = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut words = first.split_ascii_whitespace();
    let mut tp = TrustProxy::default();
    if let Some(h) = words
        .next()
        .and_then(|w| HeaderName::from_bytes(w.as_bytes()).ok())
    {
        tp.client_ip = h;
    }
    let peer = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(IpAddr::from([10, 0, 0, 1]));
    tp.proxies = words
        .filter_map(|w| {
            w.parse::<IpNet>()
                .or_else(|_| w.parse::<IpAddr>().map(IpNet::from))
                .ok()
        })
        .take(16)
        .collect();
    let mut headers = HeaderMap::new();
    for line in lines.take(64) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii_start();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            http::HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    (tp, peer, headers)
}

/// The oracle's reading of one hop: an IP address, optionally with a port
/// (`192.0.2.1:80`), an IPv6 address only in brackets when it has one
/// (`[2001:db8::1]:80`, `[2001:db8::1]`); anything else is not a hop. An
/// IPv4-mapped IPv6 address is the IPv4 address.
fn oracle_node(s: &str) -> Option<IpAddr> {
    oracle_node_as_written(s).map(|ip| ip.to_canonical())
}

fn oracle_node_as_written(s: &str) -> Option<IpAddr> {
    let port = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    };
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ip = v6.parse::<std::net::Ipv6Addr>().ok()?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(port))
            .then_some(IpAddr::V6(ip));
    }
    let (v4, p) = s.split_once(':')?;
    let ip = v4.parse::<std::net::Ipv4Addr>().ok()?;
    port(p).then_some(IpAddr::V4(ip))
}

/// The oracle's hop for one list element of the client header: the element
/// itself, or for `Forwarded` its one `for=` parameter (a token or one
/// quoted string; RFC 7239 allows each parameter once per element).
fn oracle_hop(element: &str, forwarded: bool) -> Option<IpAddr> {
    let element = element.trim_matches([' ', '\t']);
    if !forwarded {
        return oracle_node(element);
    }
    let mut fors = element.split(';').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim_matches([' ', '\t'])
            .eq_ignore_ascii_case("for")
            .then(|| v.trim_matches([' ', '\t']))
    });
    let (Some(v), None) = (fors.next(), fors.next()) else {
        return None;
    };
    let v = match v.strip_prefix('"') {
        Some(q) => q.strip_suffix('"')?,
        None => v,
    };
    if v.contains('"') {
        return None;
    }
    oracle_node(v)
}

/// The oracle's answer, written from the rule rather than the walk: with `t`
/// trailing hops that are trusted proxies, the client is the hop just left
/// of them if it is an address, else the left-most of them (else the peer).
fn oracle_resolve(tp: &TrustProxy, peer: IpAddr, headers: &HeaderMap) -> Client {
    let trusted = |ip: &IpAddr| tp.proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return Client {
            ip: peer,
            proto: None,
            host: None,
        };
    }
    let forwarded = tp.client_ip == http::header::FORWARDED;
    let hops: Vec<Option<IpAddr>> = headers
        .get_all(&tp.client_ip)
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text.split(',').map(|e| oracle_hop(e, forwarded)).collect(),
            Err(_) => vec![None],
        })
        .collect();
    let t = hops
        .iter()
        .rev()
        .take_while(|h| h.as_ref().is_some_and(trusted))
        .count();
    let n = hops.len();
    let ip = match (n - t).checked_sub(1).map(|i| hops[i]) {
        Some(Some(untrusted)) => untrusted,
        _ if t > 0 => hops[n - t].unwrap_or(peer),
        _ => peer,
    };
    // the right-most element of the header's list (the last line's last)
    let last = |h: &HeaderName| {
        let line = headers.get_all(h).iter().next_back()?.to_str().ok()?;
        let v = line.rsplit(',').next()?.trim_matches([' ', '\t']);
        (!v.is_empty() && v.len() <= 255).then(|| v.to_string())
    };
    Client {
        ip,
        proto: last(&tp.protocol).filter(|p| p == "http" || p == "https"),
        host: last(&tp.host),
    }
}

/// The resolver's contract on any request, built from fuzz bytes (fuzz
/// target `trusted_proxy`, `cargo test` over `fuzz/corpus/trusted_proxy`;
/// input format in `contract_input`). Panics when broken:
///
/// - an untrusted peer's headers are never believed: the client is the
///   peer, with no scheme or host;
/// - otherwise the client is the peer or a hop of the client header, and it
///   is the right-most hop that is not a trusted proxy (an unparsable hop
///   ends the walk at the last trusted one; all trusted: the left-most),
///   as an oracle written from that rule finds; scheme and host are the
///   right-most element of their headers;
/// - how the lists are split over header lines does not matter: the same
///   elements joined into one line of each header give the same answer.
#[doc(hidden)]
pub fn check_contract(data: &[u8]) {
    let (tp, peer, headers) = contract_input(data);
    let got = tp.resolve(peer, &headers);
    if !tp.trusted(peer) {
        assert_eq!(
            got,
            Client {
                ip: peer,
                proto: None,
                host: None
            },
            "untrusted peer believed"
        );
    }
    let want = oracle_resolve(&tp, peer, &headers);
    assert_eq!(got, want, "resolver and oracle disagree");
    // one line per header instead of several
    let mut joined = HeaderMap::new();
    for name in headers.keys() {
        let lines: Option<Vec<&str>> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect();
        let Some(lines) = lines else {
            return;
        };
        match http::HeaderValue::from_str(&lines.join(", ")) {
            Ok(v) => joined.append(name.clone(), v),
            Err(_) => return,
        };
    }
    assert_eq!(
        tp.resolve(peer, &joined),
        got,
        "header lines joined change the answer"
    );
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
        assert_eq!(forwarded_for("for=\"192.0.2.1"), None);
        assert_eq!(forwarded_for("for=\"\"192.0.2.1\"\""), None);
        assert_eq!(
            forwarded_for("proto=https; For = \"[::1]:80\""),
            Some("[::1]:80")
        );
    }
}
