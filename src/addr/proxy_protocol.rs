//! HAProxy PROXY protocol v1 and v2 header parsing (the header a trusted L4
//! load balancer puts in front of a connection to name the real client),
//! following the HAProxy specification: v1 is one text line of at most 107
//! bytes ending in CRLF with a strict grammar; v2 is the 12-byte signature,
//! version 2, LOCAL/PROXY, address family and length, then bounded TLVs.
//! Incremental: feed the bytes received so far. Pingora-free.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

/// PROXY protocol settings.
#[derive(Debug, Clone)]
pub struct ProxyProtocol {
    /// Peers allowed (and required) to send a header.
    pub trusted: Vec<IpNet>,
    /// Time allowed for the header.
    pub header_timeout: Duration,
}

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included.
pub const V1_MAX: usize = 107;
/// Longest v2 header accepted (16-byte prefix + addresses + TLVs).
pub const V2_MAX: usize = 16 + 4096;

/// Result of parsing the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Valid so far; at least this many bytes are needed in total.
    Incomplete(usize),
    /// A complete header of `len` bytes. `source`/`destination` are `None` for
    /// v1 `UNKNOWN`, v2 `LOCAL` and non-IP families: use the real peer then.
    Header {
        /// Header length (the application data starts after it).
        len: usize,
        /// The client.
        source: Option<SocketAddr>,
        /// The address the client connected to.
        destination: Option<SocketAddr>,
    },
    /// Not a valid PROXY header.
    Invalid(&'static str),
}

/// Whether `buf` (possibly short) could be the start of a PROXY header.
pub fn looks_like_header(buf: &[u8]) -> bool {
    let n = buf.len().min(12);
    buf[..n] == V2_SIGNATURE[..n] || buf[..buf.len().min(6)] == b"PROXY "[..buf.len().min(6)]
}

/// Parses a PROXY header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Incomplete(8);
    }
    let n = buf.len().min(12);
    if buf[..n] == V2_SIGNATURE[..n] {
        return if buf.len() < 16 {
            Parsed::Incomplete(16)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if buf.len() < 6 {
            Parsed::Incomplete(8)
        } else {
            parse_v1(buf)
        };
    }
    Parsed::Invalid("not a PROXY protocol header")
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let window = &buf[..buf.len().min(V1_MAX)];
    // only printable ASCII before the CR: a bare LF or a control byte is invalid
    if let Some(bad) = window
        .iter()
        .position(|b| *b != b'\r' && !(0x20..0x7f).contains(b))
    {
        if !window[..bad].contains(&b'\r') {
            return Parsed::Invalid("v1 header: control character before CRLF");
        }
    }
    let Some(cr) = window.iter().position(|b| *b == b'\r') else {
        return if buf.len() >= V1_MAX {
            Parsed::Invalid("v1 header longer than 107 bytes")
        } else {
            Parsed::Incomplete(buf.len() + 1)
        };
    };
    if cr + 2 > V1_MAX {
        // the LF would be byte 108
        return Parsed::Invalid("v1 header longer than 107 bytes");
    }
    match buf.get(cr + 1) {
        None => return Parsed::Incomplete(cr + 2),
        Some(b'\n') => {}
        Some(_) => return Parsed::Invalid("v1 header: CR not followed by LF"),
    }
    let len = cr + 2;
    let Ok(line) = std::str::from_utf8(&buf[6..cr]) else {
        return Parsed::Invalid("v1 header is not ASCII");
    };
    if line.starts_with("UNKNOWN") {
        // "PROXY UNKNOWN" may be followed by anything up to CRLF
        if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
            return Parsed::Header {
                len,
                source: None,
                destination: None,
            };
        }
        return Parsed::Invalid("v1 header: bad UNKNOWN line");
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [proto, src, dst, sport, dport] = parts[..] else {
        return Parsed::Invalid("v1 header: expected 5 fields separated by single spaces");
    };
    let (Some(sport), Some(dport)) = (port(sport), port(dport)) else {
        return Parsed::Invalid("v1 header: bad port");
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => match (src.parse::<Ipv4Addr>(), dst.parse::<Ipv4Addr>()) {
            (Ok(s), Ok(d)) => (s.into(), d.into()),
            _ => return Parsed::Invalid("v1 header: bad IPv4 address"),
        },
        "TCP6" => match (src.parse::<Ipv6Addr>(), dst.parse::<Ipv6Addr>()) {
            (Ok(s), Ok(d)) => (s.into(), d.into()),
            _ => return Parsed::Invalid("v1 header: bad IPv6 address"),
        },
        _ => return Parsed::Invalid("v1 header: protocol must be TCP4, TCP6 or UNKNOWN"),
    };
    Parsed::Header {
        len,
        source: Some(SocketAddr::new(src, sport)),
        destination: Some(SocketAddr::new(dst, dport)),
    }
}

/// A decimal port, 0–65535, no sign and no leading zeros.
fn port(s: &str) -> Option<u16> {
    if s.is_empty()
        || s.len() > 5
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

fn parse_v2(buf: &[u8]) -> Parsed {
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid("v2 header: version must be 2");
    }
    let command = ver_cmd & 0x0f;
    if command > 1 {
        return Parsed::Invalid("v2 header: command must be LOCAL or PROXY");
    }
    let fam = buf[13];
    let body_len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let len = 16 + body_len;
    if len > V2_MAX {
        return Parsed::Invalid("v2 header too long");
    }
    if buf.len() < len {
        return Parsed::Incomplete(len);
    }
    let body = &buf[16..len];
    let (addr_len, addrs) = match fam {
        0x00 => (0, None),
        0x11 | 0x12 => {
            if body.len() < 12 {
                return Parsed::Invalid("v2 header: IPv4 addresses truncated");
            }
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            let sp = u16::from_be_bytes([body[8], body[9]]);
            let dp = u16::from_be_bytes([body[10], body[11]]);
            (
                12,
                Some((
                    SocketAddr::new(src.into(), sp),
                    SocketAddr::new(dst.into(), dp),
                )),
            )
        }
        0x21 | 0x22 => {
            if body.len() < 36 {
                return Parsed::Invalid("v2 header: IPv6 addresses truncated");
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&body[0..16]);
            d.copy_from_slice(&body[16..32]);
            let sp = u16::from_be_bytes([body[32], body[33]]);
            let dp = u16::from_be_bytes([body[34], body[35]]);
            (
                36,
                Some((
                    SocketAddr::new(Ipv6Addr::from(s).into(), sp),
                    SocketAddr::new(Ipv6Addr::from(d).into(), dp),
                )),
            )
        }
        0x31 | 0x32 => {
            if body.len() < 216 {
                return Parsed::Invalid("v2 header: UNIX addresses truncated");
            }
            (216, None)
        }
        _ => return Parsed::Invalid("v2 header: unknown address family or transport"),
    };
    // TLVs must tile the rest exactly
    let mut rest = &body[addr_len..];
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Parsed::Invalid("v2 header: truncated TLV");
        }
        let tlv_len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        if rest.len() < 3 + tlv_len {
            return Parsed::Invalid("v2 header: TLV runs past the header");
        }
        rest = &rest[3 + tlv_len..];
    }
    match addrs {
        // LOCAL (the balancer's own connection, e.g. a health check) and
        // non-IP families: keep the real peer
        Some((s, d)) if command == 1 => Parsed::Header {
            len,
            source: Some(s),
            destination: Some(d),
        },
        _ => Parsed::Header {
            len,
            source: None,
            destination: None,
        },
    }
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

    fn header(src: &str) -> (usize, Option<SocketAddr>) {
        match parse(src.as_bytes()) {
            Parsed::Header { len, source, .. } => (len, source),
            other => panic!("{src:?}: {other:?}"),
        }
    }

    #[test]
    fn v1_length_limit_is_exactly_107_bytes_with_crlf() {
        let line = |total: usize| {
            let mut v = b"PROXY UNKNOWN ".to_vec();
            v.resize(total - 2, b'x');
            v.extend_from_slice(b"\r\n");
            v.extend_from_slice(b"GET / HTTP/1.1\r\n");
            v
        };
        assert!(matches!(parse(&line(107)), Parsed::Header { len: 107, .. }));
        // found by the fuzzer: CR at byte 107, LF at 108 was "Incomplete"
        assert!(matches!(parse(&line(108)), Parsed::Invalid(_)));
        for total in [107, 108, 109] {
            check_contract(&line(total));
        }
    }

    #[test]
    fn v1_valid() {
        let h = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let (len, src) = header(h);
        assert_eq!(&h[len..], "GET / HTTP/1.1\r\n");
        assert_eq!(src, Some("192.0.2.10:56324".parse().unwrap()));
        let (_, src) = header("PROXY TCP6 2001:db8::1 2001:db8::2 4711 80\r\n");
        assert_eq!(src, Some("[2001:db8::1]:4711".parse().unwrap()));
        assert_eq!(header("PROXY UNKNOWN\r\n").1, None);
        assert_eq!(header("PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n").1, None);
        // the longest legal line is 107 bytes
        let longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(longest.len(), 104);
        assert_eq!(header(longest).0, 104);
    }

    #[test]
    fn v1_invalid() {
        for bad in [
            "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\n",
            "PROXY TCP4 192.0.2.10  198.51.100.1 56324 443\r\n",
            "PROXY TCP4 192.0.2.10 198.51.100.1 056324 443\r\n",
            "PROXY TCP4 192.0.2.10 198.51.100.1 65536 443\r\n",
            "PROXY TCP4 192.0.2.010 198.51.100.1 1 443\r\n",
            "PROXY TCP4 2001:db8::1 198.51.100.1 1 443\r\n",
            "PROXY TCP6 192.0.2.1 2001:db8::2 1 443\r\n",
            "PROXY UDP4 192.0.2.10 198.51.100.1 1 2\r\n",
            "PROXY TCP4 192.0.2.10 198.51.100.1 1\r\n",
            "PROXY TCP4 192.0.2.10 198.51.100.1 1 2 3\r\n",
            "PROXY UNKNOWNX\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            "GET / HTTP/1.1\r\n",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Parsed::Invalid(_)),
                "{bad:?} accepted"
            );
        }
        let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(120));
        assert!(matches!(parse(long.as_bytes()), Parsed::Invalid(_)));
    }

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn v2_valid() {
        let mut body = vec![192, 0, 2, 10, 198, 51, 100, 1];
        body.extend_from_slice(&56324u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        // one TLV (PP2_TYPE_AUTHORITY "x")
        body.extend_from_slice(&[0x02, 0x00, 0x01, b'x']);
        let h = v2(1, 0x11, &body);
        match parse(&h) {
            Parsed::Header {
                len,
                source,
                destination,
            } => {
                assert_eq!(len, h.len());
                assert_eq!(source, Some("192.0.2.10:56324".parse().unwrap()));
                assert_eq!(destination, Some("198.51.100.1:443".parse().unwrap()));
            }
            other => panic!("{other:?}"),
        }
        let mut body6 = vec![0u8; 36];
        body6[15] = 1;
        body6[31] = 2;
        body6[32..34].copy_from_slice(&4711u16.to_be_bytes());
        match parse(&v2(1, 0x21, &body6)) {
            Parsed::Header { source, .. } => {
                assert_eq!(source, Some("[::1]:4711".parse().unwrap()))
            }
            other => panic!("{other:?}"),
        }
        // LOCAL (health check of the balancer): keep the real peer
        assert!(matches!(
            parse(&v2(0, 0x11, &body)),
            Parsed::Header { source: None, .. }
        ));
        assert!(matches!(
            parse(&v2(1, 0x00, &[])),
            Parsed::Header { source: None, .. }
        ));
        assert!(matches!(
            parse(&v2(1, 0x31, &[0u8; 216])),
            Parsed::Header { source: None, .. }
        ));
    }

    #[test]
    fn v2_invalid() {
        let ok_body = [192u8, 0, 2, 10, 198, 51, 100, 1, 0, 80, 0, 80];
        let mut bad_version = v2(1, 0x11, &ok_body);
        bad_version[12] = 0x11;
        let mut bad_cmd = v2(1, 0x11, &ok_body);
        bad_cmd[12] = 0x22;
        let mut truncated_tlv = ok_body.to_vec();
        truncated_tlv.extend_from_slice(&[0x02, 0x00, 0x05, b'x']);
        for (name, h) in [
            ("version", bad_version),
            ("command", bad_cmd),
            ("family", v2(1, 0x41, &ok_body)),
            ("short ipv4", v2(1, 0x11, &ok_body[..8])),
            ("short ipv6", v2(1, 0x21, &[0u8; 20])),
            ("tlv", v2(1, 0x11, &truncated_tlv)),
            (
                "tlv header",
                v2(1, 0x11, &[&ok_body[..], &[0x02, 0x00]].concat()),
            ),
        ] {
            assert!(matches!(parse(&h), Parsed::Invalid(_)), "{name} accepted");
        }
    }

    #[test]
    fn every_split_point_is_incomplete_then_complete() {
        let v1 = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n".to_vec();
        let mut body = vec![192, 0, 2, 10, 198, 51, 100, 1, 0, 80, 0, 80];
        body.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
        let v2h = v2(1, 0x11, &body);
        for h in [v1, v2h] {
            for cut in 0..h.len() {
                match parse(&h[..cut]) {
                    Parsed::Incomplete(need) => {
                        assert!(need > cut && need <= h.len(), "cut {cut}: need {need}")
                    }
                    other => panic!("cut {cut}: {other:?}"),
                }
                assert!(looks_like_header(&h[..cut]));
            }
            assert!(matches!(parse(&h), Parsed::Header { .. }));
        }
        assert!(!looks_like_header(b"GET /"));
    }

    #[test]
    fn never_panics_on_noise() {
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut buf = vec![];
            let n = (seed % 64) as usize;
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                buf.push(seed as u8);
            }
            if seed % 3 == 0 {
                buf.splice(0..0, V2_SIGNATURE);
            } else if seed % 3 == 1 {
                buf.splice(0..0, *b"PROXY ");
            }
            let _ = parse(&buf);
        }
    }
}
