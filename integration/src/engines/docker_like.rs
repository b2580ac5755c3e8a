//! Scenarios shared by the engines with docker's command line (docker and podman): the
//! same steps, spelled with each CLI's name, so that both engines check the runtime the
//! same way and a change to a scenario reaches both.

use std::time::{Duration, Instant};

use super::{
    counter_motion, counter_resumed, gone, tty_summary, verify, wait_counter, Engine, Rt, Step,
    COUNTER, TTY_CHECK,
};
use crate::Output;

/// An engine driven through a docker-compatible command line.
pub trait DockerLike: Engine {
    /// The command, as the transcripts name it ("docker", "podman").
    fn cli_name(&self) -> &'static str;
    /// `<cli> <args>` against the engine's private instance.
    fn cli(&self, args: &[&str]) -> Output;
    /// `<cli> run <engine options for rt> <extra> IMAGE <cmd>`.
    fn run(&self, rt: &Rt, extra: &[&str], cmd: &[&str]) -> Output;
    /// The same `run` on a terminal of `rows` x `cols`.
    fn run_tty(&self, rt: &Rt, extra: &[&str], cmd: &[&str], rows: u16, cols: u16) -> Output;
    /// `<cli> inspect -f FORMAT NAME`, trimmed.
    fn inspect(&self, name: &str, format: &str) -> Option<String>;
    /// Names of existing containers called exactly `name` (empty when none).
    fn containers_named(&self, name: &str) -> String;
}

/// `run --rm` of `echo hi` and of `exit 3`: output, exit code, nothing left.
pub fn run_echo_and_exit_code(e: &impl DockerLike) {
    let cli = e.cli_name();
    let (echo, exit3) = (
        format!("{cli} run --rm echo hi"),
        format!("{cli} run --rm sh -c 'exit 3'"),
    );
    verify(
        e,
        "echo",
        &[
            (&echo, "ok"),
            ("stdout", "hi"),
            (&exit3, "exit 3"),
            ("containers left by --rm", ""),
        ],
        |rt, name, t| -> Step {
            let out = e.run(rt, &["--rm", "--name", name], &["echo", "hi"]);
            let stdout = t.ok(&echo, &out)?;
            t.note("stdout", stdout.trim());
            let out = e.run(rt, &["--rm", "--name", name], &["sh", "-c", "exit 3"]);
            t.exit(&exit3, &out);
            t.note("containers left by --rm", e.containers_named(name));
            Ok(())
        },
    );
}

/// `run --rm -it` on a 31x107 terminal: the container sees a pty of that size.
pub fn run_tty(e: &impl DockerLike) {
    let step = format!("{} run --rm -it (pty 31x107)", e.cli_name());
    verify(
        e,
        "tty",
        &[
            (&step, "exit 0"),
            ("tty; stty size", "/dev/pts/*;size=31 107"),
        ],
        |rt, name, t| -> Step {
            let extra = ["--rm", "-it", "--name", name];
            let out = e.run_tty(rt, &extra, &["sh", "-c", TTY_CHECK], 31, 107);
            t.exit(&step, &out);
            t.note("tty; stty size", tty_summary(&out.stdout));
            Ok(())
        },
    );
}

/// The memory limit as the container sees it (cgroup v1, else v2).
const MEMORY_LIMIT: &str =
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";

/// What [`exec_pause_stop`] covers beyond exec, pause and stop.
pub struct ExecScenario {
    /// Also `top` (the runtime's `ps`) and `update --memory` seen from inside.
    pub top_and_update: bool,
    /// `stop -t N`: the counter traps TERM and exits 7 well within it.
    pub stop_grace_secs: u64,
}

/// A counter container: exec (output, exit code), [top, update], pause (frozen),
/// unpause (advancing), stop (SIGTERM honoured, exit 7), init gone.
pub fn exec_pause_stop(e: &impl DockerLike, scenario: ExecScenario) {
    let cli = e.cli_name();
    let s = |what: &str| format!("{cli} {what}");
    let stop = s(&format!("stop -t {}", scenario.stop_grace_secs));
    let mut expected: Vec<(String, &str)> = vec![
        (s("run -d counter"), "ok"),
        ("counter started".into(), "true"),
        (s("exec"), "ok"),
        ("exec output".into(), "exec-ok pid1=sh"),
        (s("exec sh -c 'exit 5'"), "exit 5"),
    ];
    if scenario.top_and_update {
        expected.extend([
            (s("top"), "ok"),
            ("top lists the init".into(), "true"),
            (s("update --memory 64m"), "ok"),
            ("memory limit seen inside".into(), "67108864"),
        ]);
    }
    expected.extend([
        (s("pause"), "ok"),
        ("status after pause".into(), "paused"),
        ("counter while paused".into(), "frozen"),
        (s("unpause"), "ok"),
        ("counter after unpause".into(), "advancing"),
        (stop.clone(), "ok"),
        ("stopped by SIGTERM within the grace period".into(), "true"),
        ("exit code (trap TERM: exit 7)".into(), "7"),
        ("init gone".into(), "true"),
    ]);
    let expected: Vec<(&str, &str)> = expected.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    verify(e, "counter", &expected, |rt, name, t| -> Step {
        t.ok(
            &s("run -d counter"),
            &e.run(rt, &["-d", "--name", name], &["sh", "-c", COUNTER]),
        )?;
        let pid: i32 = e
            .inspect(name, "{{.State.Pid}}")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        t.note("counter started", wait_counter(pid).to_string());
        let probe = "echo exec-ok pid1=$(cat /proc/1/comm)";
        let stdout = t.ok(&s("exec"), &e.cli(&["exec", name, "sh", "-c", probe]))?;
        t.note("exec output", stdout.trim());
        let out = e.cli(&["exec", name, "sh", "-c", "exit 5"]);
        t.exit(&s("exec sh -c 'exit 5'"), &out);
        if scenario.top_and_update {
            let top = t.ok(&s("top"), &e.cli(&["top", name, "-o", "pid,args"]))?;
            let listed = top.lines().skip(1).any(|l| {
                l.split_whitespace().next() == Some(pid.to_string().as_str())
                    && l.contains("sh -c trap")
            });
            t.note("top lists the init", listed.to_string());
            let update = ["update", "--memory", "64m", "--memory-swap", "128m", name];
            t.ok(&s("update --memory 64m"), &e.cli(&update))?;
            let out = e.cli(&["exec", name, "sh", "-c", MEMORY_LIMIT]);
            t.note("memory limit seen inside", out.stdout.trim());
        }
        t.ok(&s("pause"), &e.cli(&["pause", name]))?;
        let status = e.inspect(name, "{{.State.Status}}").unwrap_or_default();
        t.note("status after pause", status);
        t.note("counter while paused", counter_motion(pid));
        t.ok(&s("unpause"), &e.cli(&["unpause", name]))?;
        t.note("counter after unpause", counter_resumed(pid));
        let start = Instant::now();
        let grace = scenario.stop_grace_secs.to_string();
        t.ok(&stop, &e.cli(&["stop", "-t", &grace, name]))?;
        let within = start.elapsed() < Duration::from_millis(900 * scenario.stop_grace_secs);
        t.note(
            "stopped by SIGTERM within the grace period",
            within.to_string(),
        );
        let code = e.inspect(name, "{{.State.ExitCode}}").unwrap_or_default();
        t.note("exit code (trap TERM: exit 7)", code);
        t.note("init gone", gone(pid, Duration::from_secs(5)).to_string());
        Ok(())
    });
}

/// Volumes as users give them: `-v` with `:ro`, a propagation mode and `z` (the engine
/// relabels, or ignores it without SELinux), and `--mount type=bind` with
/// bind-propagation. The runtime must take every option the engine puts in
/// mounts[].options (an unknown one on a bind is refused by name).
pub fn volumes(e: &impl DockerLike) {
    let cli = e.cli_name();
    let host = e.private().path("volume");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(format!("{host}/f"), "from the host\n").unwrap();
    let run = format!(
        "{cli} run --rm -v HOST:/ro:ro,rprivate,z --mount type=bind,bind-propagation=private"
    );
    verify(
        e,
        "volumes",
        &[
            (&run, "ok"),
            ("read", "from the host"),
            ("write to the :ro volume", "refused"),
            ("write to the --mount volume", "written"),
            ("seen on the host", "true"),
        ],
        |rt, name, t| -> Step {
            let _ = std::fs::remove_file(format!("{host}/w"));
            let ro = format!("{host}:/ro:ro,rprivate,z");
            let mount = format!("type=bind,src={host},dst=/rw,bind-propagation=private");
            let script = "cat /ro/f; (touch /ro/x 2>/dev/null && echo writable) || echo refused; \
                          (echo w > /rw/w && echo written) || echo refused";
            let extra = ["--rm", "--name", name, "-v", &ro, "--mount", &mount];
            let out = e.run(rt, &extra, &["sh", "-c", script]);
            let stdout = t.ok(&run, &out)?;
            let mut lines = stdout.lines();
            t.note("read", lines.next().unwrap_or_default());
            t.note("write to the :ro volume", lines.next().unwrap_or_default());
            t.note(
                "write to the --mount volume",
                lines.next().unwrap_or_default(),
            );
            let seen = std::path::Path::new(&format!("{host}/w")).exists();
            t.note("seen on the host", seen.to_string());
            Ok(())
        },
    );
}
