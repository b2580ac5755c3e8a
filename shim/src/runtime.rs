//! Driving the runtime binary through runc's CLI (`patina` by default, or the runc
//! Options' `BinaryName`, e.g. Debian's runc).
//!
//! Why exec and not the library: `patina::container::create` clones init with a raw
//! clone(2) from the calling process, which is only safe single-threaded, and the shim
//! serves ttrpc on threads; patina is a static binary that starts in about 2.5 ms, which
//! is small against containerd's own work per task, and the same code path then drives
//! runc. Every command's exit is taken through the reaper (the shim is a subreaper); the
//! container's init and exec'd processes stay behind as the shim's children.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use patina::{Error, Kind};

use crate::io::Prepared;
use crate::options::Options;
use crate::reaper::Reaper;

pub struct Runtime {
    pub binary: PathBuf,
    pub root: PathBuf,
    log: PathBuf,
    opts: Options,
    reaper: Arc<Reaper>,
}

impl Runtime {
    pub fn new(opts: &Options, bundle: &Path, namespace: &str, reaper: Arc<Reaper>) -> Runtime {
        Runtime {
            binary: opts.binary(),
            root: opts.root_dir(bundle, namespace),
            log: bundle.join("log.json"),
            opts: opts.clone(),
            reaper,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"]);
        if self.opts.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Run `cmd` to its end; a failure carries the runtime's last logged error and its
    /// kind (errors.rs maps it onto a gRPC code).
    fn run(&self, op: &str, mut cmd: Command) -> Result<(), Error> {
        let step = format!("{} {op}", self.binary.display());
        let before = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let exit = self
            .reaper
            .run(&mut cmd)
            .map_err(|e| Error::from(e).wrap(format!("{step}: start {}", self.binary.display())))?;
        drop(cmd);
        if exit.status == 0 {
            return Ok(());
        }
        let why = self
            .last_error(before)
            .unwrap_or_else(|| Error::msg(format!("exit status {}", exit.status)));
        Err(why.wrap(step))
    }

    /// The last error line the command logged: patina's carry `"kind"` (and `"field"`);
    /// others (runc's) are kind Other.
    fn last_error(&self, from: u64) -> Option<Error> {
        let text = std::fs::read(&self.log).ok()?;
        let text = String::from_utf8_lossy(text.get(from as usize..)?).into_owned();
        let mut last = None;
        for line in text.lines() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) if v["level"] == "error" || v["level"] == "fatal" => {
                    last = v["msg"].as_str().map(|msg| logged_error(&v, msg));
                }
                Ok(_) => {}
                Err(_) if !line.trim().is_empty() => last = Some(Error::msg(line)),
                Err(_) => {}
            }
        }
        last
    }

    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        io: &mut Prepared,
    ) -> Result<(), Error> {
        let mut args = vec!["create", "--bundle"];
        let bundle = bundle.to_string_lossy();
        let pid_file = pid_file.to_string_lossy();
        args.extend([bundle.as_ref(), "--pid-file", pid_file.as_ref()]);
        let console = io.console_path().map(|p| p.to_string_lossy().into_owned());
        if let Some(c) = console.as_deref() {
            args.extend(["--console-socket", c]);
        }
        if self.opts.no_pivot_root {
            args.push("--no-pivot");
        }
        if self.opts.no_new_keyring {
            args.push("--no-new-keyring");
        }
        args.push(id);
        let mut cmd = self.command(&args);
        io.apply(&mut cmd);
        self.run("create", cmd)
    }

    /// `restore --detach` of the image in `image` as container `id`, with the stdio of
    /// `io` (the restored process's pipes are swapped for these).
    pub fn restore(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        image: &Path,
        work: &Path,
        io: &mut Prepared,
    ) -> Result<(), Error> {
        let bundle = bundle.to_string_lossy();
        let pid_file = pid_file.to_string_lossy();
        let image = image.to_string_lossy();
        let work = work.to_string_lossy();
        let mut args = vec![
            "restore",
            "--detach",
            "--bundle",
            bundle.as_ref(),
            "--pid-file",
            pid_file.as_ref(),
            "--image-path",
            image.as_ref(),
            "--work-path",
            work.as_ref(),
        ];
        let console = io.console_path().map(|p| p.to_string_lossy().into_owned());
        if let Some(c) = console.as_deref() {
            args.extend(["--console-socket", c]);
        }
        if self.opts.no_pivot_root {
            args.push("--no-pivot");
        }
        args.push(id);
        let mut cmd = self.command(&args);
        io.apply(&mut cmd);
        self.run("restore", cmd)
    }

    pub fn exec(
        &self,
        id: &str,
        process: &Path,
        pid_file: &Path,
        io: &mut Prepared,
    ) -> Result<(), Error> {
        let process = process.to_string_lossy();
        let pid_file = pid_file.to_string_lossy();
        let mut args = vec![
            "exec",
            "--process",
            process.as_ref(),
            "--detach",
            "--pid-file",
            pid_file.as_ref(),
        ];
        let console = io.console_path().map(|p| p.to_string_lossy().into_owned());
        if let Some(c) = console.as_deref() {
            args.extend(["--console-socket", c]);
        }
        args.push(id);
        let mut cmd = self.command(&args);
        io.apply(&mut cmd);
        self.run("exec", cmd)
    }

    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.run("start", self.command(&["start", id]))
    }

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), Error> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.run("kill", self.command(&args))
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        let args: &[&str] = if force {
            &["delete", "--force", id]
        } else {
            &["delete", id]
        };
        self.run("delete", self.command(args))
    }

    /// `checkpoint`: the image goes to `image`, CRIU's files to `work`; the container
    /// keeps running unless `opts.exit` (as containerd's runc shim drives runc).
    pub fn checkpoint(
        &self,
        id: &str,
        image: &Path,
        work: &Path,
        opts: &crate::proto::CheckpointOptions,
    ) -> Result<(), Error> {
        let image = image.to_string_lossy();
        let work = work.to_string_lossy();
        let mut args = vec![
            "checkpoint",
            "--image-path",
            image.as_ref(),
            "--work-path",
            work.as_ref(),
        ];
        for (on, flag) in [
            (!opts.exit, "--leave-running"),
            (opts.open_tcp, "--tcp-established"),
            (opts.external_unix_sockets, "--ext-unix-sk"),
            (opts.terminal, "--shell-job"),
            (opts.file_locks, "--file-locks"),
        ] {
            if on {
                args.push(flag);
            }
        }
        for ns in &opts.empty_namespaces {
            args.extend(["--empty-ns", ns.as_str()]);
        }
        if !opts.cgroups_mode.is_empty() {
            args.extend(["--manage-cgroups-mode", opts.cgroups_mode.as_str()]);
        }
        args.push(id);
        self.run("checkpoint", self.command(&args))
    }

    pub fn pause(&self, id: &str) -> Result<(), Error> {
        self.run("pause", self.command(&["pause", id]))
    }

    pub fn resume(&self, id: &str) -> Result<(), Error> {
        self.run("resume", self.command(&["resume", id]))
    }

    pub fn update(&self, id: &str, resources: &Path) -> Result<(), Error> {
        let r = resources.to_string_lossy();
        self.run(
            "update",
            self.command(&["update", "--resources", r.as_ref(), id]),
        )
    }

    /// `ps --format json`: the pids in the container.
    pub fn ps(&self, id: &str) -> Result<Vec<u32>, Error> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::os(e, "pipe2 for ps"))?;
        let mut cmd = self.command(&["ps", "--format", "json", id]);
        cmd.stdout(w);
        self.run("ps", cmd)?;
        let mut out = String::new();
        std::fs::File::from(r)
            .read_to_string(&mut out)
            .map_err(|e| Error::from(e).wrap("read ps output"))?;
        serde_json::from_str(out.trim()).map_err(|e| Error::msg(format!("ps output {out:?}: {e}")))
    }
}

/// An error line of the runtime's JSON log as an [`Error`] of the kind it names.
fn logged_error(line: &serde_json::Value, msg: &str) -> Error {
    let kind = line["kind"].as_str().and_then(Kind::from_name);
    match (kind, line["field"].as_str()) {
        (Some(Kind::InvalidConfig), Some(field)) => Error::invalid(field, msg),
        (Some(kind), _) => Error::new(kind, msg),
        (None, _) => Error::msg(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_give_their_kind_and_runc_lines_give_other() {
        let line = serde_json::json!({"level": "error", "msg": "m", "kind": "not_found"});
        assert_eq!(logged_error(&line, "m").kind(), Kind::NotFound);
        let line = serde_json::json!({"level": "error", "msg": "m", "kind": "invalid_config",
            "field": "root.path"});
        assert_eq!(logged_error(&line, "m").subject(), Some("root.path"));
        let line = serde_json::json!({"level": "error", "msg": "container does not exist"});
        assert_eq!(logged_error(&line, "m").kind(), Kind::Other);
    }
}
