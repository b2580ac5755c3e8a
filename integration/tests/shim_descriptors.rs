//! The shim's descriptors: an exec'd process's output FIFOs in the order containerd
//! really uses them, and what the shim's children inherit.
//!
//! Output FIFOs: containerd's CRI and ctr open their read end through
//! github.com/containerd/fifo with O_NONBLOCK, which returns at once and does the
//! blocking open(2) later in a goroutine, so on a busy node that open can come after a
//! fast process already exited. The shim once wrote such output to FIFOs nobody had open
//! yet and closed them: the output was lost and containerd's open waited forever for a
//! writer (an ExecSync hung 330 s; the CRI stress test in cri.rs reproduces it). Here
//! the late reader is played exactly: the readers open only after the process has exited
//! and the shim holds no open end.
//!
//! Children: the runtime commands the shim starts, and the OCI hooks they run, must not
//! hold the shim's listening socket.
//!
//! The shim is driven over ttrpc (integration/src/shim_client.rs) and told to run the
//! runtime under test (BinaryName: patina, or runc with PATINA_RUNTIME).

use integration::procfs::{open_ends, pid_alive};
use integration::runtime::wait_for;
use integration::shim_client::Shim;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

const NS: &str = "shimdescriptors";
/// Far above the few ms a reader needs to get the output once it opened.
const DEADLINE: Duration = Duration::from_secs(10);

/// A shim running `sleep` in a busybox container with the runtime under test.
fn sleeper(name: &str) -> Shim {
    sleeper_with(name, |_, _| {})
}

/// [`sleeper`], with `edit` applied to the bundle's config.json before Create (given the
/// shim's dir too, which goes with the shim even when a test fails).
fn sleeper_with(name: &str, edit: impl FnOnce(&mut serde_json::Value, &Path)) -> Shim {
    // An id of its own: runc names a container's cgroup after it (no cgroupsPath), and
    // these tests run in parallel.
    let id = integration::shim_client::unique("c");
    let mut shim = Shim::start(name, (NS, &id), &["sleep", "1000"], |_| None);
    let config = shim.bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    edit(&mut spec, &shim.dir);
    std::fs::write(&config, spec.to_string()).unwrap();
    let runtime = integration::runtime_path().to_string_lossy().into_owned();
    let options = shim.runc_options(|o| o.binary_name = runtime);
    let log = shim.dir.join("init.log");
    shim.create(Some(options), &log).expect("Create");
    shim.start_task("");
    shim
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// The stdout and stderr FIFOs of exec `name`, as containerd makes them.
fn fifos(shim: &Shim, name: &str) -> (PathBuf, PathBuf) {
    let out = shim.dir.join(format!("{name}-stdout"));
    let err = shim.dir.join(format!("{name}-stderr"));
    mkfifo(&out);
    mkfifo(&err);
    (out, err)
}

/// Open `fifo` for reading (blocking, as containerd's goroutine does) and read it to EOF
/// within [`DEADLINE`]; Err when nobody ever writes it or never closes it.
fn read_late(fifo: &Path) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    let path = fifo.to_path_buf();
    std::thread::spawn(move || {
        let mut text = String::new();
        let r = File::open(&path).and_then(|mut f| f.read_to_string(&mut text));
        let _ = tx.send(r.map(|_| text));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r.map_err(|e| format!("read {}: {e}", fifo.display())),
        Err(_) => {
            // Our reader is still in open(2) (or read): a writer end of our own lets it go.
            let _ = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo);
            Err(format!(
                "{}: no EOF {DEADLINE:?} after the reader opened: the shim had closed the \
                 FIFO before any reader opened it (the output is lost, ExecSync hangs)",
                fifo.display()
            ))
        }
    }
}

/// Exec `args` with FIFO stdio; once the process is gone and the shim holds no open end
/// of either FIFO, read them: (exit status, stdout, stderr).
fn exec_read_late(shim: &mut Shim, exec_id: &str, args: &[&str]) -> (u32, String, String) {
    let (out, err) = fifos(shim, exec_id);
    let pid = shim.exec_start(exec_id, args, out.to_str().unwrap(), err.to_str().unwrap());
    let gone = wait_for(DEADLINE, || (!pid_alive(pid as i32)).then_some(()));
    assert!(gone.is_some(), "exec {exec_id} (pid {pid}) did not exit");
    // The old shim held the FIFOs open read-write and closed them at the end of the
    // output: wait for that, so the readers below come after it (as a late goroutine of
    // containerd's does). The shim as fixed holds no open end until a reader is there.
    let closed = wait_for(DEADLINE, || {
        (open_ends(shim.pid, &out).is_empty() && open_ends(shim.pid, &err).is_empty()).then_some(())
    });
    assert!(
        closed.is_some(),
        "the shim keeps an end of the output FIFOs"
    );
    let stdout = read_late(&out);
    let stderr = read_late(&err);
    let status = shim.wait(exec_id);
    shim.delete(exec_id);
    (status, stdout.unwrap(), stderr.unwrap())
}

#[test]
fn shim_exec_output_reaches_a_reader_that_opens_after_the_exit() {
    let mut shim = sleeper("lateread");
    let got = exec_read_late(
        &mut shim,
        "both",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(got, (3, "out\n".into(), "err\n".into()));
    // No output at all: the late readers still get their EOF.
    let got = exec_read_late(&mut shim, "none", &["true"]);
    assert_eq!(got, (0, String::new(), String::new()));
    shim.kill_and_delete();
    assert!(shim.shutdown(false), "shim {} did not exit", shim.pid);
}

/// A client that never opens the output FIFOs: the exit is still reported (after the
/// shim waited its 2 s for the output to be read) and deleting the process releases the
/// relays that waited for a reader: the shim keeps nothing of them.
#[test]
fn shim_exec_with_fifos_nobody_reads_leaves_nothing_in_the_shim() {
    let mut shim = sleeper("noreader");
    let (out, err) = fifos(&shim, "x");
    shim.exec_start(
        "x",
        &["sh", "-c", "echo out; echo err >&2; exit 4"],
        out.to_str().unwrap(),
        err.to_str().unwrap(),
    );
    assert_eq!(shim.wait("x"), 4);
    shim.delete("x");
    let holds = |p: &Path| {
        std::fs::read_dir(format!("/proc/{}/fd", shim.pid))
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == p))
    };
    let released = wait_for(DEADLINE, || (!holds(&out) && !holds(&err)).then_some(()));
    assert!(
        released.is_some(),
        "the shim still holds the FIFOs after Delete"
    );
    shim.kill_and_delete();
    assert!(shim.shutdown(false), "shim {} did not exit", shim.pid);
}

/// The shim hands its children only the descriptors it means to: an OCI hook, run by the
/// runtime command the shim started, does not hold the shim's listening ttrpc socket (a
/// hook that left a process behind kept the socket, and the shim's address, alive).
/// With patina as the runtime the hook held it before the daemon marked its inherited
/// descriptors close-on-exec; runc never handed it on to its hooks.
#[test]
fn shim_children_do_not_inherit_its_listening_socket() {
    // What the hook's shell holds (its stdout is the file); runc 1.1 runs poststart
    // hooks from `create`, patina from `start`: both are runtime commands of the shim.
    let mut shim = sleeper_with("hookfds", |spec, dir| {
        let script = format!(
            "ls -l /proc/$$/fd/ > {}; exit 0",
            dir.join(HOOK_OUT).display()
        );
        spec["hooks"]["poststart"] =
            serde_json::json!([{"path": "/bin/sh", "args": ["sh", "-c", script]}]);
    });
    let out = shim.dir.join(HOOK_OUT);
    let listener = std::fs::read_link(format!("/proc/{}/fd/3", shim.pid)).unwrap();
    let listener = listener.to_string_lossy().into_owned();
    assert!(
        listener.starts_with("socket:["),
        "the shim's fd 3: {listener}"
    );
    let fds = wait_for(DEADLINE, || {
        std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty())
    })
    .expect("the poststart hook ran");
    let stdout = format!("1 -> {}", out.display());
    assert!(fds.lines().any(|l| l.ends_with(&stdout)), "{fds}");
    assert!(
        !fds.lines().any(|l| l.ends_with(&format!("-> {listener}"))),
        "the hook holds the shim's listening socket {listener}:\n{fds}"
    );
    shim.kill_and_delete();
    assert!(shim.shutdown(false), "shim {} did not exit", shim.pid);
}

const HOOK_OUT: &str = "hook-fds";
