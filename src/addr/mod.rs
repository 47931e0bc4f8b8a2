//! The client's real address, learned without trusting the client: the
//! PROXY protocol v1/v2 parser (`proxy_protocol`, for connections from
//! trusted load balancers) and the forwarding-header rules
//! (`trusted`: `X-Forwarded-For` / `Forwarded` only from trusted proxies).
//! Pure parsing over bytes and addresses; the listener adapter in `edge`
//! calls it.

pub mod proxy_protocol;
pub mod trusted;
