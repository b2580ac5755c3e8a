//! Kubernetes volume mount propagation, end to end: a pod volume is a shared mount point
//! on the host (kubelet binds its volume dirs onto themselves, `--make-shared`), and
//! containerd's CRI turns `mountPropagation` into the volume's options and
//! `linux.rootfsPropagation`:
//!
//! - Bidirectional: `rbind` + `rshared`, rootfsPropagation `rshared`. A mount made inside
//!   the container under the volume appears on the host, and one made on the host under
//!   the source appears inside (the volume stays in the host's peer group).
//! - HostToContainer: `rbind` + `rslave`, rootfsPropagation `rslave`. Host -> container
//!   only.
//!
//! Each test mounts a tmpfs from each side through `exec` (the container holds
//! CAP_SYS_ADMIN, as a Bidirectional container must be privileged) and looks from the
//! other side; every mount that reaches the host is unmounted from the host before the
//! fixture checks that nothing is left.

use integration::procfs::parse_mountinfo;
use integration::runtime::wait_for;
use integration::security::install_program;
use integration::{spec, Container, HostProcess, Output};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A directory of this test made a shared mount point on the host, as kubelet makes a
/// pod's volume dir: bound onto itself, then made shared (a peer group of its own).
fn shared_host_dir(c: &mut Container, name: &str) -> PathBuf {
    use nix::mount::{mount, MsFlags};
    let dir = c.path(name);
    fs::create_dir_all(&dir).unwrap();
    mount(
        Some(&dir),
        &dir,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .expect("bind the dir");
    c.track_host_mount(&dir);
    mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .expect("mount --make-shared");
    dir
}

/// A running container (init sleeps) with `volume` at /vol, mounted as CRI mounts a
/// volume whose propagation is `propagation` (`rshared` or `rslave`).
fn volume_container(name: &str, propagation: &str) -> (Container, PathBuf) {
    let mut c = Container::new(name);
    let volume = shared_host_dir(&mut c, "volume");
    c.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/vol", "type": "bind", "source": volume,
        "options": ["rbind", propagation]
    }));
    c.config["linux"]["rootfsPropagation"] = json!(propagation);
    grant_sys_admin(&mut c);
    c.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start().assert_ok();
    (c, volume)
}

/// CAP_SYS_ADMIN in every set, to mount from inside.
fn grant_sys_admin(c: &mut Container) {
    let mut caps = spec::DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        c.config["process"]["capabilities"][set] = json!(caps);
    }
}

fn exec_sh(c: &Container, script: &str) -> Output {
    c.rt(&["exec", &c.id, "sh", "-c", script])
}

/// The host's mount at `path`, as (fstype, source), if any.
fn host_mount_at(path: &Path) -> Option<(String, String)> {
    let mi = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    mi.iter()
        .rev()
        .find(|m| Path::new(&m.mount_point) == path)
        .map(|m| (m.fstype.clone(), m.source.clone()))
}

/// From inside: a tmpfs at /vol/from-c holding a marker file. Returns whether the host
/// sees that mount (and its marker) under the volume, after unmounting it there.
fn container_mount_reaches_host(c: &mut Container, volume: &Path) -> bool {
    let target = volume.join("from-c");
    // Teardown unmounts it on the host if an assertion below fails first.
    c.track_host_mount(&target);
    exec_sh(
        c,
        "mkdir -p /vol/from-c && mount -t tmpfs -o size=1m patina-from-c /vol/from-c && \
         echo inside > /vol/from-c/marker && grep -c ' /vol/from-c ' /proc/self/mountinfo",
    )
    .assert_ok();
    let seen = host_mount_at(&target);
    let marker = fs::read_to_string(target.join("marker")).ok();
    if seen.is_some() {
        nix::mount::umount2(&target, nix::mount::MntFlags::empty())
            .expect("unmount the propagated tmpfs on the host");
    }
    match (seen, marker) {
        (Some((fstype, source)), Some(m)) => {
            assert_eq!(
                (fstype.as_str(), source.as_str()),
                ("tmpfs", "patina-from-c")
            );
            assert_eq!(m, "inside\n");
            true
        }
        (None, None) => false,
        other => panic!("half-propagated: {other:?}"),
    }
}

/// From the host: a tmpfs under the volume's source holding a marker. Returns what the
/// container reads of it ("" when the mount did not reach it), after unmounting it.
fn host_mount_reaches_container(c: &mut Container, volume: &Path) -> String {
    let target = volume.join("from-h");
    fs::create_dir_all(&target).unwrap();
    nix::mount::mount(
        Some("patina-from-h"),
        &target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount a tmpfs on the host");
    c.track_host_mount(&target);
    fs::write(target.join("marker"), "host\n").unwrap();
    let out = exec_sh(
        c,
        "cat /vol/from-h/marker 2>/dev/null; grep -c ' /vol/from-h ' /proc/self/mountinfo; true",
    );
    out.assert_ok();
    nix::mount::umount2(&target, nix::mount::MntFlags::empty()).expect("unmount on the host");
    out.stdout
}

#[test]
fn bidirectional_volume_propagates_both_ways() {
    let (mut c, volume) = volume_container("bidirectional", "rshared");
    assert!(
        container_mount_reaches_host(&mut c, &volume),
        "a mount made in the container under a Bidirectional volume is not seen on the host"
    );
    assert_eq!(host_mount_reaches_container(&mut c, &volume), "host\n1\n");
    // The container's unmount of a host mount reaches the host too.
    let target = volume.join("from-h2");
    fs::create_dir_all(&target).unwrap();
    nix::mount::mount(
        Some("patina-from-h2"),
        &target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    c.track_host_mount(&target);
    exec_sh(&c, "umount /vol/from-h2").assert_ok();
    assert_eq!(host_mount_at(&target), None, "unmount did not propagate");
}

#[test]
fn host_to_container_volume_propagates_one_way() {
    let (mut c, volume) = volume_container("hosttocontainer", "rslave");
    assert_eq!(host_mount_reaches_container(&mut c, &volume), "host\n1\n");
    assert!(
        !container_mount_reaches_host(&mut c, &volume),
        "a mount made in a HostToContainer volume reached the host"
    );
}

#[test]
fn bidirectional_volume_leaves_the_rest_of_the_host_alone() {
    // rootfsPropagation rshared keeps the container's mount namespace in the host's peer
    // groups until pivot_root: the runtime's own mounts (the rootfs bound onto itself,
    // /proc, /dev, masked paths) and those the container makes outside its volume must
    // not reach the host. The container's test dir is itself made shared, as a rootfs
    // under /run/containerd is.
    let mut c = Container::new("bidirisolated");
    let test_dir = c.dir.clone();
    let shared_parent = shared_host_dir(&mut c, "bundle");
    assert_eq!(shared_parent, c.bundle);
    let volume = shared_host_dir(&mut c, "volume");
    c.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/vol", "type": "bind", "source": volume, "options": ["rbind", "rshared"]
    }));
    c.config["linux"]["rootfsPropagation"] = json!("rshared");
    grant_sys_admin(&mut c);
    c.set_args(&["sleep", "1000"]);
    let before: Vec<String> = mounts_under(&test_dir);
    c.create_ok();
    c.start().assert_ok();
    exec_sh(&c, "mkdir -p /tmp/x && mount -t tmpfs tmpfs /tmp/x && mkdir -p /mnt && mount -t tmpfs tmpfs /mnt")
        .assert_ok();
    assert_eq!(
        mounts_under(&test_dir),
        before,
        "container mounts reached the host"
    );
    let root = exec_sh(&c, "awk '$5 == \"/\"' /proc/self/mountinfo");
    // beyond runc: runc 1.1.5 leaves the container's / private despite "rshared".
    assert_eq!(
        root.stdout.contains(" shared:"),
        !integration::is_runc(),
        "{root:?}"
    );
}

/// Mount points of the host's mount table under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap())
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

#[test]
fn default_rootfs_propagation_keeps_container_mounts_in() {
    // Without rootfsPropagation, an `rshared` volume is shared only inside the container
    // (a slave of the host's peer group, as runc does): host -> container only.
    let mut c = Container::new("defaultprop");
    let volume = shared_host_dir(&mut c, "volume");
    spec::add_mount(
        &mut c.config,
        "/vol",
        "bind",
        volume.to_str().unwrap(),
        &["rbind", "rshared"],
    );
    grant_sys_admin(&mut c);
    c.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start().assert_ok();
    assert_eq!(host_mount_reaches_container(&mut c, &volume), "host\n1\n");
    assert!(!container_mount_reaches_host(&mut c, &volume));
}

/// A mount namespace standing in for a systemd host, where `/` and every mount below it
/// are shared: a holder process lives in it, and from now on `c` drives the runtime in it
/// (through nsenter). The test's own host mounts are in the same peer groups there.
/// Returns the holder's pid; it is stopped after the container's teardown.
fn shared_root_host(c: &mut Container) -> i32 {
    // (`--propagation shared` is MS_SHARED|MS_REC on / in util-linux and busybox alike.)
    let holder = HostProcess::spawn(&["unshare", "-m", "--propagation", "shared", "sleep", "1000"]);
    let pid = holder.pid();
    c.on_teardown(move || drop(holder));
    let root_shared = || {
        let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
        let mi = parse_mountinfo(&mi);
        // The last `/` is the one on top (a guest's tmpfs over its initramfs).
        let root = mi.iter().rfind(|m| m.mount_point == "/")?;
        (root.propagation() == "shared").then_some(())
    };
    wait_for(Duration::from_secs(10), root_shared).expect("the stand-in host's / is shared");
    let wrapper = c.path("runtime-in-shared-host");
    let script = format!(
        "#!/bin/sh\nexec nsenter -t {pid} -m -- '{}' \"$@\"\n",
        c.runtime.display()
    );
    install_program(&wrapper, script.as_bytes(), 0o755);
    c.runtime = wrapper;
    pid
}

#[test]
fn bidirectional_volume_on_a_host_whose_root_is_shared() {
    shared_root_host_case(false);
}

#[test]
fn bidirectional_volume_with_no_pivot_on_a_host_whose_root_is_shared() {
    shared_root_host_case(true);
}

/// With rootfsPropagation rshared the container's namespace stays a peer of the host's
/// `/`: neither the rootfs (bound onto itself, or moved onto `/` with --no-pivot) nor
/// anything under it may reach the host, and the volume still propagates both ways.
fn shared_root_host_case(no_pivot: bool) {
    let mut c = Container::new("sharedroothost");
    let volume = shared_host_dir(&mut c, "volume");
    let real_runtime = c.runtime.clone();
    let host = shared_root_host(&mut c);
    spec::add_mount(
        &mut c.config,
        "/vol",
        "bind",
        volume.to_str().unwrap(),
        &["rbind", "rshared"],
    );
    c.config["linux"]["rootfsPropagation"] = json!("rshared");
    grant_sys_admin(&mut c);
    c.set_args(&["sleep", "1000"]);
    let table = || fs::read_to_string(format!("/proc/{host}/mountinfo")).unwrap();
    let dir = c.dir.clone();
    let host_mounts = |mi: &str| -> Vec<String> {
        parse_mountinfo(mi)
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p == "/" || Path::new(p).starts_with(&dir))
            .collect()
    };
    let before = host_mounts(&table());
    let pid_file = c.path("init.pid");
    let pid_file_arg = pid_file.to_str().unwrap();
    let mut extra = vec!["--pid-file", pid_file_arg];
    if no_pivot {
        extra.push("--no-pivot");
    }
    c.create_with(&extra).assert_ok();
    if no_pivot && integration::is_runc() {
        // beyond runc: runc 1.1.5 moves the rootfs onto a `/` that is still the host's
        // peer, and the rootfs covers the host's `/` (runc 1.2 refuses rshared with
        // --no-pivot).
        let after = table();
        let roots = |mounts: Vec<String>| mounts.iter().filter(|p| *p == "/").count();
        assert_eq!(roots(host_mounts(&after)), roots(before) + 1, "{after}");
        // runc, from the real host, then takes the container for stopped and kills
        // nothing on delete: its init (our child, as subreaper) is killed here.
        let init: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(init > 1, "init pid {init}");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(init),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        assert!(integration::container::reap(init, Duration::from_secs(10)));
        c.runtime = real_runtime;
        return;
    }
    c.start().assert_ok();
    exec_sh(&c, "mkdir -p /mnt && mount -t tmpfs tmpfs /mnt").assert_ok();
    let after = table();
    assert_eq!(host_mounts(&after), before, "{after}");
    assert!(container_mount_reaches_host(&mut c, &volume));
    assert_eq!(host_mount_reaches_container(&mut c, &volume), "host\n1\n");
}
