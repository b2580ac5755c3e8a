//! What the systemd cgroup driver costs per `run`: patina with cgroupfs, patina with
//! `--systemd-cgroup`, and runc both ways, interleaved on the same busybox `true`
//! bundle. Not a correctness test (ignored by default); run it in the systemd guest:
//!
//!     PATINA_SYSTEMD_VM_PROFILE=release integration/systemd-vm/run.sh \
//!         'bench_systemd patina -- --ignored --nocapture'
//!
//! Each run is waited for with wait4(2): wall time, CPU (user+sys of the runtime and
//! every descendant it reaped: init, and for runc its `runc init`) and the peak RSS of
//! that tree. systemd's own work (PID 1 making the scope) is not in the CPU column; it
//! shows in the wall time.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Instant;

use integration::{is_runc, Container};
use serde_json::json;

struct Sample {
    wall_us: u64,
    cpu_us: u64,
    rss_kib: u64,
}

fn run_once(c: &Container, runtime: &str, systemd: bool, id: &str, cgroups_path: &str) -> Sample {
    let mut config = c.config.clone();
    config["linux"]["cgroupsPath"] = json!(cgroups_path);
    std::fs::write(
        c.bundle.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let mut cmd = Command::new(runtime);
    cmd.arg("--root").arg(&c.root);
    if systemd {
        cmd.arg("--systemd-cgroup");
    }
    cmd.args(["run", "--bundle"]).arg(&c.bundle).arg(id);
    cmd.stdin(std::process::Stdio::null());
    // SAFETY: setsid in the child between fork and exec is async-signal-safe; it keeps
    // the run off the test's terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let start = Instant::now();
    // Reaped by wait4 below (std's wait would not give the rusage).
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("spawn runtime");
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid out-pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall_us = start.elapsed().as_micros() as u64;
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{runtime} run {id}: status {status:#x}"
    );
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Sample {
        wall_us,
        cpu_us: us(usage.ru_utime) + us(usage.ru_stime),
        rss_kib: usage.ru_maxrss as u64,
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
#[ignore = "a benchmark: run by hand in the systemd guest"]
fn systemd_driver_cost_per_run() {
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!("systemd_driver_cost_per_run: SKIPPED: systemd is not running on this host");
        return;
    }
    assert!(
        !is_runc(),
        "run with PATINA_RUNTIME=patina: it measures runc itself too"
    );
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut c = Container::new("bench");
    c.set_args(&["true"]);
    let patina = integration::runtime_path().to_string_lossy().into_owned();
    let runc = "/usr/sbin/runc".to_owned();
    let rows: [(&str, &str, bool); 4] = [
        ("patina, cgroupfs", &patina, false),
        ("patina --systemd-cgroup", &patina, true),
        ("runc, cgroupfs", &runc, false),
        ("runc --systemd-cgroup", &runc, true),
    ];
    let mut samples: Vec<Vec<Sample>> = (0..rows.len()).map(|_| Vec::new()).collect();
    for i in 0..n + 3 {
        // Alternate the order, and drop the first rounds (warm-up).
        let order: Vec<usize> = if i % 2 == 0 {
            vec![0, 1, 2, 3]
        } else {
            vec![3, 2, 1, 0]
        };
        for k in order {
            let (_, bin, systemd) = rows[k];
            let id = format!("{}-{k}-{i}", c.id);
            let path = if systemd {
                format!("system.slice:bench:{id}")
            } else {
                id.clone()
            };
            let s = run_once(&c, bin, systemd, &id, &path);
            if i >= 3 {
                samples[k].push(s);
            }
        }
    }
    println!("\nMedian of {n} interleaved `run`s of busybox `true` (systemd guest, TCG):\n");
    println!("| runtime | wall ms | CPU ms | peak RSS MiB |");
    println!("| --- | --- | --- | --- |");
    for (k, (name, _, _)) in rows.iter().enumerate() {
        let col = |f: fn(&Sample) -> u64| median(samples[k].iter().map(f).collect());
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            col(|s| s.wall_us) as f64 / 1000.0,
            col(|s| s.cpu_us) as f64 / 1000.0,
            col(|s| s.rss_kib) as f64 / 1024.0
        );
    }
}
