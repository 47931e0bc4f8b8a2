//! Fuzz target: the federation's attacker-facing parsers and rewrites
//! (byte-preserving JSON edits, namespaced request ids, composite cursors,
//! URI templates, exposed names, merged lists, upgraded results) keep
//! their contract and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::federation::check_contract(data);
});
