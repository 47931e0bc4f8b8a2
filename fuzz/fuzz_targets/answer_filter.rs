//! Fuzz target: upstream answers (a JSON message, or an SSE stream cut into
//! pieces) never show a hidden list item to any client reading, a rewrite
//! removes only list items, SSE output is LF-only canonical and a fixed
//! point, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::answer::check_contract(data);
});
