//! linux.personality: the execution domain (LINUX or LINUX32), set in init before the
//! exec so the program starts with it (and `uname -m` says i686 under LINUX32).

use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

use crate::bail;
use crate::error::{Error, Result};

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// Checked before anything is created: the spec defines no flags yet.
pub fn validate(p: &LinuxPersonality) -> Result<()> {
    if let Some(flag) = p.flags().iter().flatten().next() {
        bail!(
            InvalidConfig,
            "linux.personality.flags: {flag:?} is not a known personality flag"
        );
    }
    Ok(())
}

pub fn apply(p: &LinuxPersonality) -> Result<()> {
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    // SAFETY: personality takes a plain integer.
    let rc = unsafe { libc::personality(domain) };
    if rc == -1 {
        return Err(Error::os(
            nix::errno::Errno::last(),
            format!("linux.personality: set domain {}", p.domain()),
        ));
    }
    Ok(())
}
