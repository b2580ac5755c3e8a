//! Harness for the end-to-end conformance suite.
//!
//! The suite drives a runtime binary the way a container engine would and
//! asserts what the containerized process observes. The binary is
//! `$PATINA_RUNTIME`, else the `patina` binary of the same target dir as the
//! test executable (`target/<profile>/patina`), so:
//!
//! ```text
//! cargo build -p patina && cargo test -p integration          # patina
//! PATINA_RUNTIME=/usr/sbin/runc cargo test -p integration      # Debian's runc 1.1.5
//! ```
//!
//! Must run as root on Linux (the Debian packages in `apt-packages.txt`
//! installed). Where patina deliberately goes beyond runc, a test checks
//! [`is_runc`] and asserts runc's actual behaviour, marked `// beyond runc:`.
//!
//! * [`runtime`]: locating the runtime under test, running commands with a timeout.
//! * [`rootfs`]: a busybox root filesystem on tmpfs.
//! * [`spec`]: the base `config.json` and helpers to mutate it.
//! * [`container`]: the per-test fixture (bundle, `--root`, cleanup, leak check).
//! * [`procfs`]: mountinfo parsing and small /proc helpers.
//! * [`console`]: receiving a pty master over a console socket.
//! * [`rootless`]: a throwaway user with subordinate id ranges, and rootless configs.

pub mod console;
pub mod container;
pub mod containerd;
pub mod procfs;
pub mod rootfs;
pub mod rootless;
pub mod runtime;
pub mod security;
pub mod shim_client;
pub mod spec;

pub use container::{systemd_driver, Container, HostProcess};
pub use runtime::{is_runc, runtime_path, Output};
pub mod engines;
pub mod image;
