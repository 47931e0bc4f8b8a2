//! The `mcp-edge` binary: everything lives in the library; see `cli`.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(mcp_edge::cli::run());
}
