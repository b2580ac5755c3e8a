//! Logging to the `log` FIFO that containerd opens in the bundle (and copies into its own
//! log), in logrus' text format; `-debug` adds debug lines. Writes never block the shim:
//! a full FIFO (or one containerd stopped reading across a restart) drops lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static SINK: OnceLock<Mutex<Option<File>>> = OnceLock::new();
static DEBUG: AtomicBool = AtomicBool::new(false);

/// Open `path` (the bundle's `log` FIFO, or a file) as the log sink.
pub fn init(path: &std::path::Path, debug: bool) {
    DEBUG.store(debug, Ordering::Relaxed);
    let file = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok();
    let _ = SINK.set(Mutex::new(file));
}

fn write(level: &str, msg: &str) {
    let Some(sink) = SINK.get() else { return };
    let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = guard.as_mut() {
        let line = format!(
            "time=\"{}\" level={level} msg={:?} runtime=io.containerd.patina.v2 pid={}\n",
            patina::state::now_rfc3339(),
            msg,
            std::process::id()
        );
        let _ = f.write_all(line.as_bytes());
    }
}

pub fn info(msg: &str) {
    write("info", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn debug(msg: &str) {
    if DEBUG.load(Ordering::Relaxed) {
        write("debug", msg);
    }
}
