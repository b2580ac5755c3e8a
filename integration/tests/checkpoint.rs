//! `checkpoint` / `restore` with CRIU (docs/checkpoint.md), against patina and runc.
//!
//! CRIU must work on the host (`criu check`): Debian's criu 3.17 does not on the dev
//! host's 6.18 kernel, so there every test says by name that it is skipped; they run in
//! the systemd guest (Debian 12, kernel 6.1: integration/systemd-vm, `checkpoint`).
//!
//! The containers run with pipes as stdio, as an engine's are: CRIU cannot dump a file
//! of the host's mount namespace (the harness's output files), and restore hands the
//! restored container new pipes (runc's descriptors.json), which is how these tests
//! watch a restored counter go on.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use integration::{is_runc, spec, Container};
use serde_json::json;

/// Whether CRIU works here; says so by name when it does not. `criu check` logs to a
/// file of ours (a host's /etc/criu/default.conf may name a log file in the cwd), whose
/// last error line is the reason given.
fn criu_works(test: &str) -> bool {
    static CHECK: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let check = CHECK.get_or_init(|| {
        let log =
            std::env::temp_dir().join(format!("patina-criu-check-{}.log", std::process::id()));
        let out = Command::new("criu")
            .arg("check")
            .arg("-o")
            .arg(&log)
            .output();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        match out {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(text
                .lines()
                .rfind(|l| l.contains("Error"))
                .map_or(format!("{}, no message", out.status), |l| {
                    l.trim().to_owned()
                })),
            Err(e) => Err(format!("cannot run criu: {e}")),
        }
    });
    match check {
        Ok(()) => true,
        Err(why) => {
            eprintln!("{test}: SKIPPED: `criu check` fails on this host ({why}); runs in the systemd guest (integration/systemd-vm: checkpoint)");
            false
        }
    }
}

/// A runtime command whose stdio are pipes held here (the container inherits them).
struct Piped {
    child: Child,
    lines: Receiver<String>,
    _stdin: std::process::ChildStdin,
    err: Receiver<String>,
}

impl Piped {
    fn spawn(c: &Container, args: &[&str]) -> Piped {
        let mut child = c
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the runtime");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, err) = mpsc::channel();
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0
                    || etx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        Piped {
            child,
            lines,
            _stdin: stdin,
            err,
        }
    }

    /// Wait for the runtime itself (not the container) to exit; its stderr on failure.
    fn wait_ok(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the runtime did not return"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            std::thread::sleep(Duration::from_millis(200));
            let err: String = self.err.try_iter().collect();
            panic!("{what} failed ({status}): {err}");
        }
    }

    /// The next number the counter prints after `after` (waits up to 60 s).
    fn count_above(&self, after: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.trim().parse::<u64>() {
                    Ok(n) if n > after => return n,
                    _ => continue,
                },
                Err(_) => break,
            }
        }
        panic!("the counter printed nothing above {after} within 60 s");
    }
}

/// A counter printing 1, 2, 3... and writing it to /data/count (a bind mount of the
/// test dir's `data`, which CRIU must treat as external); `prelude` runs first.
fn counter(c: &mut Container, prelude: &str) -> PathBuf {
    let data = c.path("data");
    std::fs::create_dir_all(&data).unwrap();
    spec::add_mount(
        &mut c.config,
        "/data",
        "bind",
        data.to_str().unwrap(),
        &["rbind", "rw"],
    );
    c.set_sh(&format!(
        "{prelude} i=0; while :; do i=$((i+1)); echo $i; echo $i > /data/count; sleep 0.1; done"
    ));
    c.write_config();
    data.join("count")
}

/// `run -d` with pipes; returns them and the counter's first number.
fn run_counter(c: &mut Container) -> (Piped, u64) {
    let bundle = c.bundle.to_string_lossy().into_owned();
    let id = c.id.clone();
    let mut run = Piped::spawn(c, &["run", "-d", "--bundle", &bundle, &id]);
    run.wait_ok("run -d");
    let pid = c.pid();
    c.track_pid(pid);
    let first = run.count_above(0);
    (run, first)
}

/// A counting container, running, for a test that needs CRIU (None, said by name,
/// where it cannot work): the container, its pipes and the host path of its count file.
fn counting(test: &str, name: &str, prelude: &str) -> Option<(Container, Piped, PathBuf)> {
    if !criu_works(test) {
        return None;
    }
    let mut c = Container::new(name);
    let count = counter(&mut c, prelude);
    let (run, _) = run_counter(&mut c);
    Some((c, run, count))
}

fn checkpoint(c: &Container, id: &str, extra: &[&str]) -> integration::Output {
    let mut args = vec!["checkpoint"];
    args.extend_from_slice(extra);
    args.push(id);
    c.rt(&args)
}

/// `restore -d` with new pipes under `id`; tracks the restored init.
fn restore(c: &mut Container, id: &str, extra: &[&str]) -> Piped {
    let bundle = c.bundle.to_string_lossy().into_owned();
    let mut args = vec!["restore", "-d", "--bundle", &bundle];
    args.extend_from_slice(extra);
    args.push(id);
    let mut p = Piped::spawn(c, &args);
    p.wait_ok("restore -d");
    if let Some(pid) = c
        .rt(&["state", id])
        .stdout
        .parse::<serde_json::Value>()
        .ok()
        .and_then(|s| s["pid"].as_i64())
    {
        c.track_pid(pid as i32);
    }
    p
}

fn state_of(c: &Container, id: &str) -> Option<serde_json::Value> {
    let out = c.rt(&["state", id]);
    out.success()
        .then(|| out.stdout.parse().expect("state JSON"))
}

fn read_count(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

fn dir_size(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Checkpoint stops the container and removes it; restore brings the same processes
/// back, counting on from where they were (not from 1), writing to the same bind mount.
#[test]
fn checkpoint_then_restore_continues_the_counter() {
    let Some((mut c, run, count)) = counting(
        "checkpoint_then_restore_continues_the_counter",
        "ckpt_counter",
        "",
    ) else {
        return;
    };
    let before = run.count_above(2);
    let old_pid = c.pid();
    let images = c.path("images");
    let work = c.path("work");
    let id = c.id.clone();
    checkpoint(
        &c,
        &id,
        &[
            "--image-path",
            images.to_str().unwrap(),
            "--work-path",
            work.to_str().unwrap(),
        ],
    )
    .assert_ok();
    assert!(
        state_of(&c, &id).is_none(),
        "the checkpointed container is still there"
    );
    assert!(
        !integration::procfs::pid_alive(old_pid),
        "init {old_pid} still runs after the dump"
    );
    assert!(work.join("dump.log").exists(), "no dump.log in --work-path");
    assert!(images.join("inventory.img").exists(), "no image written");
    let dumped = read_count(&count);
    assert!(dumped >= before);
    drop(run);

    let restored = restore(
        &mut c,
        &id,
        &[
            "--image-path",
            images.to_str().unwrap(),
            "--work-path",
            work.to_str().unwrap(),
        ],
    );
    let state = state_of(&c, &id).expect("restored container on record");
    assert_eq!(state["status"], "running", "{state}");
    // The same shell, its variable intact: the first number it prints follows the last
    // one before the dump (a fresh start would print 1).
    let next = restored.count_above(0);
    assert!(
        next > dumped && next <= dumped + 2,
        "restored counter printed {next} after {dumped}"
    );
    let later = restored.count_above(next + 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_count(&count) < later && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        read_count(&count) >= later,
        "the bind mount /data is not the host's dir after restore"
    );
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
}

/// `--leave-running` keeps the container counting; its image restores under a new id
/// (after the original is gone: same bundle) from the dumped number.
#[test]
fn leave_running_then_restore_under_a_new_id() {
    let Some((mut c, run, _)) = counting(
        "leave_running_then_restore_under_a_new_id",
        "ckpt_leave",
        "",
    ) else {
        return;
    };
    run.count_above(2);
    let images = c.path("images");
    let id = c.id.clone();
    checkpoint(
        &c,
        &id,
        &["--leave-running", "--image-path", images.to_str().unwrap()],
    )
    .assert_ok();
    assert_eq!(c.status(), "running");
    assert!(
        images.join("dump.log").exists(),
        "without --work-path the log is in the image dir"
    );
    // The image holds at most the number the bind mount shows now.
    let at_dump = read_count(&c.path("data").join("count"));
    run.count_above(at_dump + 3);
    c.delete(true).assert_ok();
    drop(run);

    let new_id = format!("{id}-new");
    c.track_id(&new_id);
    let restored = restore(&mut c, &new_id, &["--image-path", images.to_str().unwrap()]);
    assert_eq!(
        state_of(&c, &new_id).expect("new id on record")["status"],
        "running"
    );
    let next = restored.count_above(0);
    let pid = state_of(&c, &new_id).unwrap()["pid"].as_i64().unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mut stray = None;
    if is_runc() {
        // runc 1.1.5 restores on cgroup v2 into the dumped container's cgroup path,
        // re-made by CRIU: the old id's (beyond runc: patina restores into the new id's).
        // It is removed once the container is killed below.
        stray = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .filter(|p| p.ends_with(&id))
            .map(|p| Path::new("/sys/fs/cgroup").join(p.trim_start_matches('/')));
    } else if cgroup.starts_with("0::") {
        assert!(
            cgroup.trim().ends_with(&new_id),
            "restored into {cgroup:?}, not the new id's cgroup"
        );
    }
    assert!(
        next > 3 && next <= at_dump + 2,
        "restored counter printed {next}: not from the image taken near {at_dump}"
    );
    restored.count_above(next);
    c.rt(&["kill", &new_id, "KILL"]).assert_ok();
    if let Some(dir) = stray {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Pre-dump copies the memory while the container runs; the dump on top of it
/// (`--parent-path`) writes only what changed since, so its pages are fewer; the pair
/// restores.
#[test]
fn pre_dump_then_dump_with_parent_is_smaller() {
    if !criu_works("pre_dump_then_dump_with_parent_is_smaller") {
        return;
    }
    let mut c = Container::new("ckpt_predump");
    // 8 MB the shell holds in its heap and never changes again.
    counter(&mut c, "x=$(head -c 8000000 /dev/zero | tr '\\0' a);");
    let (run, _) = run_counter(&mut c);
    run.count_above(2);
    let base = c.path("ckpt");
    let pre = base.join("pre");
    let full = base.join("full");
    std::fs::create_dir_all(&base).unwrap();
    let id = c.id.clone();
    checkpoint(
        &c,
        &id,
        &["--pre-dump", "--image-path", pre.to_str().unwrap()],
    )
    .assert_ok();
    assert_eq!(c.status(), "running", "pre-dump stopped the container");
    checkpoint(
        &c,
        &id,
        &[
            "--parent-path",
            "../pre",
            "--image-path",
            full.to_str().unwrap(),
        ],
    )
    .assert_ok();
    let (pre_pages, full_pages) = (dir_size(&pre, "pages-"), dir_size(&full, "pages-"));
    eprintln!("pre-dump pages {pre_pages} B, dump on top {full_pages} B");
    assert!(
        pre_pages >= 8_000_000,
        "pre-dump wrote {pre_pages} B of pages"
    );
    if is_runc() {
        // Seen in the systemd guest: runc 1.1.5's dump on top of its pre-dump writes
        // every page again (8 MB of 8 MB), patina's about 100 KB (beyond runc).
        assert!(full_pages > 0);
    } else {
        assert!(
            full_pages * 4 < pre_pages,
            "dump with parent wrote {full_pages} B, pre-dump {pre_pages} B"
        );
    }
    drop(run);
    let restored = restore(&mut c, &id, &["--image-path", full.to_str().unwrap()]);
    let n = restored.count_above(0);
    restored.count_above(n);
    c.kill("KILL").assert_ok();
}

/// Restored into its cgroup with the bundle's limits in the cgroup's files, the
/// restored processes in it.
#[test]
fn restore_into_a_cgroup_with_limits() {
    let Some((mut c, run, _)) = counting("restore_into_a_cgroup_with_limits", "ckpt_cgroup", "")
    else {
        return;
    };
    run.count_above(1);
    let images = c.path("images");
    let id = c.id.clone();
    checkpoint(&c, &id, &["--image-path", images.to_str().unwrap()]).assert_ok();
    drop(run);
    c.config["linux"]["resources"] = json!({
        "memory": { "limit": 67108864 },
        "pids": { "limit": 40 }
    });
    c.write_config();
    let restored = restore(&mut c, &id, &["--image-path", images.to_str().unwrap()]);
    restored.count_above(0);
    let pid = c.pid();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let dirs = integration::procfs::own_cgroup_dirs();
    if let Some(rel) = text.lines().find_map(|l| l.strip_prefix("0::")) {
        let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        assert_eq!(read("memory.max"), "67108864", "{}", dir.display());
        assert_eq!(read("pids.max"), "40");
        assert!(read("cgroup.procs").lines().any(|p| p == pid.to_string()));
        assert!(
            dir.ends_with(&id),
            "restored into {} rather than a cgroup named after it",
            dir.display()
        );
    } else {
        eprintln!("restore_into_a_cgroup_with_limits: cgroup v1 host ({dirs:?}): limits checked on v2 only");
    }
    c.kill("KILL").assert_ok();
}

/// Bad input fails with a clear error and leaves nothing: an image dir that does not
/// exist, an id already in use (whose container is left alone), a missing container.
#[test]
fn restore_failures_leave_nothing() {
    let Some((mut c, run, _)) = counting("restore_failures_leave_nothing", "ckpt_fail", "") else {
        return;
    };
    let id = c.id.clone();
    let bundle = c.bundle.to_string_lossy().into_owned();
    let missing = c.path("no-such-images");
    let other = format!("{id}-x");
    c.track_id(&other);
    let out = c.rt(&[
        "restore",
        "-d",
        "--bundle",
        &bundle,
        "--image-path",
        missing.to_str().unwrap(),
        &other,
    ]);
    out.assert_failed();
    assert!(
        state_of(&c, &other).is_none(),
        "a failed restore left {other} on record"
    );
    if !is_runc() {
        assert!(out.stderr.contains("--image-path"), "{}", out.stderr);
    }
    // A real image, restored under the id of a running container.
    let images = c.path("images");
    checkpoint(
        &c,
        &id,
        &["--leave-running", "--image-path", images.to_str().unwrap()],
    )
    .assert_ok();
    let pid = c.pid();
    let out = c.rt(&[
        "restore",
        "-d",
        "--bundle",
        &bundle,
        "--image-path",
        images.to_str().unwrap(),
        &id,
    ]);
    out.assert_failed();
    if !is_runc() {
        assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    }
    assert_eq!(c.pid(), pid, "the running container was replaced");
    let before = run.count_above(0);
    run.count_above(before);
    let out = checkpoint(&c, &other, &["--image-path", images.to_str().unwrap()]);
    out.assert_failed();
    assert!(!std::fs::read_dir(&c.root)
        .unwrap()
        .any(|e| e.unwrap().file_name() == other.as_str()));
}

/// Figures for docs/benchmarks.md: wall time of `checkpoint` and of `restore -d` of a
/// busybox shell, and the image's size; three rounds, each restored image checked to
/// count on. Printed as `FIGURE` lines (run with --nocapture).
#[test]
fn checkpoint_restore_figures() {
    let Some((mut c, mut live, _)) = counting("checkpoint_restore_figures", "ckpt_figures", "")
    else {
        return;
    };
    let id = c.id.clone();
    let (mut dumps, mut restores, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let n = live.count_above(0);
        let images = c.path(&format!("images-{round}"));
        let t = Instant::now();
        checkpoint(&c, &id, &["--image-path", images.to_str().unwrap()]).assert_ok();
        dumps.push(t.elapsed());
        sizes.push(dir_size(&images, ""));
        let t = Instant::now();
        live = restore(&mut c, &id, &["--image-path", images.to_str().unwrap()]);
        restores.push(t.elapsed());
        assert!(live.count_above(n) > n);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_millis()
    };
    sizes.sort();
    eprintln!(
        "FIGURE checkpoint {}: dump {} ms, restore -d {} ms, image {} KiB (median of 3)",
        integration::runtime_path().display(),
        median(&mut dumps),
        median(&mut restores),
        sizes[1] / 1024
    );
    c.kill("KILL").assert_ok();
}

/// Gives the container CAP_NET_ADMIN, so its shell can bring up the loopback of its
/// new network namespace (which starts down: nothing listens or connects on it).
fn add_net_admin(c: &mut Container) {
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_NET_ADMIN"));
    }
}

/// A TCP connection on the loopback of the container's own network namespace, both ends
/// in the container: a listener printing what it receives, a client sending a counter.
/// A dump without `--tcp-established` is refused by CRIU (named in the error) and leaves
/// the container running; with it, the restored connection carries the counter on (the
/// numbers only reach stdout through the socket, and a new connection would start at 1).
#[test]
fn tcp_established_connection_survives_restore() {
    if !criu_works("tcp_established_connection_survives_restore") {
        return;
    }
    let mut c = Container::new("ckpt_tcp");
    add_net_admin(&mut c);
    // The listener's stdin is a pipe that never ends: at stdin's EOF busybox nc shuts
    // its sending half, and a half-closed socket is not the established one under test.
    // The client waits for the listening socket (port 5000 = 0x1388; busybox nc listens
    // on IPv6's any address, dual-stack) in /proc/net/tcp*.
    c.set_sh(
        "busybox ip link set lo up || exit 1; \
         sleep 1000000 | busybox nc -l -p 5000 & \
         until grep -q ':1388 [0-9A-F]*:0000 0A' /proc/net/tcp /proc/net/tcp6; do sleep 0.1; done; \
         i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done | busybox nc 127.0.0.1 5000",
    );
    c.write_config();
    let (run, _) = run_counter(&mut c);
    let before = run.count_above(2);
    let id = c.id.clone();
    let images = c.path("images");
    let image_arg = images.to_str().unwrap();

    let refused = checkpoint(&c, &id, &["--image-path", image_arg]);
    assert!(
        !refused.success(),
        "a dump of an established connection without --tcp-established passed"
    );
    // beyond runc: patina's error carries CRIU's last error line, which names the flag;
    // runc 1.1.5 says "criu failed: type NOTIFY errno 0" and names the log.
    if !is_runc() {
        assert!(
            refused.stderr.contains("tcp-established"),
            "the error does not name --tcp-established: {}",
            refused.stderr
        );
    }
    assert_eq!(state_of(&c, &id).expect("still there")["status"], "running");
    let still = run.count_above(before);

    let _ = std::fs::remove_dir_all(&images);
    checkpoint(&c, &id, &["--tcp-established", "--image-path", image_arg]).assert_ok();
    assert!(state_of(&c, &id).is_none(), "the container is still there");
    drop(run);
    // CRIU's own account of a failed restore is in its log: shown with the panic.
    let restored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        restore(
            &mut c,
            &id,
            &["--tcp-established", "--image-path", image_arg],
        )
    }));
    let restored = match restored {
        Ok(r) => r,
        Err(e) => {
            let log = std::fs::read_to_string(images.join("restore.log")).unwrap_or_default();
            let errors: Vec<&str> = log.lines().filter(|l| l.contains("Error")).collect();
            let errors = errors.join("\n");
            // beyond runc: runc 1.1.5's restore of this image fails in the guest, CRIU
            // unable to reconnect the sockets ("Can't connect inet socket back: Network
            // is unreachable": no loopback route yet in the restored netns); patina's
            // succeeds with the same CRIU. Any other failure fails the test.
            if is_runc() && errors.contains("Network is unreachable") {
                eprintln!("tcp_established_connection_survives_restore: runc's restore fails as known:\n{errors}");
                return;
            }
            eprintln!("restore.log's errors:\n{errors}");
            std::panic::resume_unwind(e)
        }
    };
    let next = restored.count_above(0);
    assert!(
        next > still,
        "the listener printed {next} after the restore, {still} before: not the same connection"
    );
    let later = restored.count_above(next + 3);
    assert!(later > next + 3);
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
}

/// Figures for docs/benchmarks.md: `checkpoint` and `restore -d` of a container holding
/// about 200 MB of touched anonymous memory (busybox dd reading 200 MB of /dev/zero into
/// its buffer, then blocked writing it into a pipe nobody reads). The shell prints the
/// container's summed VmRSS (KiB): above 200 MB before the dump and again after the
/// restore. Long under TCG: run by hand (--ignored), as in docs/benchmarks.md.
#[test]
#[ignore]
fn checkpoint_restore_figures_200mb() {
    if !criu_works("checkpoint_restore_figures_200mb") {
        return;
    }
    const RSS_KIB: u64 = 200 * 1024;
    let mut c = Container::new("ckpt_200mb");
    c.set_sh(
        "busybox dd if=/dev/zero bs=200M count=1 2>/dev/null | sleep 1000000 & \
         while :; do awk '/^VmRSS/ { s += $2 } END { print s }' /proc/[0-9]*/status; sleep 0.5; done",
    );
    c.write_config();
    let (mut live, _) = run_counter(&mut c);
    let id = c.id.clone();
    let (mut dumps, mut restores, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        live.count_above(RSS_KIB);
        let images = c.path(&format!("images-{round}"));
        let t = Instant::now();
        checkpoint(&c, &id, &["--image-path", images.to_str().unwrap()]).assert_ok();
        dumps.push(t.elapsed());
        sizes.push(dir_size(&images, ""));
        drop(live);
        let t = Instant::now();
        live = restore(&mut c, &id, &["--image-path", images.to_str().unwrap()]);
        restores.push(t.elapsed());
        let rss = live.count_above(0);
        assert!(rss > RSS_KIB, "restored container's RSS {rss} KiB");
        std::fs::remove_dir_all(&images).unwrap();
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_millis()
    };
    sizes.sort();
    eprintln!(
        "FIGURE checkpoint 200MB {}: dump {} ms, restore -d {} ms, image {} KiB (median of 3)",
        integration::runtime_path().display(),
        median(&mut dumps),
        median(&mut restores),
        sizes[1] / 1024
    );
    c.kill("KILL").assert_ok();
}

/// The shim's task API: Checkpoint (runc's CheckpointOptions, `exit`) dumps the task and
/// stops it; Create with `checkpoint` restores it (with new stdio) and Start reports it;
/// the counter in the log goes on from where it was. Runs the runtime under test through
/// the shim's BinaryName.
#[test]
fn shim_checkpoint_then_create_from_the_checkpoint() {
    use containerd_shim_patina::proto::{
        Any, CheckpointOptions, CheckpointTaskRequest, CreateTaskRequest, Empty,
    };
    use integration::shim_client::Shim;
    if !criu_works("shim_checkpoint_then_create_from_the_checkpoint") {
        return;
    }
    let counter = [
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done",
    ];
    // The bundle made here rather than by fixtures/busybox-bundle.sh, which the guest
    // does not have.
    let dir = integration::shim_client::scratch_dir("ckshim");
    let bundle = dir.join("bundle");
    integration::rootfs::build(&bundle.join("rootfs"));
    let config = spec::base_config(&counter, "ckshim");
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    let mut shim = Shim::start_in(dir, bundle, ("ckpt", "ckshim"), |_| None);
    let opts = shim.runc_options(|o| {
        o.binary_name = integration::runtime_path().to_string_lossy().into_owned()
    });
    let log = shim.dir.join("out.log");
    let numbers = |log: &Path| -> Vec<u64> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    shim.create(Some(opts.clone()), &log).expect("Create");
    shim.start_task("");
    let wait_past = |log: &Path, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while numbers(log).last().is_none_or(|&l| l <= n) {
            assert!(Instant::now() < deadline, "the counter did not pass {n}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_past(&log, 3);
    let images = shim.dir.join("images");
    let req = CheckpointTaskRequest {
        id: "ckshim".into(),
        path: images.to_string_lossy().into(),
        options: Some(Any::pack(
            "containerd.runc.v1.CheckpointOptions",
            &CheckpointOptions {
                exit: true,
                ..Default::default()
            },
        )),
    };
    if let Err(status) = shim.try_call::<_, Empty>("Checkpoint", &req) {
        let log =
            std::fs::read_to_string(shim.bundle.join("criu-work/dump.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let first = lines.iter().position(|l| l.contains("Error")).unwrap_or(0);
        panic!(
            "Checkpoint: {status:?}\ndump.log:\n{}",
            lines[first.saturating_sub(15)..(first + 5).min(lines.len())].join("\n")
        );
    }
    shim.wait("");
    shim.delete("");
    let last = *numbers(&log).last().unwrap();
    let log2 = shim.dir.join("restored.log");
    let req = CreateTaskRequest {
        id: "ckshim".into(),
        bundle: shim.bundle.to_string_lossy().into(),
        stdout: format!("file://{}", log2.display()),
        stderr: format!("file://{}", log2.display()),
        checkpoint: images.to_string_lossy().into(),
        options: Some(opts),
        ..Default::default()
    };
    let created: containerd_shim_patina::proto::CreateTaskResponse = shim
        .try_call("Create", &req)
        .expect("Create from the checkpoint");
    assert_eq!(shim.start_task(""), created.pid);
    wait_past(&log2, 0);
    let first = numbers(&log2)[0];
    assert!(
        first > last && first <= last + 2,
        "restored counter printed {first} after {last}"
    );
    shim.kill_and_delete();
    assert!(shim.shutdown(false));
}

/// Numbers `nN` seen on a terminal so far.
fn tty_numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix('n')?.parse().ok())
        .collect()
}

/// A container with a tty (its master sent to `--console-socket`): restored with a new
/// console socket, CRIU's new pty master arrives there and the counter goes on on it.
#[test]
fn tty_container_restores_onto_a_new_console() {
    use integration::console::{read_master, receive_master};
    use std::os::unix::net::UnixListener;
    if !criu_works("tty_container_restores_onto_a_new_console") {
        return;
    }
    let mut c = Container::new("ckpt_tty");
    c.set_sh("i=0; while :; do i=$((i+1)); echo n$i; sleep 0.1; done");
    c.config["process"]["terminal"] = json!(true);
    let sock = c.path("console.sock");
    let master = receive_master(UnixListener::bind(&sock).unwrap());
    c.run_with(&["--detach", "--console-socket", sock.to_str().unwrap()])
        .assert_ok();
    let rx = read_master(std::fs::File::from(master.join().unwrap()));
    let mut seen = String::new();
    let collect = |rx: &Receiver<Vec<u8>>, seen: &mut String, past: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while tty_numbers(seen).last().is_none_or(|&n| n <= past) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("the terminal showed nothing past n{past}: {seen:?}"),
            }
        }
    };
    collect(&rx, &mut seen, 5);
    let images = c.path("images");
    let id = c.id.clone();
    checkpoint(&c, &id, &["--image-path", images.to_str().unwrap()]).assert_ok();
    std::thread::sleep(Duration::from_millis(300));
    seen.extend(
        rx.try_iter()
            .map(|chunk| String::from_utf8_lossy(&chunk).into_owned()),
    );
    let last = *tty_numbers(&seen).last().unwrap();
    let sock2 = c.path("console2.sock");
    let master2 = receive_master(UnixListener::bind(&sock2).unwrap());
    let bundle = c.bundle.to_string_lossy().into_owned();
    c.rt(&[
        "restore",
        "-d",
        "--bundle",
        &bundle,
        "--console-socket",
        sock2.to_str().unwrap(),
        "--image-path",
        images.to_str().unwrap(),
        &id,
    ])
    .assert_ok();
    let pid = c.pid();
    c.track_pid(pid);
    let rx2 = read_master(std::fs::File::from(master2.join().unwrap()));
    let mut after = String::new();
    collect(&rx2, &mut after, 0);
    let first = tty_numbers(&after)[0];
    assert!(
        first + 2 >= last && first <= last + 2,
        "the restored terminal showed n{first} after n{last}"
    );
    c.kill("KILL").assert_ok();
}

/// podman's probes of a runtime's checkpoint support, run as podman 4.3 runs them (its
/// pkg/checkpoint/crutils): `checkpoint --help` must succeed, and `restore
/// --lsm-mount-context` without its value must answer with the words of runc's CLI
/// library, "flag needs an argument" (podman's test of whether the runtime can restore
/// into an existing pod, CRRuntimeSupportsPodCheckpointRestore). Needs no CRIU: runs on
/// every host.
#[test]
fn podman_probes_read_as_checkpoint_support() {
    let help = Command::new(integration::runtime_path())
        .args(["checkpoint", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success(), "checkpoint --help: {help:?}");
    let probe = Command::new(integration::runtime_path())
        .args(["restore", "--lsm-mount-context"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&probe.stdout),
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(!probe.status.success(), "a flag without its value passed");
    assert!(
        text.contains("flag needs an argument") && text.contains("lsm-mount-context"),
        "restore --lsm-mount-context said: {text}"
    );
}

/// `--parent-path` is checked before CRIU is asked (so this runs on every host): an
/// absolute path and one that is no directory under the image dir are refused with an
/// error naming the flag, and the container runs on (runc's checkpoint.bats "bad
/// --parent-path").
#[test]
fn bad_parent_path_is_refused_before_criu() {
    let mut c = Container::new("ckpt_badparent");
    c.set_args(&["sleep", "1000"]);
    c.write_config();
    c.create_ok();
    c.start().assert_ok();
    let id = c.id.clone();
    let images = c.path("images");
    let absolute = c.path("parent");
    std::fs::create_dir_all(&absolute).unwrap();
    for parent in [absolute.to_str().unwrap(), "../missing"] {
        let out = checkpoint(
            &c,
            &id,
            &[
                "--parent-path",
                parent,
                "--image-path",
                images.to_str().unwrap(),
            ],
        );
        assert!(!out.success(), "--parent-path {parent} accepted");
        assert!(
            out.stderr.contains("--parent-path"),
            "the error does not name --parent-path: {}",
            out.stderr
        );
        // beyond runc: runc 1.1.5 makes the image dir before it checks the parent.
        if !is_runc() {
            assert!(
                !images.exists(),
                "--parent-path {parent}: image dir left behind"
            );
        }
    }
    assert_eq!(c.status(), "running");
    c.kill("KILL").assert_ok();
    c.wait_status("stopped");
}
