//! Fuzz target: session tokens. Any presented token opens without panicking
//! and never with a key nobody sealed with; a sealed owner opens to itself;
//! tampered tokens (edits driven by the input) are refused.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::session::check_contract(data);
});
