//! The mount table the container sees: default mounts, tmpfs options, bind
//! and rbind, flags, propagation, symlink escapes, readonly rootfs, --no-pivot.

use integration::procfs::{find_mount, parse_mountinfo, MountInfo};
use integration::{spec, Container};
use serde_json::json;
use std::fs;
use std::path::Path;

fn mounts_inside(c: &mut Container, extra: &str) -> (Vec<MountInfo>, String) {
    let out = c.sh_ok(&format!("{extra} echo ===; cat /proc/self/mountinfo"));
    let (before, mi) = out.split_once("===\n").expect("separator");
    (parse_mountinfo(mi), before.to_string())
}

fn host_mount_tmpfs(c: &mut Container, target: &Path) {
    fs::create_dir_all(target).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount tmpfs on the host");
    c.track_host_mount(target);
}

#[test]
fn default_mounts() {
    let mut c = Container::new("defaultmounts");
    let (m, pre) = mounts_inside(&mut c, "stat -c %a /dev /dev/shm;");
    assert_eq!(pre, "755\n1777\n");
    let proc_ = find_mount(&m, "/proc");
    assert_eq!(proc_.fstype, "proc");
    let dev = find_mount(&m, "/dev");
    assert_eq!(dev.fstype, "tmpfs");
    assert!(
        dev.has_super_option("mode=755") && dev.has_super_option("size=65536k"),
        "{dev:?}"
    );
    assert!(dev.has_option("nosuid"), "{dev:?}");
    let pts = find_mount(&m, "/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    for o in ["gid=5", "mode=620", "ptmxmode=666"] {
        assert!(pts.has_super_option(o), "{o}: {pts:?}");
    }
    assert!(
        pts.has_option("nosuid") && pts.has_option("noexec"),
        "{pts:?}"
    );
    let shm = find_mount(&m, "/dev/shm");
    assert_eq!(shm.fstype, "tmpfs");
    assert!(
        shm.has_option("nosuid") && shm.has_option("nodev") && shm.has_option("noexec"),
        "{shm:?}"
    );
    let mq = find_mount(&m, "/dev/mqueue");
    assert_eq!(mq.fstype, "mqueue");
    let sys = find_mount(&m, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    assert!(sys.has_option("ro"), "{sys:?}");
    let cg = find_mount(&m, "/sys/fs/cgroup");
    assert!(cg.has_option("ro") || cg.fstype == "tmpfs", "{cg:?}");
    assert!(
        m.iter()
            .any(|x| x.mount_point.starts_with("/sys/fs/cgroup") && x.fstype.starts_with("cgroup")),
        "{m:#?}"
    );
    let root = find_mount(&m, "/");
    assert!(!root.has_option("ro"), "{root:?}");
    // Nothing of the host leaks in: every mount is at or below the new root.
    assert!(!m
        .iter()
        .any(|x| x.mount_point.starts_with("/work") || x.mount_point == "/dev/shm/patina"));
}

#[test]
fn tmpfs_size_and_mode() {
    let mut c = Container::new("tmpfsopts");
    spec::add_mount(
        &mut c.config,
        "/data",
        "tmpfs",
        "tmpfs",
        &["size=2m", "mode=750", "nosuid"],
    );
    let (m, pre) = mounts_inside(&mut c, "stat -c %a /data; df -k /data | tail -n 1;");
    let mut pre = pre.lines();
    assert_eq!(pre.next(), Some("750"));
    let df: Vec<&str> = pre.next().unwrap().split_whitespace().collect();
    assert_eq!(df[1], "2048", "df: {df:?}");
    let d = find_mount(&m, "/data");
    assert_eq!(d.fstype, "tmpfs");
    assert!(
        d.has_super_option("size=2048k") && d.has_super_option("mode=750"),
        "{d:?}"
    );
    assert!(d.has_option("nosuid"), "{d:?}");
}

#[test]
fn bind_and_rbind() {
    let mut c = Container::new("bind");
    let src = c.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("hello"), "from-host\n").unwrap();
    host_mount_tmpfs(&mut c, &src.join("sub"));
    fs::write(src.join("sub/inner"), "submount\n").unwrap();
    let s = src.to_str().unwrap();
    spec::add_mount(&mut c.config, "/b", "bind", s, &["bind"]);
    spec::add_mount(&mut c.config, "/rb", "bind", s, &["rbind"]);
    let (m, pre) = mounts_inside(
        &mut c,
        "cat /b/hello /rb/hello /rb/sub/inner; test -e /b/sub/inner && echo bind-has-submount; echo new > /b/written;",
    );
    assert_eq!(pre, "from-host\nfrom-host\nsubmount\n");
    assert_eq!(
        fs::read_to_string(src.join("written")).unwrap(),
        "new\n",
        "bind mount is not the host dir"
    );
    find_mount(&m, "/b");
    find_mount(&m, "/rb");
    assert_eq!(find_mount(&m, "/rb/sub").fstype, "tmpfs");
    assert!(
        !m.iter().any(|x| x.mount_point == "/b/sub"),
        "plain bind is recursive: {m:#?}"
    );
}

#[test]
fn bind_file() {
    let mut c = Container::new("bindfile");
    let f = c.path("file.txt");
    fs::write(&f, "file-content\n").unwrap();
    // The destination (and its parents) do not exist in the rootfs.
    spec::add_mount(
        &mut c.config,
        "/etc/injected/file.txt",
        "bind",
        f.to_str().unwrap(),
        &["bind", "ro"],
    );
    let out = c.sh_ok("cat /etc/injected/file.txt; stat -c %F /etc/injected/file.txt");
    assert_eq!(out, "file-content\nregular file\n");
}

#[test]
fn mount_flags_visible() {
    let mut c = Container::new("flags");
    let src = c.path("src");
    fs::create_dir_all(&src).unwrap();
    let s = src.to_str().unwrap();
    spec::add_mount(
        &mut c.config,
        "/ro",
        "bind",
        s,
        &["bind", "ro", "nosuid", "nodev", "noexec"],
    );
    spec::add_mount(&mut c.config, "/rw", "bind", s, &["bind", "rw"]);
    spec::add_mount(
        &mut c.config,
        "/t",
        "tmpfs",
        "tmpfs",
        &["ro", "nosuid", "nodev", "noexec", "size=1m"],
    );
    let (m, pre) = mounts_inside(
        &mut c,
        "touch /ro/x 2>&1; touch /t/x 2>&1; touch /rw/y && echo rw-ok;",
    );
    assert!(
        pre.contains("/ro/x") && pre.contains("Read-only file system"),
        "{pre}"
    );
    assert!(pre.contains("/t/x"), "{pre}");
    assert!(pre.contains("rw-ok"), "{pre}");
    assert!(!src.join("x").exists());
    for mp in ["/ro", "/t"] {
        let x = find_mount(&m, mp);
        for o in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(x.has_option(o), "{mp} lacks {o}: {x:?}");
        }
    }
    let rw = find_mount(&m, "/rw");
    assert!(rw.has_option("rw") && !rw.has_option("noexec"), "{rw:?}");
}

/// A read-only /dev (an `ro` tmpfs at /dev): the container still gets its device nodes,
/// /dev/pts and /dev/shm, and /dev itself refuses writes (runc: made read-only last).
#[test]
fn read_only_dev_is_populated_first() {
    let mut c = Container::new("rodev");
    let dev = c.config["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["destination"] == "/dev")
        .expect("the default config mounts /dev");
    dev["options"].as_array_mut().unwrap().push(json!("ro"));
    let (m, pre) = mounts_inside(
        &mut c,
        "touch /dev/x 2>&1; echo hi > /dev/null && echo null-ok; ls /dev/pts/ptmx /dev/zero;",
    );
    assert!(
        pre.contains("/dev/x") && pre.contains("Read-only file system"),
        "{pre}"
    );
    assert!(pre.contains("null-ok"), "{pre}");
    assert!(
        pre.contains("/dev/pts/ptmx") && pre.contains("/dev/zero"),
        "{pre}"
    );
    let d = find_mount(&m, "/dev");
    assert!(d.has_option("ro") && d.has_option("nosuid"), "{d:?}");
    let pts = find_mount(&m, "/dev/pts");
    assert!(!pts.has_option("ro"), "{pts:?}");
}

#[test]
fn propagation() {
    let mut c = Container::new("propagation");
    // A shared mount on the host: its copy in the container's mount namespace
    // is a slave of the host's peer group (the rootfs is made rslave), so
    // every propagation type is observable.
    let src = c.path("src");
    host_mount_tmpfs(&mut c, &src);
    nix::mount::mount(
        None::<&str>,
        &src,
        None::<&str>,
        nix::mount::MsFlags::MS_SHARED,
        None::<&str>,
    )
    .expect("make host mount shared");
    let host_mi = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    let host_peer = find_mount(&host_mi, src.to_str().unwrap())
        .optional
        .iter()
        .find_map(|o| o.strip_prefix("shared:"))
        .expect("host mount is shared")
        .to_string();
    let s = src.to_str().unwrap();
    spec::add_mount(&mut c.config, "/p-default", "bind", s, &["rbind"]);
    spec::add_mount(
        &mut c.config,
        "/p-private",
        "bind",
        s,
        &["rbind", "rprivate"],
    );
    spec::add_mount(
        &mut c.config,
        "/p-private2",
        "bind",
        s,
        &["bind", "private"],
    );
    spec::add_mount(&mut c.config, "/p-shared", "bind", s, &["rbind", "rshared"]);
    spec::add_mount(&mut c.config, "/p-shared2", "bind", s, &["bind", "shared"]);
    spec::add_mount(&mut c.config, "/p-slave", "bind", s, &["rbind", "rslave"]);
    spec::add_mount(
        &mut c.config,
        "/p-unbindable",
        "bind",
        s,
        &["rbind", "runbindable"],
    );
    let (m, _) = mounts_inside(&mut c, "");
    let master = format!("master:{host_peer}");
    let has = |mp: &str, o: &str| find_mount(&m, mp).optional.iter().any(|x| x == o);
    assert_eq!(
        find_mount(&m, "/p-default").propagation(),
        "slave",
        "{m:#?}"
    );
    assert!(has("/p-default", &master), "{m:#?}");
    assert_eq!(
        find_mount(&m, "/p-private").propagation(),
        "private",
        "{m:#?}"
    );
    assert_eq!(
        find_mount(&m, "/p-private2").propagation(),
        "private",
        "{m:#?}"
    );
    assert_eq!(
        find_mount(&m, "/p-shared").propagation(),
        "shared",
        "{m:#?}"
    );
    assert_eq!(
        find_mount(&m, "/p-shared2").propagation(),
        "shared",
        "{m:#?}"
    );
    assert!(
        !has("/p-shared", &format!("shared:{host_peer}")),
        "container joined the host's peer group: {m:#?}"
    );
    assert_eq!(find_mount(&m, "/p-slave").propagation(), "slave", "{m:#?}");
    assert!(has("/p-slave", &master), "{m:#?}");
    assert!(has("/p-unbindable", "unbindable"), "{m:#?}");
}

#[test]
fn symlink_to_absolute_host_path_stays_inside_rootfs() {
    let mut c = Container::new("symlinkabs");
    let victim = std::path::PathBuf::from(format!("/tmp/patina-it-victim-{}", c.id));
    fs::create_dir_all(&victim).unwrap();
    let v2 = victim.clone();
    c.on_teardown(move || {
        let _ = fs::remove_dir_all(&v2);
    });
    std::os::unix::fs::symlink(&victim, c.rootfs.join("evil")).unwrap();
    spec::add_mount(&mut c.config, "/evil", "tmpfs", "tmpfs", &["size=1m"]);
    let (m, pre) = mounts_inside(&mut c, "touch /evil/pwned && echo written;");
    assert_eq!(pre, "written\n");
    // The mount landed at <rootfs>/<victim path>, seen inside as the victim path.
    let inside = find_mount(&m, victim.to_str().unwrap());
    assert_eq!(inside.fstype, "tmpfs");
    assert_eq!(
        fs::read_dir(&victim).unwrap().count(),
        0,
        "host dir {} was written",
        victim.display()
    );
    let host_mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mi.contains(victim.to_str().unwrap()),
        "mount on the host victim dir"
    );
    // The symlink in the image was not replaced.
    assert_eq!(fs::read_link(c.rootfs.join("evil")).unwrap(), victim);
}

#[test]
fn symlink_with_dotdot_stays_inside_rootfs() {
    let mut c = Container::new("symlinkrel");
    let victim = c.path("victim");
    fs::create_dir_all(&victim).unwrap();
    // rootfs = <dir>/bundle/rootfs: ../../victim from rootfs/ would be <dir>/victim.
    std::os::unix::fs::symlink("../../victim", c.rootfs.join("evil")).unwrap();
    let src = c.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("payload"), "x").unwrap();
    spec::add_mount(
        &mut c.config,
        "/evil/deeper",
        "bind",
        src.to_str().unwrap(),
        &["bind"],
    );
    let out = c.sh_ok("cat /evil/deeper/payload; echo");
    assert_eq!(out, "x\n");
    assert_eq!(
        fs::read_dir(&victim).unwrap().count(),
        0,
        "host dir outside rootfs was modified"
    );
}

#[test]
fn nested_destinations_created() {
    let mut c = Container::new("nested");
    spec::add_mount(&mut c.config, "/a/b/c", "tmpfs", "tmpfs", &["size=1m"]);
    spec::add_mount(&mut c.config, "/a/b/c/d/e", "tmpfs", "tmpfs", &["size=1m"]);
    let (m, pre) = mounts_inside(&mut c, "stat -c %F /a/b/c/d/e;");
    assert_eq!(pre, "directory\n");
    find_mount(&m, "/a/b/c");
    find_mount(&m, "/a/b/c/d/e");
}

#[test]
fn readonly_rootfs() {
    let mut c = Container::new("rorootfs");
    c.config["root"]["readonly"] = json!(true);
    let out = c.sh("touch /x 2>&1; echo rc=$?; touch /dev/shm/y && echo shm-ok");
    out.assert_ok();
    assert!(out.stdout.contains("Read-only file system"), "{out:?}");
    assert!(
        out.stdout.contains("rc=1") && out.stdout.contains("shm-ok"),
        "{out:?}"
    );
    assert!(!c.rootfs.join("x").exists());
    let (m, _) = mounts_inside(&mut c, "");
    assert!(find_mount(&m, "/").has_option("ro"));
}

#[test]
fn no_pivot() {
    let mut c = Container::new("nopivot");
    fs::write(c.rootfs.join("marker"), "in-rootfs\n").unwrap();
    c.set_sh("cat /marker; ls / | grep -c bundle; readlink /proc/self/ns/mnt");
    let out = c.run_with(&["--no-pivot"]);
    out.assert_ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l[0], "in-rootfs");
    assert_eq!(l[1], "0");
    assert_ne!(l[2], integration::procfs::ns_link("mnt"));
}

#[test]
fn masked_and_readonly_paths() {
    let mut c = Container::new("masked");
    let out = c.sh_ok(
        "wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo x > /proc/sys/kernel/hostname 2>/dev/null && echo wrote; echo done",
    );
    assert_eq!(out, "0\n0\n0\ndone\n");
    let (m, _) = mounts_inside(&mut c, "");
    assert!(find_mount(&m, "/proc/sys").has_option("ro"));
}

#[test]
fn options_engines_send_are_applied() {
    // What docker, podman and containerd's CRI put in mounts[].options: binds with flags
    // and propagation, a tmpfs with its data, an overlay with lowerdir/upperdir/workdir.
    let mut c = Container::new("engineopts");
    let src = c.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "host\n").unwrap();
    let (lower, upper, work) = (c.path("lower"), c.path("upper"), c.path("work"));
    for d in [&lower, &upper, &work] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(lower.join("l"), "lower\n").unwrap();
    let s = src.to_str().unwrap();
    let binds: [(&str, &[&str]); 3] = [
        (
            "/a",
            &["rbind", "rprivate", "nosuid", "noexec", "nodev", "ro"],
        ),
        ("/b", &["bind", "private", "rw", "relatime"]),
        ("/c", &["rbind", "rslave", "nodiratime", "noatime"]),
    ];
    for (dest, options) in binds {
        spec::add_mount(&mut c.config, dest, "bind", s, options);
    }
    spec::add_mount(
        &mut c.config,
        "/t",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "mode=1777", "size=65536k"],
    );
    let overlay = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let overlay: Vec<&str> = overlay.split(',').collect();
    let has_overlay = fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.ends_with("\toverlay"));
    if has_overlay {
        spec::add_mount(&mut c.config, "/o", "overlay", "overlay", &overlay);
    } else {
        eprintln!("options_engines_send_are_applied: this kernel has no overlay filesystem: the overlay mount is not tested");
        fs::create_dir_all(c.rootfs.join("o")).unwrap();
        fs::copy(lower.join("l"), c.rootfs.join("o/l")).unwrap();
    }
    let (m, pre) = mounts_inside(
        &mut c,
        "cat /a/f /o/l; echo upper > /o/u; touch /a/x 2>/dev/null || echo a-ro; stat -c %a /t;",
    );
    assert_eq!(pre, "host\nlower\na-ro\n1777\n");
    if has_overlay {
        assert_eq!(fs::read_to_string(upper.join("u")).unwrap(), "upper\n");
        assert_eq!(find_mount(&m, "/o").fstype, "overlay");
    }
    let a = find_mount(&m, "/a");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(a.has_option(o), "/a lacks {o}: {a:?}");
    }
    assert_eq!(a.propagation(), "private");
    assert!(find_mount(&m, "/b").has_option("rw"));
    let cm = find_mount(&m, "/c");
    assert!(
        cm.has_option("noatime") && cm.has_option("nodiratime"),
        "{cm:?}"
    );
    // (mode=1777 is tmpfs's default, which mountinfo leaves out: `stat` showed it.)
    let t = find_mount(&m, "/t");
    assert!(t.has_super_option("size=65536k"), "{t:?}");
}

#[test]
fn recursive_read_only_covers_submounts() {
    // `ro` on an rbind makes only its top mount read-only; `rro` (mount_setattr with
    // AT_RECURSIVE) every mount of the tree.
    let mut c = Container::new("rro");
    let src = c.path("src");
    fs::create_dir_all(&src).unwrap();
    host_mount_tmpfs(&mut c, &src.join("sub"));
    let s = src.to_str().unwrap();
    spec::add_mount(&mut c.config, "/ro", "bind", s, &["rbind", "ro"]);
    spec::add_mount(
        &mut c.config,
        "/rro",
        "bind",
        s,
        &["rbind", "rro", "rnosuid"],
    );
    let (m, pre) = mounts_inside(
        &mut c,
        "for d in /ro/sub /rro/sub /rro; do touch $d/x 2>/dev/null && echo $d:rw || echo $d:ro; done;",
    );
    assert_eq!(pre, "/ro/sub:rw\n/rro/sub:ro\n/rro:ro\n");
    for mp in ["/rro", "/rro/sub"] {
        let x = find_mount(&m, mp);
        assert!(x.has_option("ro") && x.has_option("nosuid"), "{mp}: {x:?}");
    }
    assert!(!find_mount(&m, "/ro/sub").has_option("ro"));
}

/// A user-namespaced container (its root is host 100000) with bind sources below a
/// directory only the host's root may search (0700): the runtime opens them before init
/// runs as the container's root, as runc does, so init and later `exec`s see them.
fn userns_with_unreachable_sources(name: &str) -> Container {
    let mut c = Container::new(name);
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    spec::set_namespace(&mut c.config, "user", None);
    c.config["linux"]["uidMappings"] = map.clone();
    c.config["linux"]["gidMappings"] = map;
    for n in 1..=2 {
        let private = c.path(&format!("private-{n}"));
        fs::create_dir_all(private.join("dir")).unwrap();
        fs::write(private.join("dir/foo.txt"), format!("volume {n}\n")).unwrap();
        fs::set_permissions(
            &private,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        // The mount points exist in the image: the container's root may not create
        // them in a rootfs owned by the host's root.
        fs::create_dir_all(c.rootfs.join(format!("mnt/m{n}"))).unwrap();
        let source = private.join("dir");
        let dest = format!("/mnt/m{n}");
        spec::add_mount(
            &mut c.config,
            &dest,
            "bind",
            source.to_str().unwrap(),
            &["bind"],
        );
    }
    c
}

#[test]
fn userns_binds_sources_its_root_cannot_reach() {
    let mut c = userns_with_unreachable_sources("usernsreach");
    let out = c.sh_ok("cat /mnt/m1/foo.txt /mnt/m2/foo.txt");
    assert_eq!(out, "volume 1\nvolume 2\n");
}

#[test]
fn userns_unreachable_sources_are_there_for_exec() {
    let mut c = userns_with_unreachable_sources("usernsreachx");
    c.set_args(&["sleep", "1000"]);
    c.create().assert_ok();
    c.start().assert_ok();
    let out = c.rt(&["exec", &c.id, "cat", "/mnt/m1/foo.txt", "/mnt/m2/foo.txt"]);
    out.assert_ok();
    assert_eq!(out.stdout, "volume 1\nvolume 2\n");
}
