//! Fuzz target: resource URI normalization is idempotent, its normal form
//! carries nothing a server could resolve differently (no dot segment or
//! empty segment after one decoding, no escape of an unreserved character,
//! a separator or a control), case of scheme and host never matters, and it
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::uri::check_contract(data);
});
