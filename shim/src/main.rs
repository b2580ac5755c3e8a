//! containerd-shim-patina-v2: containerd's runtime v2 shim for patina (see docs/shim.md).

mod events;
mod io;
mod log;
mod mount;
mod options;
mod process;
mod proto;
mod reaper;
mod runtime;
mod service;
mod start;
mod stats;
mod ttrpc;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    std::process::exit(start::main());
}
