//! Fuzz target: the trusted-proxy resolver (X-Forwarded-For / Forwarded /
//! X-Real-IP) never believes an untrusted peer, answers the right-most
//! untrusted hop as an independent oracle does, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::addr::trusted::check_contract(data);
});
