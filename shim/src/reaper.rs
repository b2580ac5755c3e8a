//! The shim is the child subreaper of everything it starts: runtime commands, and the
//! container inits and exec'd processes they leave behind (re-parented to the shim when
//! the runtime exits). One thread takes SIGCHLD and reaps every child; each exit goes to
//! whoever waits for that pid, or is kept until someone asks (a process may exit before
//! its pid is even known from the runtime's --pid-file).

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::SystemTime;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How a process ended: the exit code, or 128 + the signal, as containerd reports it.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: u32,
    pub at: SystemTime,
}

type Watcher = Box<dyn FnOnce(Exit) + Send>;

#[derive(Default)]
struct Table {
    unclaimed: HashMap<i32, Exit>,
    watchers: HashMap<i32, Watcher>,
}

pub struct Reaper {
    table: Mutex<Table>,
    cond: Condvar,
}

/// Block SIGCHLD in the calling (main) thread before any other thread exists, so every
/// thread inherits the mask and only the reaper's sigwait sees it.
pub fn block_sigchld() -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.thread_block()
}

impl Reaper {
    pub fn start() -> Arc<Reaper> {
        let reaper = Arc::new(Reaper {
            table: Mutex::new(Table::default()),
            cond: Condvar::new(),
        });
        let r = reaper.clone();
        crate::ttrpc::spawn("reaper", move || {
            let mut set = SigSet::empty();
            set.add(Signal::SIGCHLD);
            loop {
                r.reap_all();
                let _ = set.wait();
            }
        });
        reaper
    }

    fn reap_all(&self) {
        loop {
            let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code as u32),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as u32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            let exit = Exit {
                status,
                at: SystemTime::now(),
            };
            match table.watchers.remove(&pid) {
                Some(w) => {
                    drop(table);
                    w(exit);
                }
                None => {
                    table.unclaimed.insert(pid, exit);
                    self.cond.notify_all();
                }
            }
        }
    }

    /// Spawn `cmd` and wait for its exit through the reaper. The table lock is held
    /// across the spawn so the exit can only be recorded after the pid is known.
    pub fn run(&self, cmd: &mut Command) -> std::io::Result<Exit> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let pid = cmd.spawn()?.id() as i32;
        loop {
            if let Some(exit) = table.unclaimed.remove(&pid) {
                return Ok(exit);
            }
            table = self.cond.wait(table).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Call `f` once `pid` exits (at once if it already has).
    pub fn watch(&self, pid: i32, f: impl FnOnce(Exit) + Send + 'static) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match table.unclaimed.remove(&pid) {
            Some(exit) => {
                drop(table);
                f(exit);
            }
            None => {
                table.watchers.insert(pid, Box::new(f));
            }
        }
    }

    /// Forget exits nobody will ask for (orphans re-parented to the shim).
    pub fn forget_unclaimed(&self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.unclaimed.clear();
    }
}
