//! patina: an OCI runtime-spec compliant, runc-compatible container runtime.
//!
//! The library holds every operation (`container::*`), so the CLI, the shim and the
//! tests call the same code. See docs/architecture.md for the processes and pipes.

pub mod capabilities;
pub mod cgroups;
pub mod checkpoint;
pub mod container;
pub mod dbus;
pub mod default_spec;
pub mod error;
pub mod exe_protect;
pub mod fds;
pub mod features;
pub mod hooks;
pub mod logging;
pub mod lsm;
pub mod mempolicy;
pub mod mount_api;
pub mod namespaces;
pub mod netdev;
pub mod personality;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod rootless;
pub mod scheduler;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sysctl;
pub mod terminal;

pub use error::{Error, Kind, Result};
