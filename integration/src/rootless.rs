//! Rootless tests: a throwaway user with its own /etc/subuid and /etc/subgid ranges, and
//! the config a rootless runtime is given.
//!
//! The user is made by `useradd` (which gives it fresh subordinate ranges) and removed by
//! `userdel` (which removes them too) when the guard drops, on failure as well; the drop
//! checks that no line names it any more.

use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static COUNTER: AtomicU64 = AtomicU64::new(0);
/// useradd and userdel lock /etc/passwd: one at a time in this process (another process
/// holding the lock is waited for by retrying).
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A test user; removed with its group and subordinate ranges on drop.
#[derive(Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// First id and count of its /etc/subuid range.
    pub subuid: (u32, u32),
    pub subgid: (u32, u32),
}

impl TestUser {
    pub fn create() -> TestUser {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("prl{}x{n}", std::process::id());
        accounts(&["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", &name])
            .unwrap_or_else(|e| panic!("{e}"));
        // From here on the guard removes the user, whatever fails next.
        let mut user = TestUser {
            name,
            uid: 0,
            gid: 0,
            subuid: (0, 0),
            subgid: (0, 0),
        };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, &user.name])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        user.uid = id("-u");
        user.gid = id("-g");
        user.subuid = sub_range("/etc/subuid", &user.name);
        user.subgid = sub_range("/etc/subgid", &user.name);
        // useradd reuses the uid of a user just removed: if logind is still finalizing
        // that one (another process's, or a test's that failed), its RemoveIPC sweep would
        // delete what this user is about to own in /dev/shm (UserManager's drop).
        let free = crate::runtime::wait_for(Duration::from_secs(60), || {
            (!logind_knows(user.uid)).then_some(())
        });
        assert!(
            free.is_some(),
            "uid {} of the new test user {}: logind still finalizes its previous owner after 60 s",
            user.uid,
            user.name
        );
        user
    }

    /// `setpriv` arguments that run a program as this user (no supplementary groups, the
    /// environment kept but HOME and XDG_RUNTIME_DIR, which are root's).
    pub fn setpriv(&self) -> Vec<String> {
        vec![
            "/usr/bin/setpriv".into(),
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--clear-groups".into(),
            "/usr/bin/env".into(),
            "-u".into(),
            "XDG_RUNTIME_DIR".into(),
            "HOME=/".into(),
        ]
    }

    /// chown -R of `path` to the user.
    pub fn give(&self, path: &std::path::Path) {
        let st = Command::new("chown")
            .args(["-R", "-h", &format!("{}:{}", self.uid, self.gid)])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "chown -R {}", path.display());
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // A process of the user still running (a failed test's) makes userdel refuse:
        // then -f, and the leak is reported rather than kept.
        let removed = accounts(&["userdel", &self.name])
            .or_else(|e| accounts(&["userdel", "-f", &self.name]).map_err(|f| format!("{e}; {f}")));
        let mut leaks: Vec<String> = removed.err().into_iter().collect();
        for file in ["/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.split(':').next() == Some(&self.name))
            {
                leaks.push(format!("{file} still names {}", self.name));
            }
        }
        if leaks.is_empty() {
            return;
        }
        // Never a panic while unwinding (that would abort the whole test binary).
        if std::thread::panicking() {
            eprintln!("test user {}: {}", self.name, leaks.join("; "));
        } else {
            panic!("test user {}: {}", self.name, leaks.join("; "));
        }
    }
}

/// Runs useradd/userdel, retrying while another process holds the account files' lock.
fn accounts(argv: &[&str]) -> Result<(), String> {
    let _one = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .map_err(|e| format!("{argv:?}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("lock") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        return Err(format!("{argv:?}: {} {}", out.status, err.trim()));
    }
}

fn sub_range(file: &str, name: &str) -> (u32, u32) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && f[0] == name).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .next()
        .unwrap_or_else(|| {
            panic!("useradd gave {name} no range in {file} (SUB_UID_COUNT in /etc/login.defs)")
        })
}

/// What `runc spec --rootless` does to a config: a user namespace with `uid`/`gid` mapped
/// to root (plus `ranges`, container id 1 up, from the subordinate ranges), no network or
/// cgroup namespace, /sys bound from the host, no uid=/gid= options, no resources.
pub fn make_rootless(cfg: &mut Value, user: &TestUser, with_ranges: bool) {
    let linux = &mut cfg["linux"];
    let ns = linux["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| !matches!(n["type"].as_str(), Some("network" | "cgroup" | "user")));
    ns.push(json!({ "type": "user" }));
    let map = |own: u32, (start, count): (u32, u32)| {
        let mut m = vec![json!({ "containerID": 0, "hostID": own, "size": 1 })];
        if with_ranges {
            m.push(json!({ "containerID": 1, "hostID": start, "size": count }));
        }
        Value::Array(m)
    };
    linux["uidMappings"] = map(user.uid, user.subuid);
    linux["gidMappings"] = map(user.gid, user.subgid);
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
    for m in cfg["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys" {
            *m = json!({ "destination": "/sys", "type": "none", "source": "/sys",
                         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
        } else if let Some(o) = m["options"].as_array_mut() {
            o.retain(|o| {
                !o.as_str()
                    .is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid="))
            });
        }
    }
}

/// The user's own systemd (user@<uid>.service, with its D-Bus at /run/user/<uid>/bus), as
/// a login or lingering starts it: started by `loginctl enable-linger`, stopped with
/// `disable-linger` on drop (before the [`TestUser`] goes: userdel refuses a user with
/// processes). Needs systemd as PID 1 (the systemd guest).
pub struct UserManager {
    name: String,
    pub uid: u32,
}

impl UserManager {
    /// Lingers `user` and waits (at most 180 s: a busy TCG guest) until its manager
    /// serves its bus. One start at a time in this process: two managers starting at once
    /// under TCG took more than 90 s.
    pub fn start(user: &TestUser) -> UserManager {
        static ONE: Mutex<()> = Mutex::new(());
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let m = UserManager {
            name: user.name.clone(),
            uid: user.uid,
        };
        let st = Command::new("loginctl")
            .args(["enable-linger", &user.name])
            .status()
            .expect("run loginctl");
        assert!(st.success(), "loginctl enable-linger {}: {st}", user.name);
        let unit = format!("user@{}.service", user.uid);
        let up = crate::runtime::wait_for(Duration::from_secs(180), || {
            let state = Command::new("systemctl")
                .args(["is-active", &unit])
                .output()
                .ok()?;
            let active = String::from_utf8_lossy(&state.stdout).trim() == "active";
            (active && std::path::Path::new(&m.bus()).exists()).then_some(())
        });
        assert!(up.is_some(), "{unit} did not start within 180 s");
        m
    }

    /// $XDG_RUNTIME_DIR of the user (its bus is `bus` in it).
    pub fn runtime_dir(&self) -> String {
        format!("/run/user/{}", self.uid)
    }

    fn bus(&self) -> String {
        format!("{}/bus", self.runtime_dir())
    }

    /// The manager's cgroup, where its scopes go (delegated to the user).
    pub fn cgroup(&self) -> std::path::PathBuf {
        let u = self.uid;
        std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/user.slice/user-{u}.slice/user@{u}.service"
        ))
    }

    /// The environment a login gives the user's programs to find its manager.
    pub fn env(&self) -> Vec<String> {
        vec![format!("XDG_RUNTIME_DIR={}", self.runtime_dir())]
    }

    /// `systemctl --user <args>` against this manager (run as root through its bus): its
    /// stdout, trimmed. Reaching the user's bus through `--machine` can fail for a while on
    /// a busy host (seen under TCG: empty output once the scope was already there), so a
    /// failed call is retried for up to 60 s; the last failure's stderr is returned.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let mut last = String::new();
        let done = crate::runtime::wait_for(Duration::from_secs(60), || {
            let out = Command::new("systemctl")
                .arg("--user")
                .arg(format!("--machine={}@.host", self.name))
                .args(args)
                .output()
                .expect("run systemctl");
            if out.status.success() {
                return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
            }
            last = format!(
                "systemctl --user {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            std::thread::sleep(Duration::from_millis(500));
            None
        });
        done.unwrap_or(last)
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        let _ = Command::new("loginctl")
            .args(["disable-linger", &self.name])
            .status();
        // logind stops the manager once the user has no session and does not linger;
        // terminate-user makes that immediate (it says "not logged in" when logind was
        // quicker: the checks below are what counts).
        let _ = Command::new("loginctl")
            .args(["terminate-user", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
        let slice = format!("/sys/fs/cgroup/user.slice/user-{}.slice", self.uid);
        let gone = crate::runtime::wait_for(Duration::from_secs(60), || {
            (!std::path::Path::new(&slice).exists()).then_some(())
        });
        // The slice going is not the end: logind then finalizes the user, and with its
        // default RemoveIPC=yes that deletes every file the uid owns in /dev/shm. Once the
        // test user is removed, useradd hands the same uid to the next test user, whose
        // bundle and --root (in /dev/shm, chowned to it) a late sweep would delete under a
        // running runtime (seen under load: `mkdir <dir>/state: permission denied`, init
        // gone at `read init-p`). logind answers one request at a time, so once it no
        // longer knows the uid its sweep is over.
        let forgotten = gone.and_then(|()| {
            crate::runtime::wait_for(Duration::from_secs(60), || {
                (!logind_knows(self.uid)).then_some(())
            })
        });
        if forgotten.is_none() {
            let msg = format!(
                "user manager of {}: {} after 60 s",
                self.name,
                if gone.is_none() {
                    format!("{slice} still there")
                } else {
                    format!("logind still knows uid {}", self.uid)
                }
            );
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

/// Whether logind still has a user object for `uid` (logged in, lingering, or being
/// finalized).
pub fn logind_knows(uid: u32) -> bool {
    Command::new("loginctl")
        .args(["show-user", &uid.to_string(), "-p", "State"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
