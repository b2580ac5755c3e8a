//! Protection of the host's `patina` binary (CVE-2019-5736 class).
//!
//! Until init execs the user program it *is* patina: `/proc/<init>/exe` (and, for `run`,
//! `/proc/<runtime>/exe` in a container sharing the host pid namespace) lead to the host
//! binary. The kernel already refuses to open a running executable for writing
//! (ETXTBSY); the attack is to open it read-only or O_PATH while patina runs and reopen
//! it for writing through `/proc/self/fd/N` once it no longer does. Opening another
//! process's `exe` needs ptrace read access to it, so a non-dumpable process closes
//! that door for every container process without CAP_SYS_PTRACE (and a container in a
//! user namespace cannot write a host-root-owned binary anyway). It costs one prctl,
//! not a copy of the binary per call. The kernel makes the program dumpable again at
//! its execve, so the container sees its own processes as usual.
//!
//! Called by `create`/`run` first thing (init inherits it through clone) and by init
//! itself, so an `exec` that clones a process into the container can do the same.

use crate::error::{Context, Result};

/// Make this process (and its clones until they exec) non-dumpable.
pub fn protect() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).context("make the runtime non-dumpable (PR_SET_DUMPABLE)")
}
