//! The fuzz contract of `addr::trusted`: an oracle that panics when the code
//! beside it breaks a property (fuzz target and `tests/fuzz_corpus.rs`).
//! Built only for tests and with the `contracts` feature.

#![allow(clippy::panic)]

use super::*;

/// Builds a resolver, a peer and request headers from fuzz bytes. The first
/// line is `<client_ip header> <peer> <trusted CIDR or address>...`; every
/// other line is one `name: value` header (lines that are not a valid
/// header are skipped). Values may be any bytes a header allows.
pub(super) fn contract_input(data: &[u8]) -> (TrustProxy, IpAddr, HeaderMap) {
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
pub(super) fn oracle_node(s: &str) -> Option<IpAddr> {
    oracle_node_as_written(s).map(|ip| ip.to_canonical())
}

pub(super) fn oracle_node_as_written(s: &str) -> Option<IpAddr> {
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
pub(super) fn oracle_hop(element: &str, forwarded: bool) -> Option<IpAddr> {
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
pub(super) fn oracle_resolve(tp: &TrustProxy, peer: IpAddr, headers: &HeaderMap) -> Client {
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
