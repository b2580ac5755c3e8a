//! The rootfs mounts containerd sends with Create (an overlay of the snapshot, or a bind
//! of it), mounted on `<bundle>/rootfs`, and unmounted on delete. Options are split into
//! flags and data by the runtime library's parser, the one config.json mounts use.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use patina::rootfs::mounts::MountPlan;

use crate::proto::Mount;

pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<(), String> {
    for (i, m) in mounts.iter().enumerate() {
        let plan = MountPlan::from_options(&m.options)
            .map_err(|e| format!("rootfs mount {i} options: {e}"))?;
        let mut flags = plan.flags;
        let kind = m.kind.as_str();
        if plan.bind.is_some() || kind == "bind" || kind == "rbind" {
            flags |= MsFlags::MS_BIND;
            if plan.bind == Some(true) || kind == "rbind" {
                flags |= MsFlags::MS_REC;
            }
        }
        let fstype = (!flags.contains(MsFlags::MS_BIND)).then_some(kind);
        let data = (!plan.data.is_empty()).then_some(plan.data.as_str());
        let bind = flags.contains(MsFlags::MS_BIND);
        let first = if bind {
            flags & !MsFlags::MS_RDONLY
        } else {
            flags
        };
        mount(Some(m.source.as_str()), target, fstype, first, data).map_err(|e| {
            format!(
                "mount rootfs {kind} {} on {}: {e}",
                m.source,
                target.display()
            )
        })?;
        // A read-only bind takes a second, remounting call.
        if bind && flags.contains(MsFlags::MS_RDONLY) {
            let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
                .map_err(|e| format!("remount rootfs read-only {}: {e}", target.display()))?;
        }
        for p in &plan.propagation {
            mount(None::<&str>, target, None::<&str>, *p, None::<&str>)
                .map_err(|e| format!("rootfs propagation on {}: {e}", target.display()))?;
        }
    }
    Ok(())
}

/// Unmount everything on `target` (stacked mounts included); absent is fine.
pub fn unmount_all(target: &Path) -> Result<(), String> {
    for _ in 0..64 {
        match umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(format!("unmount {}: {e}", target.display())),
        }
    }
    Err(format!(
        "unmount {}: still mounted after 64 unmounts",
        target.display()
    ))
}
