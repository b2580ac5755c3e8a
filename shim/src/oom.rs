//! TaskOOM: watching a container's memory cgroup for OOMs, as containerd's runc shim
//! does, with the runtime library's notifier (`patina::cgroups::oom`): on cgroup v1 every
//! notification of its eventfd is an OOM; on v2 the `oom_kill` count of `memory.events`
//! rises. The watcher ends by itself when the cgroup goes away.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use patina::cgroups::oom::OomNotifier;

use crate::events::Publisher;
use crate::proto::TaskOOM;

/// Start watching the memory cgroup of `pid` (the container's init) in a thread.
pub fn watch(container_id: &str, pid: u32, publisher: Arc<Publisher>) {
    let result = crate::stats::cgroup_of(pid)
        .map_err(|e| e.to_string())
        .and_then(|cg| {
            let dir = match cg.is_v2() {
                true => cg.unified.clone(),
                false => cg.v1_dir("memory").map(Path::to_path_buf),
            };
            let dir = dir.ok_or("no memory cgroup")?;
            start(dir, cg.is_v2(), container_id.to_owned(), publisher)
        });
    if let Err(e) = result {
        crate::log::warn(&format!("oom watch for {container_id}: {e}"));
    }
}

fn oom_kills(events: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(events).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

fn start(dir: PathBuf, v2: bool, id: String, publisher: Arc<Publisher>) -> Result<(), String> {
    let notifier = match v2 {
        true => OomNotifier::v2(&dir),
        false => OomNotifier::v1(&dir),
    };
    let mut notifier = notifier.map_err(|e| e.to_string())?;
    let file = dir.join(if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    });
    let mut seen = oom_kills(&file).unwrap_or(0);
    crate::ttrpc::spawn("oom", move || loop {
        if notifier.wait().is_err() {
            break;
        }
        if !notifier.drain() {
            continue; // woken for nothing
        }
        // The last notification of either kind comes with the cgroup's removal.
        if !file.exists() {
            break;
        }
        let ooms = match v2 {
            // v1: each eventfd notification is an OOM (killed or not).
            false => true,
            true => oom_kills(&file).is_some_and(|now| std::mem::replace(&mut seen, now) < now),
        };
        if ooms {
            publisher.publish(&TaskOOM {
                container_id: id.clone(),
            });
        }
    });
    Ok(())
}
