//! The edge: the Pingora adapters for a connection before the request. The
//! listener front with the connection cap and PROXY handling (`listener`,
//! parsing in `crate::addr`), and TLS termination with reload and mTLS
//! (`tls`).

pub mod listener;
pub mod tls;
