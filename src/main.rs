//! The `mcp-edge` binary: everything lives in the library; see `cli`.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // the launcher of stdio server processes (tunnel::processes): nothing
    // else of the gateway runs in it
    if args.get(1).map(String::as_str) == Some(mcp_edge::tunnel::processes::LAUNCHER_ARG) {
        std::process::exit(mcp_edge::tunnel::processes::exec_guarded(&args[2..]));
    }
    std::process::exit(mcp_edge::cli::run());
}
