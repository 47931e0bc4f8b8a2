//! Fuzz target: the configuration loader (`mcp-edge validate`'s path),
//! hermetic: never panics, refusals name their paths, and the same document
//! (as written, compiled twice, or re-serialised) always gets the same verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::config::check_contract(data);
});
