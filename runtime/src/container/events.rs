//! `events`: the container's resource usage in runc's JSON format; `--stats` prints one
//! stats object, otherwise a stats line every `--interval` and an "oom" event each
//! time the kernel OOM-kills in the cgroup, until the container stops. Between those it
//! sleeps in poll(2) on init's pidfd and the cgroup's OOM notifications.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use serde::Serialize;

use crate::bail;
use crate::cgroups::oom::OomNotifier;
use crate::cgroups::stats;
use crate::error::{Error, Result};
use crate::state::{StateDir, Status};

/// One line of `events`, its keys in runc's order (`type`, `id`, `data`): consumers and
/// runc's own tests match the line's text, not only its JSON (`{"type":"oom","id":"x"}`).
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
}

pub fn events(root: &Path, id: &str, interval: Duration, stats_once: bool) -> Result<()> {
    let dir = StateDir::new(root, id)?;
    let record = dir.load()?;
    if dir.status(&record) == Status::Stopped {
        bail!(WrongState, "container {id:?} is not running");
    }
    let cg = super::pause::cgroup_of(&record)?;
    let emit = |event: Event<'_>| -> Result<()> {
        let line =
            serde_json::to_string(&event).map_err(|e| Error::msg(format!("encode event: {e}")))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::from(e).wrap("write event"))
    };
    let stats_event = || Event {
        kind: "stats",
        id,
        data: Some(stats::stats(cg)),
    };
    if stats_once {
        return emit(stats_event());
    }
    // Sleep until an OOM, init's exit or the next stats line, whichever comes first.
    // Without notifications (refused by the kernel) OOMs are polled for, as before.
    let (mut notifier, poll_ooms) = match OomNotifier::new(cg) {
        Ok(n) => (n, false),
        Err(e) => {
            crate::logging::debug(&format!("{e}: polling for OOM kills instead"));
            (None, true)
        }
    };
    let Some(init) = super::pidfd_of(record.pid, record.pid_start)? else {
        bail!(WrongState, "container {id:?} is not running");
    };
    let mut ooms = stats::oom_kills(cg);
    let mut next_stats = Instant::now();
    loop {
        let now_ooms = stats::oom_kills(cg);
        for _ in ooms..now_ooms {
            emit(Event {
                kind: "oom",
                id,
                data: None,
            })?;
        }
        ooms = now_ooms;
        if dir.status(&record) == Status::Stopped {
            return Ok(());
        }
        if Instant::now() >= next_stats {
            emit(stats_event())?;
            next_stats = Instant::now() + interval;
        }
        let deadline = match poll_ooms {
            true => next_stats.min(Instant::now() + Duration::from_millis(50)),
            false => next_stats,
        };
        wait_for_news(&init, notifier.as_mut(), deadline)?;
    }
}

/// Blocks until init exits, the cgroup reports an OOM, or `deadline`.
fn wait_for_news(
    init: &OwnedFd,
    notifier: Option<&mut OomNotifier>,
    deadline: Instant,
) -> Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    // Round up: a poll that wakes a hair early would only loop once more.
    let ms = u16::try_from(left.as_millis() + 1).unwrap_or(u16::MAX);
    let mut fds = vec![PollFd::new(init.as_fd(), PollFlags::POLLIN)];
    if let Some(n) = &notifier {
        fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
    }
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(Error::os(e, "wait for events (poll)")),
    }
    if let Some(n) = notifier {
        n.drain();
    }
    Ok(())
}

/// Go-style durations as runc takes them: `5s`, `100ms`, `1m30s`, `2h`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || {
        Error::msg(format!(
            "--interval {text:?}: expected a duration like 5s or 100ms"
        ))
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let value: f64 = rest[..split].parse().map_err(|_| bad())?;
        let unit_end = rest[split..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| split + i);
        let scale = match &rest[split..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(value * scale);
        rest = &rest[unit_end..];
    }
    if total.is_zero() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["", "5", "x", "0s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
