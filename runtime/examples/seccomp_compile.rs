//! Times `seccomp::compile` (what `create` runs on config.json's linux.seccomp), for
//! docs/security.md's figures:
//!
//!     cargo run --release -p patina --example seccomp_compile -- bench/podman-seccomp-x86_64.json [N]
//!
//! Prints the first call (cold tables, as in a fresh `patina create`), the median and
//! 90th percentile of N more, and the program's size.

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: seccomp_compile PROFILE.json [N]");
    let n: usize = args.next().map_or(2000, |s| s.parse().expect("N"));
    let text = std::fs::read_to_string(&path).expect("read the profile");
    let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(&text).expect("a profile");
    let once = || {
        let t = Instant::now();
        let s = patina::seccomp::compile(&spec).expect("compiles");
        let d = t.elapsed();
        (std::hint::black_box(s), d)
    };
    let (first, cold) = once();
    let mut times: Vec<Duration> = (0..n).map(|_| once().1).collect();
    times.sort();
    let pct = |p: usize| times[(times.len() - 1) * p / 100];
    println!(
        "first {:.1} us, median {:.1} us, p90 {:.1} us over {n}; {} instructions",
        cold.as_secs_f64() * 1e6,
        pct(50).as_secs_f64() * 1e6,
        pct(90).as_secs_f64() * 1e6,
        first.instructions()
    );
}
