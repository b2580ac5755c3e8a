//! Lifecycle hooks of config.md "POSIX-platform Hooks": each gets the container state
//! on stdin, its own argv and environment, and is killed past its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Context, Error, Result};

/// Run hooks in order; the first failure stops the rest (for the hooks whose failure
/// fails the operation; the caller decides whether to only warn). A hook without `env`
/// inherits the runtime's environment, as runc's do.
pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    run_all_with_env(kind, hooks, state_json, None)
}

/// [`run_all`] for the hooks that run in the container (createContainer,
/// startContainer): a hook without `env` gets the container process' environment.
pub fn run_all_with_env(
    kind: &str,
    hooks: &[Hook],
    state_json: &[u8],
    default_env: Option<&[String]>,
) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        run(hook, state_json, default_env).with_context(|| describe(kind, i, hook))?;
    }
    Ok(())
}

/// How a failed hook is named: runc's "error running hook" (tools and runc's own suite
/// look for it), then which hook.
fn describe(kind: &str, i: usize, hook: &Hook) -> String {
    format!(
        "error running hook #{i} ({kind}, {:?})",
        hook.path().display()
    )
}

/// Run hooks whose failure the spec says to log and pass over (poststart, poststop).
pub fn run_all_warn(kind: &str, hooks: &[Hook], state_json: &[u8]) {
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run(hook, state_json, None) {
            crate::logging::warn(&format!("{}: {e}", describe(kind, i, hook)));
        }
    }
}

/// One hook. Its environment is its `env`; without one, `default_env`, or else the
/// runtime's own (an empty `env: []` is an empty environment).
pub fn run(hook: &Hook, state_json: &[u8], default_env: Option<&[String]>) -> Result<()> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    let env = match (hook.env().as_deref(), default_env) {
        (Some(env), _) => Some(env),
        (None, default) => default,
    };
    if let Some(env) = env {
        cmd.env_clear();
        for entry in env {
            if let Some((key, value)) = entry.split_once('=') {
                cmd.env(key, value);
            }
        }
    }
    cmd.stdin(Stdio::piped());
    // A hook gets stdio and nothing else: not the descriptors the runtime inherited from
    // its caller (a shim's listening socket), nor a container's preserved ones.
    // SAFETY: runs in the forked child before exec and makes one async-signal-safe
    // syscall; CLOEXEC (not close) keeps the pipe std uses to report a failed exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let status = match hook.timeout() {
        Some(secs) if secs <= 0 => {
            return Err(Error::new(
                crate::Kind::InvalidConfig,
                format!("timeout {secs}: must be positive"),
            ))
        }
        Some(secs) => wait_with_timeout(&mut child, Duration::from_secs(secs as u64))?,
        None => child.wait().context("wait")?,
    };
    if status.success() {
        Ok(())
    } else {
        Err(Error::msg(exit_description(status)))
    }
}

/// "exited with status 3", or "killed by SIGSYS (bad system call)": the signal's
/// name and, as runc words it, its lower-case description.
fn exit_description(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(signo) = status.signal() else {
        return format!("exited with {status}");
    };
    let name = nix::sys::signal::Signal::try_from(signo).map_or("signal", |s| s.as_str());
    // SAFETY: strsignal returns a pointer to a static or thread-local string, read at
    // once; the runtime is single-threaded.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(signo)) };
    format!(
        "killed by {name} ({})",
        text.to_string_lossy().to_lowercase()
    )
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().context("wait")? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::msg(format!(
                "timed out after {}s and was killed",
                limit.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn state_arrives_on_stdin_with_args_and_env() {
        let out = std::env::temp_dir().join(format!("patina-hook-{}", std::process::id()));
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","echo \"$0 $1 $X\" > {0}; cat >> {0}","first"],"env":["X=y"]}}"#,
            out.display()
        ));
        run(&h, b"{\"id\":\"c\"}", None).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert_eq!(got, "first  y\n{\"id\":\"c\"}");
    }

    #[test]
    fn failure_and_timeout_are_errors() {
        let err = run(&hook(r#"{"path":"/bin/false"}"#), b"", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exit status: 1"), "{err}");
        let err = run(
            &hook(r#"{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}"#),
            b"",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("timed out"), "{err}");
    }
}
