//! The runc Options that change the shim itself rather than the runtime's command line:
//! `ShimCgroup` (the shim moves into that existing cgroup) and `IoUid`/`IoGid` (the owner
//! of the stdio pipes). The shim is driven directly over ttrpc (`containerd.task.v3`), as
//! in shim_v3.rs, with a `containerd.runc.v1.Options` packed in each CreateTaskRequest;
//! its runtime is patina next to it in this build's target dir.
//!
//! Each test has its own dir (bundle, runtime root, sockets), namespace and ids; it stops
//! and reaps its own shim by pid and removes the cgroups it created, and nothing else.

use containerd_shim_patina::ttrpc;
use integration::procfs;
use integration::runtime::wait_for;
use integration::shim_client::{unique, Shim};
use std::path::{Path, PathBuf};
use std::time::Duration;

const NS: &str = "shimopts";

/// A shim for this file's task, with no options at start: each Create brings its own.
/// The container id of test `name`: unique, since its default cgroup is named after it
/// and two tests must never share one.
fn id_of(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn start_shim(name: &str, args: &[&str]) -> Shim {
    Shim::start(name, (NS, &id_of(name)), args, |_| None)
}

/// A cgroup this test makes beneath its own: `/<base>/<name>` where `base` is our
/// shallowest own cgroup path, in every hierarchy where that is our cgroup (on a hybrid
/// host where e.g. only memory has us deeper, that one hierarchy is left out: the same
/// path there would not be beneath our own cgroup, and creating it is not ours to do).
struct TestCgroup {
    /// the ShimCgroup value: the path from each hierarchy's root
    path: String,
    /// the directories created, one per hierarchy
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn create(name: &str) -> TestCgroup {
        let mounts: Vec<PathBuf> =
            procfs::parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap())
                .into_iter()
                .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
                .map(|m| PathBuf::from(m.mount_point))
                .collect();
        // (own cgroup dir, its path below the hierarchy's mount point)
        let own: Vec<(PathBuf, PathBuf)> = procfs::own_cgroup_dirs()
            .into_iter()
            .filter_map(|dir| {
                let mount = mounts
                    .iter()
                    .filter(|m| dir.starts_with(m))
                    .max_by_key(|m| m.components().count())?;
                let rel = dir.strip_prefix(mount).ok()?.to_path_buf();
                Some((dir, rel))
            })
            .collect();
        let base = own
            .iter()
            .map(|(_, rel)| rel.clone())
            .min_by_key(|rel| rel.components().count())
            .expect("our own cgroups");
        let leaf = unique(name);
        let mut cg = TestCgroup {
            path: format!("/{}", base.join(&leaf).display()),
            dirs: Vec::new(),
        };
        for (dir, _) in own.iter().filter(|(_, rel)| *rel == base) {
            let target = dir.join(&leaf);
            std::fs::create_dir(&target)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", target.display()));
            cg.dirs.push(target.clone());
            init_cpuset(dir, &target);
        }
        assert!(!cg.dirs.is_empty(), "no hierarchy to make {} in", cg.path);
        cg
    }

    fn procs(dir: &Path) -> Vec<i32> {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Sub-cgroups still there (a container's cgroup its runtime did not remove).
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            collect_subdirs(dir, &mut out);
        }
        out
    }
}

impl Drop for TestCgroup {
    /// Removes what the test created (deepest first: a leftover sub-cgroup is removed too
    /// once empty, so that a failed run leaves nothing); each must be empty of processes.
    fn drop(&mut self) {
        for dir in &self.dirs {
            let mut subs = Vec::new();
            collect_subdirs(dir, &mut subs);
            for sub in subs.iter().rev() {
                let _ = wait_for(Duration::from_secs(5), || std::fs::remove_dir(sub).ok());
            }
            if wait_for(Duration::from_secs(5), || std::fs::remove_dir(dir).ok()).is_none() {
                eprintln!("could not remove {}: {:?}", dir.display(), Self::procs(dir));
            }
        }
    }
}

/// Every cgroup beneath `dir`, parents before children.
fn collect_subdirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
            collect_subdirs(&e.path(), out);
        }
    }
}

/// A new v1 cpuset cgroup has no cpus and mems, and nothing can join it until it has:
/// it gets its parent's.
fn init_cpuset(parent: &Path, dir: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if let Ok(value) = std::fs::read_to_string(parent.join(file)) {
            std::fs::write(dir.join(file), value.trim())
                .unwrap_or_else(|e| panic!("write {}: {e}", dir.join(file).display()));
        }
    }
}

#[test]
fn shim_cgroup_is_joined() {
    let cg = TestCgroup::create("pshimcg");
    let mut shim = start_shim("cgroup", &["sleep", "1000"]);
    let before: Vec<Vec<i32>> = cg.dirs.iter().map(|d| TestCgroup::procs(d)).collect();
    assert!(before.iter().all(Vec::is_empty), "{before:?}");

    let opts = shim.runc_options(|o| o.shim_cgroup = cg.path.clone());
    let log = shim.dir.join("out.log");
    let created = shim
        .create(Some(opts), &log)
        .expect("create with ShimCgroup");
    assert!(created.pid > 0);
    for dir in &cg.dirs {
        let procs = TestCgroup::procs(dir);
        assert!(
            procs.contains(&shim.pid),
            "shim {} not in {}: {procs:?}",
            shim.pid,
            dir.display()
        );
    }
    // /proc agrees: every hierarchy we made the cgroup in names it for the shim.
    let shim_cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", shim.pid)).unwrap();
    let named = shim_cgroups
        .lines()
        .filter(|l| l.ends_with(&format!(":{}", cg.path)))
        .count();
    assert_eq!(named, cg.dirs.len(), "{shim_cgroups}");

    shim.start_task("");
    shim.kill_and_delete();
    assert!(shim.shutdown(true), "shim {} did not exit", shim.pid);
    assert_eq!(cg.leftovers(), Vec::<PathBuf>::new(), "cgroups left");
    drop(shim);
    drop(cg);
}

#[test]
fn shim_cgroup_missing_is_refused() {
    let mut shim = start_shim("cgroup-missing", &["true"]);
    let path = format!("/{}", unique("patina-no-such-cgroup"));
    let roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .collect();
    let exists = |roots: &[PathBuf]| roots.iter().any(|r| r.join(&path[1..]).exists());
    assert!(!exists(&roots), "{path} exists before the test");
    let before = std::fs::read_to_string(format!("/proc/{}/cgroup", shim.pid)).unwrap();

    let opts = shim.runc_options(|o| o.shim_cgroup = path.clone());
    let log = shim.dir.join("out.log");
    let status = shim
        .create(Some(opts), &log)
        .expect_err("create with a missing ShimCgroup");
    assert!(
        status.message.contains("ShimCgroup") && status.message.contains(&path),
        "{status:?}"
    );
    assert!(!status.message.contains('\n'), "{status:?}");

    // Nothing was made: no cgroup, no move, no container, no saved options, no task.
    assert!(!exists(&roots), "{path} was created");
    let after = std::fs::read_to_string(format!("/proc/{}/cgroup", shim.pid)).unwrap();
    assert_eq!(before, after);
    assert!(!shim
        .dir
        .join("root")
        .join(NS)
        .join(id_of("cgroup-missing"))
        .exists());
    assert!(!shim.bundle.join("patina-shim.json").exists());
    assert_eq!(
        shim.state("").expect_err("no task").code,
        ttrpc::Code::NotFound as i32
    );
    assert!(shim.shutdown(true), "shim {} did not exit", shim.pid);
}

/// The owner of the container's stdout pipe, as the container's init and an exec'd
/// process see it through /proc/self/fd/1, with `io` as IoUid/IoGid.
fn stdout_owner_seen(name: &str, io: (u32, u32)) -> (String, String) {
    let stat = "stat -L -c %u:%g /proc/self/fd/1";
    let init = format!("{stat}; exec sleep 1000");
    let mut shim = start_shim(name, &["sh", "-c", &init]);
    let opts = shim.runc_options(|o| (o.io_uid, o.io_gid) = io);
    let log = shim.dir.join("init.log");
    shim.create(Some(opts), &log).expect("create");
    shim.start_task("");
    let read = |p: &Path| {
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(p)
                .ok()
                .filter(|s| s.ends_with('\n'))
        })
        .unwrap_or_else(|| format!("(nothing in {})", p.display()))
    };
    let from_init = read(&log);
    let exec_log = shim.dir.join("exec.log");
    let status = shim.exec("x", &["sh", "-c", stat], Some(&exec_log));
    assert_eq!(status, 0, "exec: {}", read(&exec_log));
    let from_exec = read(&exec_log);
    shim.kill_and_delete();
    assert!(shim.shutdown(true), "shim {} did not exit", shim.pid);
    (from_init.trim().to_string(), from_exec.trim().to_string())
}

#[test]
fn io_uid_gid_own_the_stdio_pipes() {
    let seen = stdout_owner_seen("io-1000", (1000, 1000));
    assert_eq!(seen, ("1000:1000".to_string(), "1000:1000".to_string()));
}

#[test]
fn stdio_pipes_stay_root_without_io_uid_gid() {
    let seen = stdout_owner_seen("io-default", (0, 0));
    assert_eq!(seen, ("0:0".to_string(), "0:0".to_string()));
}
