//! The edge: everything about a connection before the request. Trusted-proxy
//! forwarding headers (`trusted`), the PROXY protocol parser
//! (`proxy_protocol`), the listener front with the connection cap and PROXY
//! handling (`listener`), and TLS termination with reload and mTLS (`tls`).

pub mod listener;
pub mod proxy_protocol;
pub mod tls;
pub mod trusted;
