//! Tiny measurement wrapper for bench/run.sh (built with plain `rustc`, no crates).
//!
//! Usage: measure CMD [ARGS...]
//! Runs CMD as a child subreaper, reaps the whole process tree with wait4(2),
//! and prints one line: `<wall_us> <cpu_us> <max_rss_kib> <exit_code>` where
//! cpu = user+sys of every process of the tree and max_rss is the largest
//! peak RSS among them. Linux, 64-bit only.

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
    let start = Instant::now();
    let child = match Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("measure: spawn {}: {e}", args[0]);
            std::process::exit(2);
        }
    };
    let main_pid = child.id() as i32;
    let (mut cpu, mut rss, mut code) = (0i64, 0i64, -1i32);
    loop {
        let mut status = 0i32;
        let mut ru = Rusage::default();
        // SAFETY: wait4 writes into the two valid, exclusively borrowed out-parameters.
        let pid = unsafe { wait4(-1, &mut status, 0, &mut ru) };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(4) {
                continue; // EINTR
            }
            break; // ECHILD: the whole tree is reaped
        }
        cpu += us(ru.utime) + us(ru.stime);
        rss = rss.max(ru.maxrss);
        if pid == main_pid {
            code = if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
        }
    }
    let wall = start.elapsed().as_micros();
    println!("{wall} {cpu} {rss} {code}");
}
