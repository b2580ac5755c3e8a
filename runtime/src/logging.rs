//! `--log`, `--log-format` and `--debug`: where messages go. containerd's shim reads the
//! last error from the log file in JSON lines (`{"level","msg","time"}`), so the real
//! cause of a failure reaches the engine.

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
    to_file("error", msg);
}

pub fn warn(msg: &str) {
    if config().file.is_none() {
        let _ = writeln!(std::io::stderr(), "patina: warning: {msg}");
    }
    to_file("warning", msg);
}

pub fn debug(msg: &str) {
    let config = config();
    if !config.debug {
        return;
    }
    if config.file.is_none() {
        let _ = writeln!(std::io::stderr(), "patina: debug: {msg}");
    }
    to_file("debug", msg);
}

fn to_file(level: &str, msg: &str) {
    let config = config();
    let Some(path) = &config.file else { return };
    let line = format_line(config.format, level, msg, &crate::state::now_rfc3339());
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
}
