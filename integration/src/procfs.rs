//! /proc helpers: mountinfo parsing, namespace links, process liveness.

/// One line of /proc/<pid>/mountinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`rw,nosuid,...`).
    pub options: Vec<String>,
    /// Optional fields (`shared:N`, `master:N`, ...).
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options (`rw,size=...,mode=...`).
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn has_option(&self, o: &str) -> bool {
        self.options.iter().any(|x| x == o)
    }
    pub fn has_super_option(&self, o: &str) -> bool {
        self.super_options.iter().any(|x| x == o)
    }
    /// `shared`, `slave` or `private` as derived from the optional fields.
    pub fn propagation(&self) -> &'static str {
        if self.optional.iter().any(|o| o.starts_with("shared:")) {
            "shared"
        } else if self.optional.iter().any(|o| o.starts_with("master:")) {
            "slave"
        } else {
            "private"
        }
    }
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into()
}

/// Parses the text of a mountinfo file.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let sep = f
                .iter()
                .position(|x| *x == "-")
                .unwrap_or_else(|| panic!("bad mountinfo line {l:?}"));
            assert!(sep >= 6 && f.len() >= sep + 3, "bad mountinfo line {l:?}");
            MountInfo {
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                options: f[5].split(',').map(String::from).collect(),
                optional: f[6..sep].iter().map(|s| s.to_string()).collect(),
                fstype: f[sep + 1].to_string(),
                source: unescape(f[sep + 2]),
                super_options: f[sep + 3..]
                    .join(" ")
                    .split(',')
                    .map(String::from)
                    .collect(),
            }
        })
        .collect()
}

/// The last (topmost) mount at `mount_point`, panicking with the table if absent.
#[track_caller]
pub fn find_mount<'a>(mounts: &'a [MountInfo], mount_point: &str) -> &'a MountInfo {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == mount_point)
        .unwrap_or_else(|| panic!("no mount at {mount_point} in {mounts:#?}"))
}

/// `type:[inode]` of one of our own namespaces, e.g. `ns_link("uts")`.
pub fn ns_link(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/self/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// The pid of host process `pid` in its own (innermost) pid namespace: NSpid's last field.
pub fn ns_pid(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no NSpid in /proc/{pid}/status"))
}

/// True when a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the parenthesised comm.
            let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
            !after.trim_start().starts_with('Z')
        }
        Err(_) => false,
    }
}

/// Our own cgroups: (hierarchy mount dir, path) for every hierarchy in
/// /proc/self/cgroup that is mounted under /sys/fs/cgroup.
pub fn own_cgroup_dirs() -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts =
        parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let mnt = mounts.iter().find(|m| {
            if ctrls.is_empty() {
                m.fstype == "cgroup2"
            } else {
                m.fstype == "cgroup"
                    && ctrls
                        .split(',')
                        .all(|c| m.super_options.iter().any(|o| o == c))
            }
        });
        if let Some(m) = mnt {
            // The mount's root is the part of the hierarchy it shows.
            let rel = path
                .strip_prefix(m.root.as_str())
                .unwrap_or(path)
                .trim_start_matches('/');
            out.push(std::path::Path::new(&m.mount_point).join(rel));
        }
    }
    out
}

/// The descriptors of `pid` that have the file at `path` open for reading or writing
/// (`O_PATH` ones, which only name it, left out).
pub fn open_ends(pid: i32, path: &std::path::Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|fd| {
            let same = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                .is_ok_and(|m| (m.dev(), m.ino()) == (target.dev(), target.ino()));
            let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                .ok()
                .and_then(|t| {
                    let f = t.lines().find_map(|l| l.strip_prefix("flags:"))?;
                    i32::from_str_radix(f.trim(), 8).ok()
                });
            same && flags.is_some_and(|f| f & libc::O_PATH == 0)
        })
        .collect()
}
