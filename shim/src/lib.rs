//! containerd-shim-patina-v2: containerd's runtime v2 shim for patina (see docs/shim.md).
//! The library holds every part, so tests can speak the shim's protocol with its own
//! protobuf messages and ttrpc client.

pub mod cgroup;
pub mod errors;
pub mod events;
pub mod fifo;
pub mod io;
pub mod log;
pub mod mount;
pub mod oom;
pub mod options;
pub mod process;
pub mod proto;
pub mod reaper;
pub mod runtime;
pub mod service;
pub mod start;
pub mod stats;
pub mod ttrpc;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
