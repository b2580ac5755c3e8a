//! Tiny measurement wrapper for bench/run.sh (built with plain `rustc`, no crates).
//!
//! Usage: measure CMD [ARGS...] [:: CMD [ARGS...]] [::: CMD [ARGS...]]...
//! Runs CMD as a child subreaper, reaps the whole process tree with wait4(2),
//! and prints one line: `<wall_us> <cpu_us> <max_rss_kib> <exit_code>` where
//! cpu = user+sys of every process of the tree and max_rss is the largest
//! peak RSS among them. Linux, 64-bit only.
//!
//! Several commands make one measurement (`create :: start ::: delete`): each
//! starts once the one before it has exited; after `:::` also once every other
//! process of the tree has (a container's init, re-parented here when `create`
//! exits, runs until after `start`). The exit code is the first non-zero one.

use std::process::{Command, Stdio};
use std::time::Instant;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
#[derive(Default)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: i64,
    rest: [i64; 13],
}

extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}

const PR_SET_CHILD_SUBREAPER: i32 = 36;

fn us(t: Timeval) -> i64 {
    t.sec * 1_000_000 + t.usec
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: measure CMD [ARGS...]");
        std::process::exit(2);
    }
    // SAFETY: plain prctl(2) call with integer arguments.
    if unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        eprintln!("measure: PR_SET_CHILD_SUBREAPER: {}", std::io::Error::last_os_error());
        std::process::exit(2);
    }
    // (command, wait for the whole tree after it)
    let mut steps: Vec<(&[String], bool)> = Vec::new();
    let mut rest = &args[..];
    loop {
        let end = rest.iter().position(|a| a == "::" || a == ":::");
        let (cmd, next) = match end {
            Some(i) => (&rest[..i], Some(i)),
            None => (rest, None),
        };
        if cmd.is_empty() {
            eprintln!("measure: empty command");
            std::process::exit(2);
        }
        let all = next.is_none_or(|i| rest[i] == ":::");
        steps.push((cmd, all));
        match next {
            Some(i) => rest = &rest[i + 1..],
            None => break,
        }
    }
    let mut tree = Tree::default();
    let start = Instant::now();
    for (cmd, all) in steps {
        let child = match Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("measure: spawn {}: {e}", cmd[0]);
                std::process::exit(2);
            }
        };
        tree.reap(child.id() as i32, all);
    }
    let wall = start.elapsed().as_micros();
    println!("{wall} {} {} {}", tree.cpu, tree.rss, tree.code);
}

#[derive(Default)]
struct Tree {
    cpu: i64,
    rss: i64,
    code: i32,
}

impl Tree {
    /// Reaps until `main_pid` has exited, or until no process is left when `all`.
    fn reap(&mut self, main_pid: i32, all: bool) {
        let mut main_done = false;
        loop {
            if main_done && !all {
                return;
            }
            let mut status = 0i32;
            let mut ru = Rusage::default();
            // SAFETY: wait4 writes into the two valid, exclusively borrowed out-parameters.
            let pid = unsafe { wait4(-1, &mut status, 0, &mut ru) };
            if pid < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(4) {
                    continue; // EINTR
                }
                return; // ECHILD: the whole tree is reaped
            }
            self.cpu += us(ru.utime) + us(ru.stime);
            self.rss = self.rss.max(ru.maxrss);
            if pid == main_pid {
                main_done = true;
                let code =
                    if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
                if self.code == 0 {
                    self.code = code;
                }
            }
        }
    }
}
