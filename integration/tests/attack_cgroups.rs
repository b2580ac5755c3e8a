//! Attacks through linux.cgroupsPath, as a careless or hostile config would make them:
//! joining a cgroup that already runs other processes (which `delete --force` would
//! then kill), a frozen one (the container would hang at birth), the hierarchy's root,
//! and removing a cgroup the runtime did not make. Every cgroup is made beneath the
//! test's own and removed by the test.

use integration::runtime::wait_for;
use integration::{is_runc, procfs, Container};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A cgroup `name` made by the test beneath its own cgroup in every hierarchy, removed
/// (deepest first, after `prepare`'s processes are gone) at teardown.
fn existing_cgroup(c: &mut Container, name: &str) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = procfs::own_cgroup_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .collect();
    for d in &dirs {
        std::fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        // A v1 cpuset cgroup starts with no cpus or mems: nothing could join it.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(d.parent().unwrap().join(file)) {
                std::fs::write(d.join(file), v.trim()).unwrap();
            }
        }
    }
    let cleanup = dirs.clone();
    c.on_teardown(move || {
        for d in &cleanup {
            thaw(d);
            let _ = std::fs::remove_dir(d);
        }
    });
    dirs
}

fn freeze(dir: &Path) -> bool {
    if v2() || dir.starts_with("/sys/fs/cgroup/unified") {
        std::fs::write(dir.join("cgroup.freeze"), "1").is_ok()
    } else if dir.starts_with("/sys/fs/cgroup/freezer") {
        std::fs::write(dir.join("freezer.state"), "FROZEN").is_ok()
    } else {
        false
    }
}

fn thaw(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
}

/// A `sleep` of the test's, moved into each of `dirs`; killed and reaped on drop.
struct Stray(std::process::Child);

impl Stray {
    fn into(dirs: &[PathBuf]) -> Stray {
        let stray = Stray(Command::new("sleep").arg("300").spawn().unwrap());
        for d in dirs {
            std::fs::write(d.join("cgroup.procs"), stray.0.id().to_string())
                .unwrap_or_else(|e| panic!("move the stray into {}: {e}", d.display()));
        }
        stray
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Stray {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_cgroup_with_processes_is_not_joined() {
    let mut c = Container::new("cgshared");
    let name = format!("shared-{}", c.id);
    let dirs = existing_cgroup(&mut c, &name);
    let mut stray = Stray::into(&dirs);
    c.config["linux"]["cgroupsPath"] = json!(name);
    c.set_args(&["sleep", "100"]);
    let out = c.create();
    if is_runc() {
        // beyond runc: runc 1.1.5 only warns and joins; it does not kill the stranger
        // either, since the container has its own pid namespace.
        if out.success() {
            c.delete(true).assert_ok();
        }
    } else {
        c.assert_rejected(&out, &["linux.cgroupsPath", "already has 1 process"]);
    }
    assert!(stray.alive(), "the stranger in {name} was killed");
    for d in &dirs {
        assert!(d.exists(), "{} was removed", d.display());
    }
}

#[test]
fn a_frozen_cgroup_is_not_joined() {
    if is_runc() {
        // beyond runc: runc 1.1.5 joins a frozen cgroup and hangs there (1.2 refuses).
        eprintln!("beyond runc: runc 1.1.5 hangs in a frozen cgroup; not run");
        return;
    }
    for nested in [false, true] {
        let mut c = Container::new("cgfrozen");
        let name = format!("frozen-{}", c.id);
        let dirs = existing_cgroup(&mut c, &name);
        if !dirs.iter().any(|d| freeze(d)) {
            eprintln!("a_frozen_cgroup_is_not_joined: no freezer on this host; not run");
            return;
        }
        // A new cgroup below a frozen one is born frozen too.
        let path = if nested {
            format!("{name}/inner")
        } else {
            name.clone()
        };
        c.config["linux"]["cgroupsPath"] = json!(path);
        let out = c.run();
        c.assert_rejected(&out, &["linux.cgroupsPath", "frozen"]);
        for d in &dirs {
            assert!(
                !d.join("inner").exists(),
                "{} left",
                d.join("inner").display()
            );
        }
    }
}

#[test]
fn a_cgroup_that_existed_is_joined_and_kept() {
    let mut c = Container::new("cgkept");
    let name = format!("kept-{}", c.id);
    let dirs = existing_cgroup(&mut c, &name);
    for (path, made) in [(name.clone(), false), (format!("{name}/sub"), true)] {
        c.config["linux"]["cgroupsPath"] = json!(path);
        let out = c.sh("cat /proc/self/cgroup");
        out.assert_ok();
        assert!(out.stdout.lines().count() >= 1, "{out:?}");
        for d in &dirs {
            let own = if made { d.join("sub") } else { d.clone() };
            if is_runc() {
                // beyond runc: runc removes whatever cgroup it joined.
                let _ = std::fs::remove_dir(d.join("sub"));
                let _ = std::fs::create_dir(d);
                continue;
            }
            assert_eq!(own.exists(), !made, "{}", own.display());
            assert!(d.exists(), "{} was removed", d.display());
        }
    }
}

#[test]
fn the_hierarchy_root_is_refused() {
    if is_runc() {
        // beyond runc: not tried against runc, whose delete of such a container would
        // reach the host's own cgroups.
        eprintln!("beyond runc: cgroupsPath \"/\" not tried against runc");
        return;
    }
    for path in ["/", "//", "/./"] {
        let mut c = Container::new("cgroot");
        c.config["linux"]["cgroupsPath"] = json!(path);
        let out = c.run();
        c.assert_rejected(&out, &["linux.cgroupsPath", "root"]);
    }
}

#[test]
fn delete_force_spares_processes_it_did_not_start() {
    // A container with its own pid namespace ends with its init: a process someone else
    // moved into its cgroup is not the container's to kill (as runc).
    let mut c = Container::new("cgspare");
    c.set_args(&["sleep", "100"]);
    c.create().assert_ok();
    c.start().assert_ok();
    let dirs: Vec<PathBuf> = procfs::own_cgroup_dirs()
        .into_iter()
        .map(|d| d.join(&c.id))
        .filter(|d| d.exists())
        .collect();
    let mut stray = Stray::into(&dirs);
    let _ = c.delete(true);
    assert!(
        stray.alive(),
        "delete --force killed a process it did not start"
    );
    drop(stray);
    // The cgroups are left to whoever put the process there: here, the test.
    for d in &dirs {
        wait_for(Duration::from_secs(5), || std::fs::remove_dir(d).ok());
    }
}
