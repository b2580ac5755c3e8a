//! Docker 20.10 (Debian `docker.io`) with `runtimes.patina` driving the runtime under test
//! (through containerd and containerd-shim-runc-v2), compared step by step with Debian's runc
//! configured as runtime `ref-runc` (see `integration::engines`).
//!
//! Against patina, every scenario needs (docker always sends them):
//! `linux.resources` — cgroups (issue 3) — and `linux.seccomp` — docker's default profile
//! (issue 4); docker also sends `linux.sysctl` only when asked (not here).
//!
//! ```text
//! PATINA_RUNTIME=/usr/sbin/runc cargo test -p integration --test engine_docker
//! ```

use integration::engines::docker::engine;
use integration::engines::docker_like::{self, ExecScenario};

#[test]
fn engine_docker_run_echo_and_exit_code() {
    docker_like::run_echo_and_exit_code(engine());
}

#[test]
fn engine_docker_run_tty() {
    docker_like::run_tty(engine());
}

#[test]
fn engine_docker_exec_top_update_pause_stop() {
    let scenario = ExecScenario {
        top_and_update: true,
        // Long enough for a slow machine (the TCG guests) to finish the stop within it;
        // honoured at once anyway: the counter traps TERM.
        stop_grace_secs: 10,
    };
    docker_like::exec_pause_stop(engine(), scenario);
}

#[test]
fn engine_docker_volumes() {
    docker_like::volumes(engine());
}
