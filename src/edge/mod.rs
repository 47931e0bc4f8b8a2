//! The edge: learning the real client from what arrives at the listener.
//! Today: trusted-proxy forwarding headers (`trusted`). PROXY protocol and
//! TLS settings join here with the rest of issue 5.

pub mod listener;
pub mod proxy_protocol;
pub mod trusted;
