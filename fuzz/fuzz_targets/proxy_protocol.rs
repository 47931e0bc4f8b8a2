//! Fuzz target: the PROXY protocol v1/v2 parser never panics and keeps its
//! contract (split invariance, bounds) on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::addr::proxy_protocol::check_contract(data);
});
