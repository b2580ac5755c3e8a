//! Rootfs setup logic against the recording fake of `syscalls.rs`: which mount(2) calls
//! each config makes, in which order, with which flags, where they land, and the
//! fallbacks; no root needed (paths resolve for real, in a scratch directory).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::sys::statvfs::FsFlags;
use oci_spec::runtime::{Mount, Spec};
use serde_json::json;

use super::mounts::{self, MountContext};
use super::syscalls::fake::{Call, Recorder};

/// A scratch dir with `root/` (the rootfs) and whatever a test puts beside it.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("patina-setup-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root")).unwrap();
        Scratch(dir)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
    fn root_fd(&self) -> OwnedFd {
        open(
            &self.root(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mount_entry(value: serde_json::Value) -> Mount {
    serde_json::from_value(value).unwrap()
}

/// Applies `m` as entry 0 with `sys`; the calls it made.
fn apply(s: &Scratch, sys: &Recorder, m: &Mount) -> crate::Result<Vec<Call>> {
    apply_with_trees(s, sys, m, &[])
}

fn apply_with_trees(
    s: &Scratch,
    sys: &Recorder,
    m: &Mount,
    idmapped: &[Option<OwnedFd>],
) -> crate::Result<Vec<Call>> {
    let ctx = MountContext {
        sys,
        bundle: &s.0,
        own_cgroupns: false,
        cgroup: None,
        idmapped,
        bind_sources: &[],
    };
    mounts::apply(s.root_fd().as_fd(), &ctx, 0, m)?;
    Ok(sys.calls.borrow().clone())
}

fn call(source: Option<&Path>, target: PathBuf, flags: MsFlags) -> Call {
    Call {
        source: source.map(Path::to_path_buf),
        target,
        fstype: None,
        flags,
        data: None,
    }
}

#[test]
fn read_only_recursive_bind_is_bind_then_remount_then_propagation() {
    let s = Scratch::new("rbind");
    let src = s.0.join("src");
    std::fs::create_dir(&src).unwrap();
    let sys = Recorder::default();
    let m = mount_entry(
        json!({"destination": "/data/in", "source": src, "options": ["rbind", "ro", "nosuid", "rprivate"]}),
    );
    let calls = apply(&s, &sys, &m).unwrap();
    let target = s.root().join("data/in");
    assert!(target.is_dir(), "the destination is made inside the rootfs");
    let rec = MsFlags::MS_REC;
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
    assert_eq!(
        calls,
        [
            call(Some(&src), target.clone(), MsFlags::MS_BIND | rec),
            call(None, target.clone(), remount | rec),
            call(None, target, MsFlags::MS_PRIVATE | rec),
        ]
    );
}

#[test]
fn remount_refused_by_locked_flags_is_retried_with_them() {
    // A mount from a less privileged user namespace keeps nosuid/nodev: the remount asks
    // for them too (statvfs tells which), or the kernel says EPERM.
    let s = Scratch::new("locked");
    let src = s.0.join("src");
    std::fs::create_dir(&src).unwrap();
    let sys = Recorder {
        errors: vec![None, Some(Errno::EPERM)].into(),
        statvfs: FsFlags::ST_NOSUID | FsFlags::ST_NODEV,
        ..Recorder::default()
    };
    let m = mount_entry(json!({"destination": "/ro", "source": src, "options": ["bind", "ro"]}));
    let calls = apply(&s, &sys, &m).unwrap();
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let locked = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[1].flags, remount);
    assert_eq!(calls[2].flags, remount | locked);
}

#[test]
fn a_failing_mount_names_the_entry_and_the_errno() {
    let s = Scratch::new("fails");
    let sys = Recorder {
        errors: vec![Some(Errno::EACCES)].into(),
        ..Recorder::default()
    };
    let m = mount_entry(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs"}));
    let err = apply(&s, &sys, &m).unwrap_err().to_string();
    assert_eq!(
        err,
        "mounts[0]: mount \"tmpfs\" (tmpfs) on \"/t\": mount: EACCES (Permission denied)"
    );
}

#[test]
fn bind_of_a_file_makes_a_file_to_mount_on() {
    let s = Scratch::new("file");
    let src = s.0.join("resolv.conf");
    std::fs::write(&src, "nameserver 127.0.0.1\n").unwrap();
    let sys = Recorder::default();
    let m =
        mount_entry(json!({"destination": "/etc/resolv.conf", "source": src, "options": ["bind"]}));
    let calls = apply(&s, &sys, &m).unwrap();
    assert!(s.root().join("etc/resolv.conf").is_file());
    assert_eq!(
        calls,
        [call(
            Some(&src),
            s.root().join("etc/resolv.conf"),
            MsFlags::MS_BIND
        )]
    );
}

#[test]
fn destinations_through_image_symlinks_land_inside_the_rootfs() {
    // `/evil -> <scratch>/outside` and `/up -> ../../..` in the image: both resolve
    // inside the rootfs, and nothing is made outside it.
    let s = Scratch::new("symlinks");
    let outside = s.0.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, s.root().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../..", s.root().join("up")).unwrap();
    for (dest, inside) in [
        (
            "/evil/x",
            s.root().join(outside.strip_prefix("/").unwrap()).join("x"),
        ),
        ("/up/y", s.root().join("y")),
    ] {
        let sys = Recorder::default();
        let m = mount_entry(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}));
        let calls = apply(&s, &sys, &m).unwrap();
        assert_eq!(calls[0].target, inside, "{dest}");
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn filesystem_mount_gets_its_data_and_then_its_propagation() {
    let s = Scratch::new("tmpfs");
    let sys = Recorder::default();
    let m = mount_entry(
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "size=1k", "mode=755", "shared"]}),
    );
    let calls = apply(&s, &sys, &m).unwrap();
    let target = s.root().join("t");
    let first = Call {
        source: Some(PathBuf::from("tmpfs")),
        target: target.clone(),
        fstype: Some("tmpfs".into()),
        flags: MsFlags::MS_NOSUID,
        data: Some("size=1k,mode=755".into()),
    };
    assert_eq!(calls, [first, call(None, target, MsFlags::MS_SHARED)]);
}

#[test]
fn proc_is_never_mounted_through_a_symlink() {
    let s = Scratch::new("proc");
    std::os::unix::fs::symlink("/", s.root().join("proc")).unwrap();
    let sys = Recorder::default();
    let m = mount_entry(json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    let err = apply(&s, &sys, &m).unwrap_err().to_string();
    assert!(err.contains("ordinary directory"), "{err}");
    assert!(sys.calls.borrow().is_empty());
}

#[test]
fn readonly_and_masked_paths() {
    // (after pivot_root these are the container's paths; here, scratch paths)
    let s = Scratch::new("finalize");
    let (dir, file, missing) = (s.0.join("dir"), s.0.join("file"), s.0.join("missing"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(&file, "").unwrap();
    let spec: Spec = serde_json::from_value(json!({
        "ociVersion": "1.0.2",
        "linux": { "readonlyPaths": [missing, dir], "maskedPaths": [file, dir, missing] }
    }))
    .unwrap();
    // The missing read-only path: its bind fails with ENOENT and is skipped.
    let sys = Recorder {
        errors: vec![Some(Errno::ENOENT)].into(),
        ..Recorder::default()
    };
    super::finalize(&sys, &spec).unwrap();
    let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
    let ro = rbind | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let tmpfs = Call {
        source: Some(PathBuf::from("tmpfs")),
        target: dir.clone(),
        fstype: Some("tmpfs".into()),
        flags: MsFlags::MS_RDONLY,
        data: Some("size=0k".into()),
    };
    let null = Path::new("/dev/null");
    assert_eq!(
        *sys.calls.borrow(),
        [
            call(Some(&missing), missing.clone(), rbind),
            call(Some(&dir), dir.clone(), rbind),
            call(None, dir.clone(), ro),
            call(Some(null), file, MsFlags::MS_BIND),
            tmpfs,
        ]
    );
}

#[test]
fn idmapped_tree_is_attached_where_a_bind_would_go_then_remounted() {
    // The runtime made the tree (idmap.rs); init attaches it and applies the flags.
    let s = Scratch::new("idmapped");
    let src = s.0.join("src");
    std::fs::create_dir(&src).unwrap();
    let tree = open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    let sys = Recorder::default();
    let m = mount_entry(json!({"destination": "/vol", "source": src, "options": ["rbind", "ro"]}));
    let calls = apply_with_trees(&s, &sys, &m, &[Some(tree)]).unwrap();
    let target = s.root().join("vol");
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
    assert_eq!(
        calls,
        [
            call(Some(Path::new("<tree>")), target.clone(), MsFlags::empty()),
            call(None, target, remount),
        ]
    );
}

/// The calls `prepare` makes for a config with `linux` and `mounts`, in a scratch rootfs.
fn prepare(s: &Scratch, linux: serde_json::Value, mounts: serde_json::Value) -> Vec<Call> {
    let spec: Spec = serde_json::from_value(json!({
        "ociVersion": "1.0.2", "root": {"path": s.root()}, "linux": linux, "mounts": mounts
    }))
    .unwrap();
    let sys = Recorder::default();
    let ctx = MountContext {
        sys: &sys,
        bundle: &s.0,
        own_cgroupns: false,
        cgroup: None,
        idmapped: &[],
        bind_sources: &[],
    };
    super::prepare(&spec, &s.root(), false, true, &ctx).unwrap();
    let calls = sys.calls.borrow().clone();
    calls
}

/// Where the mount holding `dir` is mounted (the mount point of its mount).
fn mount_point_holding(dir: &Path) -> PathBuf {
    let fd = open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    let root = super::propagation::mount_root_of(fd).unwrap();
    std::fs::read_link(super::paths::fd_path(&root)).unwrap()
}

#[test]
fn rshared_root_stays_in_the_host_peer_groups_and_binds_onto_a_private_parent() {
    // Kubernetes Bidirectional volumes: `/` is made rshared (not rslave first, which would
    // leave the volume a mere slave of the host's peer group), the mount holding the
    // rootfs private (so the rootfs bound onto itself reaches no other namespace), then
    // the binds, each with its own propagation after it.
    let s = Scratch::new("rshared");
    let (dev, vol) = (s.0.join("dev"), s.0.join("vol"));
    std::fs::create_dir(&dev).unwrap();
    std::fs::create_dir(&vol).unwrap();
    let calls = prepare(
        &s,
        json!({"rootfsPropagation": "rshared"}),
        json!([
            {"destination": "/dev", "source": dev, "options": ["rbind"]},
            {"destination": "/vol", "source": vol, "options": ["rbind", "rshared"]},
        ]),
    );
    let rec = MsFlags::MS_REC;
    let rbind = MsFlags::MS_BIND | rec;
    let root = s.root();
    assert_eq!(
        calls,
        [
            call(None, PathBuf::from("/"), MsFlags::MS_SHARED | rec),
            call(None, mount_point_holding(&root), MsFlags::MS_PRIVATE),
            call(Some(&root), root.clone(), rbind),
            call(Some(&dev), root.join("dev"), rbind),
            call(Some(&vol), root.join("vol"), rbind),
            call(None, root.join("vol"), MsFlags::MS_SHARED | rec),
        ]
    );
}

#[test]
fn root_propagation_defaults_to_rslave_before_anything_is_mounted() {
    let s = Scratch::new("rslave");
    let dev = s.0.join("dev");
    std::fs::create_dir(&dev).unwrap();
    for (linux, flags) in [
        (json!({}), MsFlags::MS_SLAVE),
        (json!({"rootfsPropagation": "private"}), MsFlags::MS_PRIVATE),
        (json!({"rootfsPropagation": "rslave"}), MsFlags::MS_SLAVE),
    ] {
        let mounts = json!([{"destination": "/dev", "source": dev, "options": ["rbind"]}]);
        let calls = prepare(&s, linux.clone(), mounts);
        assert_eq!(
            calls[0],
            call(None, PathBuf::from("/"), flags | MsFlags::MS_REC),
            "{linux}"
        );
        assert_eq!(calls[1].flags, MsFlags::MS_PRIVATE, "{linux}");
    }
}

#[test]
fn recursive_options_set_attributes_on_the_whole_tree_after_the_bind() {
    let s = Scratch::new("rro");
    let src = s.0.join("src");
    std::fs::create_dir(&src).unwrap();
    let sys = Recorder::default();
    let m = mount_entry(
        json!({"destination": "/v", "source": src, "options": ["rbind", "rro", "rnosuid", "rprivate"]}),
    );
    let calls = apply(&s, &sys, &m).unwrap();
    let target = s.root().join("v");
    let rec = MsFlags::MS_REC;
    let setattr = Call {
        source: Some(PathBuf::from("<setattr>")),
        target: target.clone(),
        fstype: None,
        flags: MsFlags::empty(),
        data: Some("set=0x3,clear=0x0".into()),
    };
    assert_eq!(
        calls,
        [
            call(Some(&src), target.clone(), MsFlags::MS_BIND | rec),
            call(None, target, MsFlags::MS_PRIVATE | rec),
            setattr,
        ]
    );
}

#[test]
fn an_unknown_bind_option_is_refused_before_any_mount() {
    let s = Scratch::new("unknownopt");
    let src = s.0.join("src");
    std::fs::create_dir(&src).unwrap();
    let sys = Recorder::default();
    let m = mount_entry(json!({"destination": "/v", "type": "bind", "source": src,
                               "options": ["rbind", "nosuid", "bogus"]}));
    let err = apply(&s, &sys, &m).unwrap_err().to_string();
    assert_eq!(
        err,
        "mounts[0].options \"bogus\": not a mount option patina knows (a bind mount takes no filesystem data)"
    );
    assert!(sys.calls.borrow().is_empty());
    assert!(!s.root().join("v").exists());
}

#[test]
fn a_kernel_filesystem_on_the_root_is_refused_by_entry() {
    // `proc` on "/" used to cover the rootfs and fail later at /dev/null.
    for dest in ["/", "/.", "/proc/.."] {
        let s = Scratch::new("procroot");
        let sys = Recorder::default();
        let m = mount_entry(json!({"destination": dest, "type": "proc", "source": "proc"}));
        let err = apply(&s, &sys, &m).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("mounts[0]: mount \"proc\" (proc) on {dest:?}: proc on the rootfs itself would replace the whole of it")
        );
        assert!(sys.calls.borrow().is_empty(), "{dest}");
    }
}

#[test]
fn a_failing_bind_names_the_entry_and_the_errno() {
    let s = Scratch::new("nosource");
    let sys = Recorder::default();
    let missing = s.0.join("missing");
    let m = mount_entry(json!({"destination": "/v", "source": missing, "options": ["rbind"]}));
    let err = apply(&s, &sys, &m).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("mounts[0]: mount {missing:?} (bind) on \"/v\": stat source {missing:?}: ENOENT (No such file or directory)")
    );
}

#[test]
fn nothing_inside_procfs_is_covered_but_the_lxcfs_files() {
    // The host's own / and /proc serve as the rootfs here: only existing files are
    // opened (O_PATH), and the recording fake mounts nothing.
    let s = Scratch::new("procfs");
    let src = s.0.join("file");
    std::fs::write(&src, "").unwrap();
    let host_root = open("/", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    for (dest, allowed) in [
        ("/proc/keys", false),
        ("/proc/self/attr/current", false),
        ("/proc/sys/kernel/hostname", false),
        ("/proc/cpuinfo", true),
        ("/proc/./meminfo", true),
    ] {
        let sys = Recorder::default();
        let m = mount_entry(json!({"destination": dest, "source": src, "options": ["bind"]}));
        let ctx = MountContext {
            sys: &sys,
            bundle: &s.0,
            own_cgroupns: false,
            cgroup: None,
            idmapped: &[],
            bind_sources: &[],
        };
        let result = mounts::apply(host_root.as_fd(), &ctx, 0, &m);
        assert_eq!(result.is_ok(), allowed, "{dest}: {result:?}");
        assert_eq!(sys.calls.borrow().len(), usize::from(allowed), "{dest}");
        if let Err(e) = result {
            assert!(e.to_string().contains("inside /proc"), "{e}");
        }
    }
}

#[test]
fn a_destination_swapped_between_the_bind_and_the_remount_is_refused() {
    // The remount that makes the bind read-only must reach the bind, not whatever the
    // destination leads to by then (the rootfs itself, for a symlink to "/").
    let s = Scratch::new("swapped");
    let src = s.0.join("src");
    std::fs::create_dir(&src).unwrap();
    let sys = Recorder {
        swapped: true,
        ..Recorder::default()
    };
    let m = mount_entry(json!({"destination": "/v", "source": src, "options": ["rbind", "ro"]}));
    let err = apply(&s, &sys, &m).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "\"/v\" changed while it was being mounted on (swapped for a symlink?): refused"
        ),
        "{err}"
    );
    let calls = sys.calls.borrow();
    assert_eq!(calls.len(), 1, "only the bind, no remount: {calls:?}");
}

#[test]
fn refused_sysfs_becomes_a_recursive_bind_of_the_hosts() {
    // Rootless without a network namespace of its own: the kernel refuses a fresh sysfs
    // (EPERM), and the host's /sys is bound with the entry's flags instead.
    let s = Scratch::new("sysfs");
    let sys = Recorder {
        errors: vec![Some(Errno::EPERM)].into(),
        ..Recorder::default()
    };
    let m = mount_entry(
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    );
    let calls = apply(&s, &sys, &m).unwrap();
    let target = s.root().join("sys");
    let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0].fstype.as_deref(), Some("sysfs"));
    assert_eq!(calls[1], call(Some(Path::new("/sys")), target.clone(), rec));
    assert_eq!(
        calls[2],
        call(None, target, MsFlags::MS_REMOUNT | rec | flags)
    );
}

#[test]
fn other_refused_filesystems_are_not_replaced() {
    let s = Scratch::new("procfail");
    let sys = Recorder {
        errors: vec![Some(Errno::EPERM)].into(),
        ..Recorder::default()
    };
    let m = mount_entry(json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    let err = apply(&s, &sys, &m).unwrap_err().to_string();
    assert!(err.contains("EPERM") && err.contains("mounts[0]"), "{err}");
    assert_eq!(sys.calls.borrow().len(), 1);
}

/// The calls `prepare` makes without a mount namespace (in the host's), for a root
/// that is read-only or not.
fn prepare_in_host_ns(s: &Scratch, readonly: bool, mounts: serde_json::Value) -> Vec<Call> {
    let spec: Spec = serde_json::from_value(json!({
        "ociVersion": "1.0.2", "root": {"path": s.root(), "readonly": readonly},
        "mounts": mounts
    }))
    .unwrap();
    let sys = Recorder::default();
    let ctx = MountContext {
        sys: &sys,
        bundle: &s.0,
        own_cgroupns: false,
        cgroup: None,
        idmapped: &[],
        bind_sources: &[],
    };
    super::prepare(&spec, &s.root(), false, false, &ctx).unwrap();
    let calls = sys.calls.borrow().clone();
    calls
}

#[test]
fn without_a_mount_namespace_no_host_mount_changes_propagation() {
    // Neither `/` nor the mount holding the rootfs is touched: only what is mounted at or
    // beneath the rootfs. A read-only root gets a bind of its own, made private (so
    // what is mounted beneath it reaches no peer) before anything else.
    let s = Scratch::new("hostns");
    let dev = s.0.join("dev");
    std::fs::create_dir(&dev).unwrap();
    let root = s.root();
    let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
    let mounts = json!([{"destination": "/dev", "source": dev, "options": ["rbind"]}]);
    let calls = prepare_in_host_ns(&s, true, mounts.clone());
    assert_eq!(
        calls[..3],
        [
            call(Some(&root), root.clone(), rbind),
            call(None, root.clone(), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            call(Some(&dev), root.join("dev"), rbind),
        ]
    );
    let holder = mount_point_holding(&root);
    for readonly in [true, false] {
        for c in prepare_in_host_ns(&s, readonly, mounts.clone()) {
            assert!(c.target.starts_with(&root), "{c:?} outside the rootfs");
            assert_ne!(c.target, holder, "{c:?}");
        }
    }
}
