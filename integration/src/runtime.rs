//! Locating the runtime under test and running commands with a timeout.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Default time limit for one runtime invocation.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The runtime binary under test: `$PATINA_RUNTIME`, else `target/<profile>/patina`
/// found by walking up from the test executable (`target/<profile>/deps/<test>`).
pub fn runtime_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("PATINA_RUNTIME").filter(|p| !p.is_empty()) {
            // Commands run with the test dir as cwd: make a relative path absolute.
            // cargo runs tests in the package dir; also accept paths relative
            // to the workspace root (e.g. `target/debug/patina`).
            let p = PathBuf::from(p);
            if p.is_relative() && !p.exists() {
                let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&p);
                if ws.exists() {
                    return std::fs::canonicalize(&ws).unwrap_or(ws);
                }
            }
            return std::path::absolute(&p).unwrap_or(p);
        }
        let exe = std::env::current_exe().expect("current_exe");
        for dir in exe.ancestors().skip(1).take(3) {
            let cand = dir.join("patina");
            if cand.is_file() {
                return cand;
            }
        }
        panic!(
            "no patina binary found above {} (build it with `cargo build -p patina`, \
             or set PATINA_RUNTIME=/usr/sbin/runc)",
            exe.display()
        )
    })
}

/// True when the runtime under test is runc (its file name contains "runc").
/// Used only where patina deliberately goes beyond runc (`// beyond runc:`).
pub fn is_runc() -> bool {
    runtime_path()
        .file_name()
        .map(|n| n.to_string_lossy().contains("runc"))
        .unwrap_or(false)
}

/// Result of one command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code, when the command exited normally.
    pub code: Option<i32>,
    /// Terminating signal, when it was killed by one.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.success(), "command failed: {self:#?}");
        self
    }

    /// Panics unless the command exited with a non-zero code (a signal is a
    /// crash, not a clean failure).
    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "command should have failed cleanly: {self:#?}"
        );
        self
    }

    /// Non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr redirected to files
/// in `scratch` (never pipes: a detached container inherits the runtime's stdio
/// and would hold a pipe open). Waits for the command itself only, at most
/// `timeout`; on timeout it is killed and the test fails.
#[track_caller]
pub fn exec(cmd: &mut Command, scratch: &Path, timeout: Duration) -> Output {
    try_exec(cmd, scratch, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`exec`] without panicking (for teardown).
pub fn try_exec(cmd: &mut Command, scratch: &Path, timeout: Duration) -> Result<Output, String> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out_path = scratch.join(format!("cmd-{n}.out"));
    let err_path = scratch.join(format!("cmd-{n}.err"));
    let out = File::create(&out_path).map_err(|e| format!("create {}: {e}", out_path.display()))?;
    let err = File::create(&err_path).map_err(|e| format!("create {}: {e}", err_path.display()))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let mut child = spawn_retrying_busy(cmd).map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let start = Instant::now();
    let mut nap = Duration::from_micros(500);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| format!("wait {cmd:?}: {e}"))? {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{cmd:?} timed out after {timeout:?}; stdout: {:?} stderr: {:?}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            ));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(Output {
        code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into(),
    })
}

/// `spawn`, retried while the program is "busy" (ETXTBSY): a test that just wrote an
/// executable (a private copy of the runtime) can see that for a moment, because a
/// parallel test's fork inherited the write descriptor until that child's exec.
pub fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let start = Instant::now();
    loop {
        match cmd.spawn() {
            Err(e)
                if e.raw_os_error() == Some(libc::ETXTBSY)
                    && start.elapsed() < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => return other,
        }
    }
}

/// Polls `f` until it returns `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
