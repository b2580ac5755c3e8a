//! state.json as `patina state/start/kill/exec/delete` read it: `Record` deserialised,
//! then the status derived from it (init's pid and start time in /proc, the frozen
//! cgroup, the exec fifo), the OCI state document written from it, and what `exec`
//! takes from it (the compiled seccomp filter, or a profile an older patina stored).
//! Checks: no panic; a record that loads saves and loads again to the same document (what
//! `save` writes, `load` must read). The first byte picks the state dir (with or without
//! exec.fifo) and whether the record's pid is replaced by this live process's, so that
//! the frozen-cgroup and fifo branches run too.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use patina::state::{Record, StateDir, Status, EXEC_FIFO};

/// Two state dirs on the private scratch tmpfs: `created` holds an exec fifo, `running`
/// does not.
fn dirs() -> &'static (StateDir, StateDir) {
    static D: OnceLock<(StateDir, StateDir)> = OnceLock::new();
    D.get_or_init(|| {
        let root: PathBuf = patina_fuzz::scratch().join("state");
        let created = StateDir::new(&root, "created").unwrap();
        let running = StateDir::new(&root, "running").unwrap();
        for d in [&created, &running] {
            std::fs::create_dir_all(&d.path).unwrap();
        }
        // status() only asks whether it exists.
        std::fs::write(created.path.join(EXEC_FIFO), b"").unwrap();
        (created, running)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, json)) = data.split_first() else {
        return;
    };
    let Ok(mut record) = serde_json::from_slice::<Record>(json) else {
        return;
    };
    let (created, running) = dirs();
    let dir = if sel & 1 != 0 { created } else { running };
    if sel & 2 != 0 {
        let me = std::process::id() as i32;
        let (start, _) = patina::state::proc_stat(me).expect("own /proc/self/stat");
        record.pid = me;
        record.pid_start = start;
    }
    let status = dir.status(&record);
    if sel & 2 != 0 && record.cgroup.is_none() {
        let want = if sel & 1 != 0 {
            Status::Created
        } else {
            Status::Running
        };
        assert_eq!(status, want);
    }
    let doc = serde_json::to_string_pretty(&record.oci_state(status)).expect("state serialises");
    assert!(doc.contains(&format!("\"status\": \"{status}\"")));

    // exec: the compiled filter, or an old record's profile compiled now.
    if let (None, Some(profile)) = (&record.seccomp_filter, &record.seccomp) {
        let _ = patina::seccomp::compile(profile);
    }

    // save then load: the same record (compared as JSON documents: maps have no order).
    let saved = serde_json::to_vec(&record).expect("a record serialises");
    let loaded: Record = serde_json::from_slice(&saved)
        .unwrap_or_else(|e| panic!("state.json written by save does not load: {e}"));
    let again = serde_json::to_vec(&loaded).unwrap();
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&saved).unwrap(),
        serde_json::from_slice(&again).unwrap(),
    );
    assert_eq!(a, b, "a saved record loads differently");
});
