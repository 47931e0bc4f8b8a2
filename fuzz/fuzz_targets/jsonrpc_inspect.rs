//! Fuzz target: the JSON-RPC envelope inspector agrees with a full parse of
//! the same body (kind, method, id, params.name/uri, _meta version; no
//! duplicate envelope keys; every refusal justified) and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcp_edge::jsonrpc::check_contract(data);
});
