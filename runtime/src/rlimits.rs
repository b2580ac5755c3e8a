//! process.rlimits: set before the uid change, while raising a hard limit is still allowed.

use oci_spec::runtime::PosixRlimit;

use crate::error::{Error, Result};

/// Kernel resource number for an OCI rlimit name (RLIMIT_NOFILE, ...).
pub fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

pub fn apply(limits: &[PosixRlimit]) -> Result<()> {
    for limit in limits {
        let name = limit.typ().to_string();
        let res = resource(&name).ok_or_else(|| {
            Error::new(
                crate::Kind::InvalidConfig,
                format!("process.rlimits: unknown type {name:?}"),
            )
        })?;
        let value = libc::rlimit {
            rlim_cur: limit.soft(),
            rlim_max: limit.hard(),
        };
        // SAFETY: setrlimit reads a fully initialised struct we own.
        let rc = unsafe { libc::setrlimit(res, &value) };
        if rc != 0 {
            return Err(Error::os(
                nix::errno::Errno::last(),
                format!(
                    "process.rlimits: set {name} to soft {} hard {}",
                    limit.soft(),
                    limit.hard()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_oci_name_maps() {
        let limit: PosixRlimit =
            serde_json::from_str(r#"{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}"#).unwrap();
        assert_eq!(
            resource(&limit.typ().to_string()),
            Some(libc::RLIMIT_NOFILE)
        );
        assert_eq!(resource("RLIMIT_BOGUS"), None);
    }
}
