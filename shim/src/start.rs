//! The shim's command line (containerd's runtime v2 protocol, docs/runtime-v2.md):
//!
//! * `-namespace NS -address A -publish-binary B -id ID [-debug] start`: start (or
//!   find, for a pod) the shim daemon serving this container and print its address.
//!   Runtime options arrive on stdin. Without `-id`, stdin holds containerd 2.3's
//!   `BootstrapParams` and the answer is a `BootstrapResult` on stdout.
//! * `... -id ID [-bundle B] delete`: clean up after a shim that is gone; prints a
//!   `DeleteResponse`.
//! * `-v` (`-version`): version and commit; `-info`: a `RuntimeInfo` with the runtime's features JSON.
//! * no action: the daemon itself, listening on fd 3 (what `start` sets up).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::events::Publisher;
use crate::options::Options;
use crate::proto::*;
use crate::reaper::{self, Reaper};
use crate::runtime::Runtime;
use crate::service::{Service, OPTIONS_FILE};

const OPTIONS_ENV: &str = "PATINA_SHIM_OPTIONS";
pub const RUNTIME_NAME: &str = "io.containerd.patina.v2";

#[derive(Debug, Default)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    pub address: String,
    pub publish_binary: String,
    pub bundle: String,
    pub socket: String,
    pub debug: bool,
    pub version: bool,
    pub info: bool,
    pub help: bool,
    pub action: Option<String>,
}

/// The flags: (name, value type or "" for a boolean, meaning), for `-h` (in the shape of
/// Go's flag package, which containerd's shims use) and the man page (tools/gen-docs).
pub const FLAGS: &[(&str, &str, &str)] = &[
    ("namespace", "string", "namespace of the container"),
    (
        "id",
        "string",
        "id of the task (the container, or the pod's sandbox)",
    ),
    ("address", "string", "containerd's grpc address"),
    (
        "publish-binary",
        "string",
        "binary to publish events with (containerd's)",
    ),
    ("bundle", "string", "bundle directory (for delete)"),
    (
        "socket",
        "string",
        "socket path to serve on (containerd 2.x)",
    ),
    ("debug", "", "debug logging"),
    (
        "v",
        "",
        "show the shim version and commit and exit (also -version)",
    ),
    ("info", "", "print the runtime's RuntimeInfo and exit"),
];

/// The actions after the flags, for `-h` and the man page.
pub const ACTIONS: &str = "Actions: start (start or find the daemon and print its address), delete (clean up \
after a dead shim). With no action, the daemon serves ttrpc on descriptor 3, which `start` sets up.";

/// What `-h` prints.
pub fn usage() -> String {
    let mut text =
        String::from("Usage of containerd-shim-patina-v2 (started by containerd, not by hand):\n");
    for (name, typ, what) in FLAGS {
        let flag = format!("  -{name} {typ}");
        match flag.len() {
            0..20 => text += &format!("{flag:<22}{what}\n"),
            _ => text += &format!("{flag}\n{:22}{what}\n", ""),
        }
    }
    text + ACTIONS + "\n"
}

/// Go's flag syntax: `-name value`, `-name=value`, `--name`, booleans without a value.
pub fn parse(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            if f.action.is_some() {
                return Err(format!("unexpected argument {arg:?}"));
            }
            f.action = Some(arg.clone());
            continue;
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        match name {
            "h" | "help" => {
                f.help = true;
                continue;
            }
            "debug" | "v" | "version" | "info" => {
                let on = inline
                    .as_deref()
                    .map(|v| v == "true" || v == "1")
                    .unwrap_or(true);
                match name {
                    "debug" => f.debug = on,
                    "v" | "version" => f.version = on,
                    _ => f.info = on,
                }
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("flag -{name} needs a value"))?,
        };
        match name {
            "namespace" => f.namespace = value,
            "id" => f.id = value,
            "address" => f.address = value,
            "publish-binary" => f.publish_binary = value,
            "bundle" => f.bundle = value,
            "socket" => f.socket = value,
            // Flags of other containerd versions that this shim has no use for.
            _ => {}
        }
    }
    Ok(f)
}

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match parse(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-patina-v2: {e}\n{}", usage());
            return 2;
        }
    };
    if flags.help {
        eprint!("{}", usage());
        return 0;
    }
    let result = if flags.version {
        // The Go shims' shape: "Revision" is the commit.
        println!(
            "containerd-shim-patina-v2:\n  Runtime: {RUNTIME_NAME}\n  Version: {}\n  Revision: {}",
            crate::VERSION,
            env!("PATINA_COMMIT")
        );
        Ok(())
    } else if flags.info {
        info()
    } else {
        match flags.action.as_deref() {
            Some("start") => start(&flags),
            Some("delete") => delete(&flags),
            None => serve(&flags),
            Some(other) => Err(format!("unknown action {other:?}")),
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("containerd-shim-patina-v2: {e}");
            1
        }
    }
}

fn read_stdin() -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut buf);
    buf
}

/// A short stable name: FNV-1a 64 of the parts.
fn hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

/// The group this container's shim serves: its pod (CRI sandbox id) or itself.
fn group_of(bundle: &Path, id: &str) -> String {
    let spec = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let annotations = spec.as_ref().map(|s| &s["annotations"]);
    for key in [
        "io.kubernetes.cri.sandbox-id",
        "io.containerd.runc.v2.group",
    ] {
        if let Some(v) = annotations
            .and_then(|a| a[key].as_str())
            .filter(|v| !v.is_empty())
        {
            return v.to_string();
        }
    }
    id.to_string()
}

/// `<dir of containerd's socket>/s/<hash>`: one socket per (containerd, namespace, group).
fn socket_path(socket_dir: &Path, address: &str, namespace: &str, group: &str) -> PathBuf {
    socket_dir.join(hash(&[address, namespace, group]))
}

fn start(flags: &Flags) -> Result<(), String> {
    let stdin = read_stdin();
    if flags.id.is_empty() {
        return bootstrap(flags, &stdin);
    }
    let bundle = std::env::current_dir().map_err(|e| format!("current dir: {e}"))?;
    let group = group_of(&bundle, &flags.id);
    let dir = Path::new(&flags.address)
        .parent()
        .unwrap_or(Path::new("/run/containerd"))
        .join("s");
    let socket = socket_path(&dir, &flags.address, &flags.namespace, &group);
    let address = spawn_daemon(flags, &socket, &bundle, &stdin)?;
    std::fs::write(bundle.join("address"), &address)
        .map_err(|e| format!("write address file: {e}"))?;
    print!("{address}");
    let _ = std::io::stdout().flush();
    Ok(())
}

/// Start the daemon listening on `socket`, unless one already serves it (a pod's
/// second container); returns the address to print.
fn spawn_daemon(
    flags: &Flags,
    socket: &Path,
    bundle: &Path,
    options: &[u8],
) -> Result<String, String> {
    let address = format!("unix://{}", socket.display());
    if UnixStream::connect(socket).is_ok() {
        return Ok(address);
    }
    let _ = std::fs::remove_file(socket);
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    }
    let listener =
        UnixListener::bind(socket).map_err(|e| format!("listen on {}: {e}", socket.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "-namespace",
        &flags.namespace,
        "-id",
        &flags.id,
        "-address",
        &flags.address,
    ]);
    if !flags.publish_binary.is_empty() {
        cmd.args(["-publish-binary", &flags.publish_binary]);
    }
    if flags.debug {
        cmd.arg("-debug");
    }
    cmd.env(OPTIONS_ENV, to_hex(options))
        .current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let fd = listener.as_raw_fd();
    // SAFETY: between fork and exec the closure only calls setsid and dup2, both
    // async-signal-safe, on a descriptor open in the parent.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            // dup2 onto itself would keep FD_CLOEXEC: clear it instead.
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("start the shim daemon: {e}"))?;
    drop(child);
    Ok(address)
}

/// containerd 2.3: `BootstrapParams` in, `BootstrapResult` out.
fn bootstrap(flags: &Flags, stdin: &[u8]) -> Result<(), String> {
    let params =
        BootstrapParams::decode(stdin).map_err(|e| format!("decode BootstrapParams: {e}"))?;
    if params.instance_id.is_empty() {
        return Err("start: no -id and no BootstrapParams on stdin".into());
    }
    let bundle = std::env::current_dir().map_err(|e| format!("current dir: {e}"))?;
    let group = group_of(&bundle, &params.instance_id);
    let address_of_containerd = params.containerd_grpc_address.clone();
    let dir = if params.socket_dir.is_empty() {
        Path::new(&address_of_containerd)
            .parent()
            .unwrap_or(Path::new("/run/containerd"))
            .join("s")
    } else {
        PathBuf::from(&params.socket_dir)
    };
    let socket = socket_path(&dir, &address_of_containerd, &params.namespace, &group);
    let legacy = Flags {
        namespace: params.namespace.clone(),
        id: params.instance_id.clone(),
        address: address_of_containerd,
        publish_binary: params.containerd_binary.clone(),
        debug: flags.debug || params.log_level < 0,
        ..Default::default()
    };
    if !params.containerd_ttrpc_address.is_empty() {
        std::env::set_var("TTRPC_ADDRESS", &params.containerd_ttrpc_address);
    }
    let options = params
        .extensions
        .iter()
        .filter_map(|e| e.value.as_ref())
        .find(|a| a.type_url.ends_with("Options"))
        .map(|a| a.encode())
        .unwrap_or_default();
    let address = spawn_daemon(&legacy, &socket, &bundle, &options)?;
    let _ = std::fs::write(bundle.join("address"), &address);
    let result = BootstrapResult {
        version: 3,
        address,
        protocol: "ttrpc".into(),
        ..Default::default()
    };
    std::io::stdout()
        .write_all(&result.encode())
        .map_err(|e| format!("write BootstrapResult: {e}"))
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Runtime options sent on stdin: an `Any` holding runc's or runtimeoptions' Options.
fn options_from(bytes: &[u8]) -> Options {
    if bytes.is_empty() {
        return Options::default();
    }
    Any::decode(bytes)
        .map_err(|e| e.to_string())
        .and_then(|any| Options::from_any(Some(&any)))
        .unwrap_or_else(|e| {
            crate::log::warn(&format!("runtime options on stdin: {e}"));
            Options::default()
        })
}

/// A socket in the listening state (SO_ACCEPTCONN), so that taking ownership of the
/// descriptor is sound; anything else (closed, a tty) is an error message instead.
fn is_listening_socket(fd: i32) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `on`; a descriptor that is not a
    // socket just fails (EBADF, ENOTSOCK).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && on == 1
}

/// The daemon: subreaper, log FIFO, events, ttrpc on fd 3.
fn serve(flags: &Flags) -> Result<(), String> {
    if !is_listening_socket(3) {
        return Err(format!(
            "no listening socket on descriptor 3: the daemon is started by `start` (run by containerd), not by hand\n{}",
            usage()
        ));
    }
    reaper::block_sigchld().map_err(|e| format!("block SIGCHLD: {e}"))?;
    keep_descriptors_from_children()?;
    // SAFETY: M_ARENA_MAX only limits glibc's malloc arenas; one arena keeps the
    // resident size of a shim with a few threads small.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "become a subreaper: {}",
            std::io::Error::last_os_error()
        ));
    }
    let bundle = std::env::current_dir().map_err(|e| format!("current dir: {e}"))?;
    crate::log::init(&bundle.join("log"), flags.debug);
    let defaults = options_from(&from_hex(&std::env::var(OPTIONS_ENV).unwrap_or_default()));
    std::env::remove_var(OPTIONS_ENV);
    // SAFETY: `start` put the listening socket on fd 3 for us (checked above); nothing
    // else owns it.
    let listener = unsafe { UnixListener::from_raw_fd(3) };
    let socket = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .unwrap_or_default();
    let ttrpc_address = std::env::var("TTRPC_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty());
    let publisher = Publisher::new(ttrpc_address, &flags.namespace);
    let reaper = Reaper::start();
    let service = Arc::new(Service::new(
        &flags.namespace,
        socket,
        defaults,
        publisher,
        reaper,
    ));
    crate::log::info(&format!(
        "serving {} on {}",
        flags.id,
        service.socket.display()
    ));
    crate::ttrpc::serve(listener, service).map_err(|e| format!("serve ttrpc: {e}"))
}

/// Mark fd 3 (the ttrpc listener `start` left there without FD_CLOEXEC) and whatever the
/// daemon inherited from whoever ran `start` close-on-exec, before any thread exists:
/// the daemon's children (runtime commands, and through them the OCI hooks) then get only
/// the descriptors they are given. Without it a hook run by patina held the shim's
/// listening socket, and a hook that left a process behind kept it (and the shim's
/// address) alive.
fn keep_descriptors_from_children() -> Result<(), String> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Before Linux 5.11: the listener at least.
    // SAFETY: F_SETFD only sets the descriptor's flags.
    if unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("mark the ttrpc listener (fd 3) close-on-exec: {e}"));
    }
    Ok(())
}

/// `delete`: the shim is gone; kill and delete the container, unmount its rootfs.
fn delete(flags: &Flags) -> Result<(), String> {
    reaper::block_sigchld().map_err(|e| format!("block SIGCHLD: {e}"))?;
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| format!("current dir: {e}"))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    let opts: Options = std::fs::read(bundle.join(OPTIONS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let reaper = Reaper::start();
    let runtime = Runtime::new(&opts, &bundle, &flags.namespace, reaper);
    if let Err(e) = runtime.delete(&flags.id, true) {
        eprintln!("containerd-shim-patina-v2: {e}");
    }
    crate::mount::unmount_all(&bundle.join("rootfs"))?;
    let pid = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let resp = DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(Timestamp::now()),
    };
    std::io::stdout()
        .write_all(&resp.encode())
        .map_err(|e| format!("write DeleteResponse: {e}"))
}

/// `-info`: RuntimeInfo with the runtime's features (`<binary> features` for another
/// binary named in the options on stdin).
fn info() -> Result<(), String> {
    let opts = options_from(&read_stdin());
    let features = if opts.binary_name.is_empty() {
        serde_json::to_vec(&patina::features::features()).map_err(|e| e.to_string())?
    } else {
        let out = Command::new(&opts.binary_name)
            .arg("features")
            .output()
            .map_err(|e| format!("{} features: {e}", opts.binary_name))?;
        out.stdout
    };
    let info = RuntimeInfo {
        name: RUNTIME_NAME.into(),
        version: Some(RuntimeVersion {
            version: crate::VERSION.into(),
            revision: String::new(),
        }),
        features: Some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/features/Features".into(),
            value: features,
        }),
        ..Default::default()
    };
    std::io::stdout()
        .write_all(&info.encode())
        .map_err(|e| format!("write RuntimeInfo: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_flags() {
        let args: Vec<String> = [
            "-namespace",
            "k8s.io",
            "--id=c1",
            "-address",
            "/run/c.sock",
            "-debug",
            "start",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let f = parse(&args).unwrap();
        assert_eq!(
            (f.namespace.as_str(), f.id.as_str(), f.debug),
            ("k8s.io", "c1", true)
        );
        assert_eq!(f.action.as_deref(), Some("start"));
        assert!(parse(&["-id".to_string()]).is_err());
    }

    #[test]
    fn help_is_a_flag_not_a_missing_value() {
        for h in ["-h", "-help", "--help"] {
            assert!(parse(&[h.to_string()]).unwrap().help, "{h}");
        }
    }

    #[test]
    fn only_a_listening_socket_is_taken_as_the_daemons() {
        use std::os::fd::AsRawFd;
        let dir = std::env::temp_dir().join(format!("shim-listen-{}", std::process::id()));
        let listener = UnixListener::bind(&dir).unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(is_listening_socket(listener.as_raw_fd()));
        assert!(!is_listening_socket(a.as_raw_fd()));
        assert!(!is_listening_socket(file.as_raw_fd()));
        assert!(!is_listening_socket(-1));
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(from_hex(&to_hex(&[0, 1, 254, 255])), vec![0, 1, 254, 255]);
    }
}
