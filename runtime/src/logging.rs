//! `--log`, `--log-format` and `--debug`: where messages go. containerd's shim reads the
//! last error from the log file in JSON lines (`{"level","msg","time"}`), so the real
//! cause of a failure reaches the engine; patina's error lines add `"kind"` (and
//! `"field"` for a config field or feature), which the patina shim maps onto gRPC codes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug)]
struct Config {
    file: Option<PathBuf>,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn init(file: Option<PathBuf>, format: Format, debug: bool) {
    let _ = CONFIG.set(Config {
        file,
        format,
        debug,
    });
}

fn config() -> &'static Config {
    CONFIG.get_or_init(|| Config {
        file: None,
        format: Format::Text,
        debug: false,
    })
}

pub fn error(msg: &str) {
    let _ = writeln!(std::io::stderr(), "patina: {msg}");
    to_file("error", msg, None);
}

/// The command's failure: one line on stderr, and in the log with its kind.
pub fn failure(err: &crate::Error) {
    let msg = err.to_string();
    let _ = writeln!(std::io::stderr(), "patina: {msg}");
    to_file("error", &msg, Some(err));
}

pub fn warn(msg: &str) {
    if config().file.is_none() {
        let _ = writeln!(std::io::stderr(), "patina: warning: {msg}");
    }
    to_file("warning", msg, None);
}

pub fn debug(msg: &str) {
    let config = config();
    if !config.debug {
        return;
    }
    if config.file.is_none() {
        let _ = writeln!(std::io::stderr(), "patina: debug: {msg}");
    }
    to_file("debug", msg, None);
}

/// Create the `--log` file if it does not exist yet. One that exists is left alone: a
/// FIFO would block this open until a reader came, and again for the first line.
pub fn create_log_file() -> crate::error::Result<()> {
    let Some(path) = &config().file else {
        return Ok(());
    };
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| crate::Error::from(e).wrap(format!("--log {:?}", path.display())))
}

fn to_file(level: &str, msg: &str, err: Option<&crate::Error>) {
    let config = config();
    let Some(path) = &config.file else { return };
    let time = crate::state::now_rfc3339();
    let line = match err {
        Some(err) => format_error_line(config.format, err, &time),
        None => format_line(config.format, level, msg, &time),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut file) = file {
        let _ = file.write_all(line.as_bytes());
    }
}

pub fn format_line(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let mut line =
                serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string();
            line.push('\n');
            line
        }
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

/// An error line: as [`format_line`], plus the kind (and field) in JSON.
pub fn format_error_line(format: Format, err: &crate::Error, time: &str) -> String {
    let msg = err.to_string();
    match format {
        Format::Json => {
            let mut v = serde_json::json!({
                "level": "error", "msg": msg, "time": time, "kind": err.kind().as_str(),
            });
            if let Some(subject) = err.subject() {
                v["field"] = subject.into();
            }
            v.to_string() + "\n"
        }
        Format::Text => format_line(format, "error", &msg, time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_level_msg_and_time() {
        let line = format_line(Format::Json, "error", "mount \"proc\": EPERM", "T");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "mount \"proc\": EPERM");
        assert_eq!(v["time"], "T");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn error_lines_carry_the_kind_and_field() {
        let err = crate::err!(InvalidConfig, "root.path: missing");
        let line = format_error_line(Format::Json, &err, "T");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["kind"], "invalid_config");
        assert_eq!(v["field"], "root.path");
        assert_eq!(v["msg"], "root.path: missing");
        let line = format_error_line(Format::Json, &crate::err!(NotFound, "gone"), "T");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["kind"], "not_found");
        assert!(v.get("field").is_none());
    }
}
