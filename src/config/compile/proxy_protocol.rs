//! The `proxy_protocol` section: which peers may send a PROXY protocol
//! header naming the client, and how long the header may take.

use std::time::Duration;

use super::errors::Errors;
use crate::config::raw;

pub(super) fn compile_proxy_protocol(
    p: &raw::ProxyProtocol,
    errs: &mut Errors,
) -> Option<crate::addr::proxy_protocol::ProxyProtocol> {
    if !p.enabled {
        return None;
    }
    if p.trusted_cidrs.is_empty() {
        errs.push(
            "proxy_protocol.trusted_cidrs",
            "required when enabled (who may name the client address)",
        );
    }
    let mut trusted = Vec::new();
    for (i, c) in p.trusted_cidrs.iter().enumerate() {
        match c
            .parse::<ipnet::IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(n) => trusted.push(n),
            Err(_) => errs.push(
                format!("proxy_protocol.trusted_cidrs[{i}]"),
                format!("\"{c}\" is not an address or CIDR"),
            ),
        }
    }
    if p.header_timeout_ms == 0 {
        errs.push("proxy_protocol.header_timeout_ms", "must be at least 1");
    }
    Some(crate::addr::proxy_protocol::ProxyProtocol {
        trusted,
        header_timeout: Duration::from_millis(p.header_timeout_ms),
    })
}
