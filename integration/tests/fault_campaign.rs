//! Fault campaign: `create`, `run`, `exec` and `delete` killed with SIGKILL at random
//! points, and state roots that are full or read-only. After each fault, what is left
//! must be visible (`list`) and `delete --force` must remove all of it: state, cgroups,
//! processes. Each leak is counted and reported; the goal is none.
//!
//! PATINA_FAULT_TRIES sets the number of kills per operation (default 12; `make
//! fault-campaign` runs 300). The random seed is printed, and PATINA_FAULT_SEED replays it.

use integration::runtime::wait_for;
use integration::{is_runc, procfs, Container};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tries() -> u64 {
    std::env::var("PATINA_FAULT_TRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        // runc's leaks are only counted, and each costs it seconds: a few are enough.
        .unwrap_or(if is_runc() { 4 } else { 12 })
}

/// xorshift64*: a reproducible stream of delays.
struct Rng(u64);

impl Rng {
    fn new(name: &str) -> Rng {
        let seed = std::env::var("PATINA_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{name}: PATINA_FAULT_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn spawn(c: &Container, args: &[&str]) -> Child {
    c.command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// How long `args` takes when left alone (the median of three), for choosing kill points.
fn duration_of(c: &Container, args: &[&str], then: impl Fn()) -> Duration {
    let mut all: Vec<Duration> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let status = spawn(c, args).wait().unwrap();
            let took = start.elapsed();
            assert!(status.success(), "{args:?} failed when left alone");
            then();
            took
        })
        .collect();
    all.sort();
    all[1]
}

/// Runs `args`, SIGKILLs it after a random part of `span`, and reaps it.
fn kill_during(c: &Container, rng: &mut Rng, span: Duration, args: &[&str]) {
    let mut child = spawn(c, args);
    let delay = rng.below(span.as_micros() as u64 * 12 / 10);
    std::thread::sleep(Duration::from_micros(delay));
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

fn listed(c: &Container) -> Vec<String> {
    let out = c.rt(&["list", "--format", "json"]);
    out.assert_ok();
    let rows: Value = serde_json::from_str(out.stdout.trim()).unwrap_or(Value::Null);
    rows.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

/// What `id` left after `delete --force`: state, cgroups beneath ours, live processes
/// whose command line names it (init is a clone of the runtime, whose argv has the id),
/// and processes still in its cgroups.
fn leaks(c: &Container, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    if c.root.join(id).exists() {
        found.push(format!("state dir of {id}"));
    }
    for dir in procfs::own_cgroup_dirs() {
        let cg = dir.join(id);
        if cg.exists() {
            found.push(format!("cgroup {}", cg.display()));
        }
    }
    let gone = wait_for(Duration::from_secs(5), || {
        processes_naming(id).is_empty().then_some(())
    });
    if gone.is_none() {
        for pid in processes_naming(id) {
            found.push(format!("process {pid} of {id}"));
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    // Counted: now cleared, so that one leak is not counted again by the next check.
    for dir in procfs::own_cgroup_dirs() {
        let cg = dir.join(id);
        wait_for(Duration::from_secs(5), || {
            (std::fs::remove_dir(&cg).is_ok() || !cg.exists()).then_some(())
        });
    }
    let _ = std::fs::remove_dir_all(c.root.join(id));
    found
}

fn processes_naming(id: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmd.split(|&b| b == 0).any(|a| a == id.as_bytes()) && procfs::pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// After a fault on `id`: visible if anything is left, then `delete --force` clears all.
fn check_and_clear(c: &Container, id: &str, tally: &mut Vec<String>) {
    let state_left = c.root.join(id).join("state.json").exists();
    if state_left && !listed(c).iter().any(|l| l == id) {
        tally.push(format!("{id}: state left but not listed"));
    }
    let out = c.rt(&["delete", "--force", id]);
    if !out.success() {
        tally.push(format!(
            "{id}: delete --force failed: {}",
            out.stderr.trim()
        ));
    }
    tally.extend(leaks(c, id).into_iter().map(|l| format!("{id}: {l}")));
}

fn report(name: &str, n: u64, tally: &[String]) {
    eprintln!("{name}: {n} kills, {} leaks", tally.len());
    if is_runc() {
        // beyond runc: runc 1.1.5 leaves cgroups (and a hidden init) behind when killed
        // between making them and writing its state; counted, not failed.
        eprintln!("beyond runc: {name}: {}", tally.join("; "));
        return;
    }
    assert!(tally.is_empty(), "{name}: leaks:\n  {}", tally.join("\n  "));
}

fn bundle_args(c: &Container) -> String {
    c.bundle.display().to_string()
}

#[test]
fn create_killed_at_random_points_leaves_nothing() {
    let mut c = Container::new("faultcreate");
    c.set_args(&["sleep", "100"]);
    c.write_config();
    let b = bundle_args(&c);
    let probe = format!("{}-probe", c.id);
    c.track_id(&probe);
    let span = duration_of(&c, &["create", "--bundle", &b, &probe], || {
        c.rt(&["delete", "--force", &probe]).assert_ok();
    });
    let mut rng = Rng::new("create");
    let mut tally = Vec::new();
    let n = tries();
    for i in 0..n {
        let id = format!("{}-{i}", c.id);
        c.track_id(&id);
        kill_during(&c, &mut rng, span, &["create", "--bundle", &b, &id]);
        check_and_clear(&c, &id, &mut tally);
    }
    report("create", n, &tally);
}

#[test]
fn run_killed_at_random_points_leaves_nothing() {
    let mut c = Container::new("faultrun");
    c.set_args(&["true"]);
    c.write_config();
    let b = bundle_args(&c);
    let probe = format!("{}-probe", c.id);
    c.track_id(&probe);
    let span = duration_of(&c, &["run", "--bundle", &b, &probe], || {});
    let mut rng = Rng::new("run");
    let mut tally = Vec::new();
    let n = tries();
    for i in 0..n {
        let id = format!("{}-{i}", c.id);
        c.track_id(&id);
        kill_during(&c, &mut rng, span, &["run", "--bundle", &b, &id]);
        check_and_clear(&c, &id, &mut tally);
    }
    report("run", n, &tally);
}

#[test]
fn exec_and_delete_killed_at_random_points_leave_nothing() {
    let mut c = Container::new("faultexec");
    c.set_args(&["sleep", "100"]);
    c.write_config();
    let b = bundle_args(&c);
    let mut rng = Rng::new("exec+delete");
    let mut tally = Vec::new();
    let n = tries();
    for i in 0..n {
        let id = format!("{}-{i}", c.id);
        c.track_id(&id);
        let out = c.rt(&["run", "--detach", "--bundle", &b, &id]);
        out.assert_ok();
        let exec = ["exec", &id, "sh", "-c", "echo x >/dev/null"];
        let span = duration_of(&c, &exec, || {});
        kill_during(&c, &mut rng, span, &exec);
        let delete = ["delete", "--force", &id];
        kill_during(&c, &mut rng, span, &delete);
        // Exec'd processes whose runtime was killed are re-parented to this test process
        // (a subreaper) and stay zombies until it exits: harmless, and reaping with
        // waitpid(-1) would steal the children of tests running in parallel.
        check_and_clear(&c, &id, &mut tally);
    }
    report("exec+delete", n, &tally);
}

/// A tmpfs of the test's as --root, unmounted at teardown.
fn small_root(c: &mut Container, name: &str, options: &str) -> String {
    let dir = c.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "mount tmpfs -o {options}");
    c.track_host_mount(&dir);
    dir.display().to_string()
}

fn assert_nothing_left(root: &str, id: &str) {
    for dir in procfs::own_cgroup_dirs() {
        assert!(
            !dir.join(id).exists(),
            "cgroup left: {}",
            dir.join(id).display()
        );
    }
    assert!(processes_naming(id).is_empty(), "process of {id} left");
    let entries: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "filler")
        .collect();
    assert!(entries.is_empty(), "left in {root}: {entries:?}");
}

/// `create` with a --root on a tmpfs mounted with `options` (and filled with `fill`
/// bytes): it must fail with `errno` named, and leave nothing anywhere.
fn create_fails_cleanly_on(name: &str, options: &str, fill: usize, errno: &str) {
    let mut c = Container::new(name);
    let root = small_root(&mut c, "root", options);
    if fill > 0 {
        let _ = std::fs::write(Path::new(&root).join("filler"), vec![0u8; fill]);
    }
    c.write_config();
    let b = bundle_args(&c);
    let id = c.id.clone();
    let out = c.exec(
        Command::new(&c.runtime)
            .args(["--root", &root, "create", "--bundle", &b, &id])
            .current_dir(&c.dir),
    );
    out.assert_failed();
    if !is_runc() {
        assert!(out.stderr.contains(errno), "{out:?}");
    }
    assert_nothing_left(&root, &id);
}

#[test]
fn a_full_state_root_fails_create_cleanly() {
    // One page: the state dir fits (an inode), state.json does not.
    create_fails_cleanly_on("faultenospc", "size=4k,mode=0700", 4096, "ENOSPC");
}

#[test]
fn a_read_only_state_root_fails_create_cleanly() {
    create_fails_cleanly_on("faultrofs", "ro,size=64k,mode=0700", 0, "EROFS");
}

/// Cuts the container's state.json to `keep` of its length.
fn damage_state(c: &Container, keep: f64) {
    let state = c.root.join(&c.id).join("state.json");
    let raw = std::fs::read(&state).unwrap();
    let cut = (raw.len() as f64 * keep) as usize;
    std::fs::write(&state, &raw[..cut]).unwrap();
}

/// What the test must clear itself when the runtime could not: init, the state, and the
/// cgroups named after the container beneath ours.
fn clear_by_hand(c: &Container, pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    integration::container::reap(pid, Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(c.root.join(&c.id));
    for dir in procfs::own_cgroup_dirs() {
        wait_for(Duration::from_secs(5), || {
            std::fs::remove_dir(dir.join(&c.id))
                .ok()
                .or_else(|| (!dir.join(&c.id).exists()).then_some(()))
        });
    }
}

#[test]
fn damaged_state_is_listed_and_force_delete_ends_what_it_names() {
    let mut c = Container::new("faultdamaged");
    c.set_args(&["sleep", "100"]);
    let pid = c.create_ok();
    c.start().assert_ok();
    damage_state(&c, 0.6);
    let out = c.rt(&["list"]);
    out.assert_ok();
    assert!(
        out.stderr.contains(&c.id),
        "no word of the damaged container: {out:?}"
    );
    if is_runc() {
        // beyond runc: runc skips it in `list` and cannot delete it.
        clear_by_hand(&c, pid);
        return;
    }
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&c.id))
        .unwrap_or_default();
    assert!(row.contains("unknown"), "{out:?}");
    c.delete(true).assert_ok();
    assert!(
        integration::container::reap(pid, Duration::from_secs(5)),
        "init {pid} survived delete --force"
    );
    assert!(leaks(&c, &c.id).is_empty(), "{:?}", leaks(&c, &c.id));
}

#[test]
fn unreadable_state_is_removed_with_a_warning() {
    let mut c = Container::new("faultgarbage");
    c.set_args(&["sleep", "100"]);
    let pid = c.create_ok();
    damage_state(&c, 0.0);
    if is_runc() {
        // beyond runc: runc cannot delete it.
        clear_by_hand(&c, pid);
        return;
    }
    let out = c.delete(true);
    out.assert_ok();
    assert!(
        out.stderr
            .contains("no process or cgroup could be identified"),
        "{out:?}"
    );
    assert!(!c.root.join(&c.id).exists());
    // Nothing named the init any more: the test ends it.
    clear_by_hand(&c, pid);
}

#[test]
fn a_container_being_created_is_listed_as_creating() {
    // A createRuntime hook holds create half-way: the container is already on record.
    let mut c = Container::new("faultcreating");
    let gate = c.path("gate");
    c.config["hooks"] = serde_json::json!({ "createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("while [ ! -e {} ]; do sleep 0.01; done", gate.display())],
    }]});
    c.write_config();
    let b = bundle_args(&c);
    let mut create = spawn(&c, &["create", "--bundle", &b, &c.id]);
    let seen = wait_for(Duration::from_secs(10), || {
        let out = c.rt(&["list", "--format", "json"]);
        let rows: Value = serde_json::from_str(out.stdout.trim()).unwrap_or(Value::Null);
        rows.as_array()?
            .iter()
            .find(|r| r["id"] == c.id.as_str())
            .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
    });
    std::fs::write(&gate, "").unwrap();
    assert!(create.wait().unwrap().success());
    if is_runc() {
        // beyond runc: runc 1.1.5 writes its state only once create is done.
        eprintln!("beyond runc: runc listed it as {seen:?} while it was created");
    } else {
        assert_eq!(seen.as_deref(), Some("creating"));
    }
    let pid = c.pid();
    c.track_pid(pid);
}
