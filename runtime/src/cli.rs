//! Argument parsing (runc-compatible names and defaults) and dispatch.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use patina::container::create::CreateOptions;
use patina::container::list::ListFormat;
use patina::container::update::UpdateFlags;
use patina::container::{
    create, delete, events, exec, kill, list, pause, ps, resume, run, start, state, update,
};
use patina::logging::{self, Format};
use patina::rootless::{self, Mode};
use patina::{bail, Result};

/// `-v`/`--version` in runc's shape ("NAME version X", then "key: value" lines), which
/// tools parse (docker's info reads the "version" line of its runtime).
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "version {}\ncommit: {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        env!("PATINA_COMMIT"),
        patina::features::OCI_VERSION_MAX
    )
});

/// The heading of the flags that go before the command, as runc's do: listed once in
/// `patina --help`, not repeated in every command's help.
const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(
    name = "patina",
    version = VERSION.as_str(),
    disable_version_flag = true,
    about = "An OCI container runtime, compatible with runc",
    long_about = "An OCI container runtime, compatible with runc: the same commands, flags and \
                  defaults, so engines (containerd, podman, docker) call it as they call runc.",
    after_help = "Errors are one line on stderr and exit 1; see docs/cli.md for the error kinds."
)]
pub struct Cli {
    /// Print the version and commit
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: (),
    /// Directory for the containers' state (default /run/patina; $XDG_RUNTIME_DIR/patina
    /// when not run as root)
    #[arg(long, help_heading = GLOBAL, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Log file (errors and warnings; debug with --debug)
    #[arg(long, help_heading = GLOBAL, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Format of the --log lines (json: one object a line, as containerd reads it)
    #[arg(long = "log-format", value_enum, default_value = "text", help_heading = GLOBAL, value_name = "FORMAT")]
    log_format: LogFormat,
    /// Log debug messages
    #[arg(long, help_heading = GLOBAL)]
    debug: bool,
    /// Make the container's cgroup a systemd unit (cgroupsPath "slice:prefix:name"); later commands use what create recorded
    #[arg(long = "systemd-cgroup", help_heading = GLOBAL)]
    systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    #[arg(long, help_heading = GLOBAL, value_name = "MODE")]
    rootless: Option<String>,
    /// Path to criu, for checkpoint/restore
    #[arg(long, help_heading = GLOBAL, value_name = "PATH")]
    criu: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Bundle directory (config.json and the root filesystem)
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Write the init pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send a pidfd of the init process to
    #[arg(long = "pidfd-socket", value_name = "SOCKET")]
    pidfd_socket: Option<PathBuf>,
    /// Unix socket to send the pty master to (with process.terminal)
    #[arg(long = "console-socket", value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N extra file descriptors (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    preserve_fds: i32,
    /// The container's id (letters, digits, _ + - .; unique under --root)
    container_id: String,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// An OCI process JSON file (instead of the command and flags)
    #[arg(short = 'p', long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// uid[:gid] to run as
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Extra group ids
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Add a capability (bounding, effective and permitted sets)
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// SELinux label of the process
    #[arg(long = "process-label", value_name = "LABEL")]
    process_label: Option<String>,
    /// AppArmor profile of the process
    #[arg(long, value_name = "PROFILE")]
    apparmor: Option<String>,
    /// Return once the process is started
    #[arg(short = 'd', long)]
    detach: bool,
    /// Write the process's pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send a pidfd of the process to
    #[arg(long = "pidfd-socket", value_name = "SOCKET")]
    pidfd_socket: Option<PathBuf>,
    /// Unix socket to send the pty master to (with --tty)
    #[arg(long = "console-socket", value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Pass N extra file descriptors (3..3+N) to the process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    preserve_fds: i32,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Run the process in an existing sub-cgroup of the container's, in every
    /// hierarchy or only CONTROLLER's (repeatable)
    #[arg(long = "cgroup", value_name = "[CONTROLLER:]PATH")]
    cgroup: Vec<String>,
    /// The container's id (letters, digits, _ + - .; unique under --root)
    container_id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (it waits for `start`)
    Create(CreateArgs),
    /// Start a created container
    Start {
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
    },
    /// Print the state of a container (OCI state JSON)
    State {
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
    },
    /// Send a signal to a container
    Kill {
        /// Send to every process of the container
        #[arg(short, long)]
        all: bool,
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
        /// The signal: a name (TERM, SIGKILL) or a number
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container
    Delete {
        /// Kill a running container first
        #[arg(short, long)]
        force: bool,
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
    },
    /// Run a process in a running container
    Exec(Box<ExecArgs>),
    /// Create and start a container, and wait for it
    Run {
        /// Return once started
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits (its state and cgroup stay for
        /// `state`, `events --stats` and `delete`)
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// List containers
    List {
        /// Output format
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormatArg,
        /// Print only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        /// Directory to write config.json into
        #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
        /// A config for the calling user (user namespace mapping it to root, no network
        /// namespace, no cgroup limits, /sys bound from the host)
        #[arg(long = "rootless", id = "spec_rootless")]
        rootless: bool,
    },
    /// Print what this runtime implements (runtime-spec features.json)
    Features,
    /// Freeze every process of a container
    Pause {
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
    },
    /// Thaw a paused container
    Resume {
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
    },
    /// Change the resource limits of a container
    Update(Box<UpdateArgs>),
    /// List the processes of a container
    Ps {
        /// Output format (json: the pids)
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormatArg,
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
        /// Options passed to ps (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Show resource usage and OOM events of a container
    Events {
        /// Print one stats object and exit
        #[arg(long)]
        stats: bool,
        /// Time between stats lines
        #[arg(long, default_value = "5s", value_name = "DURATION")]
        interval: String,
        /// The container's id (letters, digits, _ + - .; unique under --root)
        container_id: String,
    },
    /// Checkpoint a running container with CRIU
    Checkpoint(Box<CheckpointArgs>),
    /// Restore a container from a checkpoint with CRIU
    Restore(Box<RestoreArgs>),
}

/// The flags checkpoint and restore share (runc's names).
#[derive(Args, Debug)]
struct CriuArgs {
    /// Directory of the CRIU image (default ./checkpoint)
    #[arg(long = "image-path", value_name = "DIR")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory)
    #[arg(long = "work-path", value_name = "DIR")]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow shell jobs (a session or tty shared with the caller)
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// How CRIU handles the cgroups: soft, full, strict or ignore
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    manage_cgroups_mode: Option<String>,
    /// Create a namespace but do not restore its properties (network)
    #[arg(long = "empty-ns", value_name = "NS")]
    empty_ns: Vec<String>,
    /// Deduplicate the images of --parent-path as pages are written (or restored)
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
    /// Use userfaultfd to restore memory pages lazily
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
}

#[derive(Args, Debug)]
struct CheckpointArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// The previous (pre-)dump's image, relative to the image directory
    #[arg(long = "parent-path", value_name = "DIR")]
    parent_path: Option<String>,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Dump the memory only, for a later --parent-path dump
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    /// Send the pages to a CRIU page server at ADDRESS:PORT
    #[arg(long = "page-server", value_name = "ADDRESS:PORT")]
    page_server: Option<String>,
    /// With --lazy-pages: a descriptor written once the page server is ready
    #[arg(long = "status-fd", value_name = "FD")]
    status_fd: Option<i32>,
    /// The container's id
    container_id: String,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// Bundle directory (config.json and the root filesystem)
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Return once restored instead of waiting for the container
    #[arg(short = 'd', long)]
    detach: bool,
    /// Write the restored init's pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the restored tty's master to
    #[arg(long = "console-socket", value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Do not become a subreaper of the restored processes
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    /// Accepted for runc's sake (CRIU restores the root itself)
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// LSM profile of the restored processes: TYPE:NAME
    #[arg(long = "lsm-profile", value_name = "TYPE:NAME")]
    lsm_profile: Option<String>,
    /// LSM mount context of the restored mounts
    #[arg(long = "lsm-mount-context", value_name = "CONTEXT")]
    lsm_mount_context: Option<String>,
    /// The new container's id
    container_id: String,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    /// OCI LinuxResources JSON file ("-" for stdin)
    #[arg(short = 'r', long, value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit in bytes (k, m, g suffixes; -1 unlimited)
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    memory: Option<String>,
    /// Memory soft limit in bytes (k, m, g suffixes)
    #[arg(
        long = "memory-reservation",
        allow_hyphen_values = true,
        value_name = "BYTES"
    )]
    memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes (k, m, g suffixes; -1 unlimited)
    #[arg(long = "memory-swap", allow_hyphen_values = true, value_name = "BYTES")]
    memory_swap: Option<String>,
    /// CPU shares, a relative weight (v1 cpu.shares; converted to cpu.weight on v2)
    #[arg(
        long = "cpu-share",
        visible_alias = "cpu-shares",
        allow_hyphen_values = true,
        value_name = "N"
    )]
    cpu_shares: Option<String>,
    /// CPU time the container may use per --cpu-period, in microseconds (-1 unlimited)
    #[arg(long = "cpu-quota", allow_hyphen_values = true, value_name = "US")]
    cpu_quota: Option<String>,
    /// Length of the CPU quota period, in microseconds
    #[arg(long = "cpu-period", allow_hyphen_values = true, value_name = "US")]
    cpu_period: Option<String>,
    /// Real-time scheduling period, in microseconds (cgroup v1 only)
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true, value_name = "US")]
    cpu_rt_period: Option<String>,
    /// Real-time run time per --cpu-rt-period, in microseconds (cgroup v1 only)
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true, value_name = "US")]
    cpu_rt_runtime: Option<String>,
    /// CPUs the container may run on (e.g. 0-2,4)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (e.g. 0,1)
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 or 0 unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true, value_name = "N")]
    pids_limit: Option<String>,
    /// Block IO weight, 10 to 1000
    #[arg(long = "blkio-weight", allow_hyphen_values = true, value_name = "N")]
    blkio_weight: Option<String>,
    /// The container's id (letters, digits, _ + - .; unique under --root)
    container_id: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ListFormatArg {
    Table,
    Json,
}

/// The flag of a "value required but none supplied" parse error. Said in runc's
/// words (its CLI library's "flag needs an argument"), because engines probe for flags
/// with them: podman runs `RUNTIME restore --lsm-mount-context` and takes that sentence
/// in the output as support for restoring into a pod (its CRRuntimeSupportsPodCheckpointRestore).
fn missing_value(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::InvalidValue {
        return None;
    }
    match (
        e.get(ContextKind::InvalidValue),
        e.get(ContextKind::InvalidArg),
    ) {
        (Some(ContextValue::String(v)), Some(ContextValue::String(arg))) if v.is_empty() => {
            arg.split_whitespace().next().map(str::to_owned)
        }
        _ => None,
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(flag) = missing_value(&e) {
                eprintln!("patina: flag needs an argument: {flag}");
                return 1;
            }
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let format = match cli.log_format {
        LogFormat::Text => Format::Text,
        LogFormat::Json => Format::Json,
    };
    // Before anything is opened (the log file included): the preserved range must hold
    // the caller's descriptors, or the runtime's own would be handed to the container.
    if let Err(e) = check_inherited_fds(&cli.command) {
        logging::failure(&e);
        return 1;
    }
    logging::init(cli.log.clone(), format, cli.debug);
    // Commands that put a process into a container first leave the writable host binary
    // behind (CVE-2019-5736): this re-execs unless the image is already read-only.
    if let Command::Create(_) | Command::Run { .. } | Command::Exec(_) = cli.command {
        if let Err(e) = patina::exe_protect::run_from_read_only_image() {
            logging::failure(&e);
            return 1;
        }
    }
    // As runc: the --log file exists from the start (engines tail it), and a path that
    // cannot be written is an error now rather than lines lost later.
    if let Err(e) = logging::create_log_file() {
        logging::failure(&e);
        return 1;
    }
    // `exec` that fails before its process runs exits 255, as runc's: scripts tell that
    // apart from the process' own (usually smaller) status.
    let failed = match cli.command {
        Command::Exec(_) => 255,
        _ => 1,
    };
    match dispatch(cli) {
        Ok(code) => code,
        // Every kind exits 1 (255 for exec), as runc does for every error (docs/cli.md
        // "Exit codes"): `run` and `exec` pass the container's own status through, which
        // any other number could be; the kind is in the JSON log line.
        Err(e) => {
            logging::failure(&e);
            failed
        }
    }
}

/// `--preserve-fds` (plus socket activation's LISTEN_FDS for create/run): each of those
/// descriptors must be open in the caller.
fn check_inherited_fds(command: &Command) -> Result<()> {
    let count = match command {
        Command::Create(a) | Command::Run { create: a, .. } => {
            create::socket_activation_fds() + a.preserve_fds.max(0)
        }
        Command::Exec(a) => a.preserve_fds.max(0),
        _ => return Ok(()),
    };
    patina::fds::check_preserved(count, "--preserve-fds")
}

fn create_options(
    args: &CreateArgs,
    systemd_cgroup: bool,
    rootless: Mode,
) -> Result<CreateOptions> {
    if args.preserve_fds < 0 {
        bail!(
            InvalidConfig,
            "--preserve-fds {}: must not be negative",
            args.preserve_fds
        );
    }
    Ok(CreateOptions {
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.as_ref().map(|p| absolute(p)),
        pidfd_socket: args.pidfd_socket.clone(),
        console_socket: args.console_socket.clone(),
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
        systemd_cgroup,
        rootless,
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn print(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn dispatch(cli: Cli) -> Result<i32> {
    let mode = Mode::parse(cli.rootless.as_deref())?;
    let root = match &cli.root {
        Some(root) => absolute(root),
        None => {
            let xdg = std::env::var("XDG_RUNTIME_DIR").ok();
            let owner = xdg.as_ref().and_then(|d| {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(d).ok().map(|m| m.uid())
            });
            rootless::default_state_root(&rootless::Caller::detect(), xdg.as_deref(), owner)
        }
    };
    match cli.command {
        Command::Create(args) => {
            create::create(
                &root,
                &args.container_id,
                &create_options(&args, cli.systemd_cgroup, mode)?,
            )?;
        }
        Command::Start { container_id } => start::start(&root, &container_id)?,
        Command::State { container_id } => {
            print(&(state::state_json(&root, &container_id)? + "\n"))
        }
        Command::Kill {
            all,
            container_id,
            signal,
        } => kill::kill(&root, &container_id, &signal, all)?,
        Command::Delete {
            force,
            container_id,
        } => delete::delete(&root, &container_id, force)?,
        Command::Exec(args) => return exec_command(&root, *args),
        Command::Run {
            detach,
            keep,
            create,
        } => {
            let after = match (detach, keep) {
                (true, _) => run::After::Detach,
                (false, true) => run::After::Keep,
                (false, false) => run::After::Delete,
            };
            return run::run(
                &root,
                &create.container_id,
                &create_options(&create, cli.systemd_cgroup, mode)?,
                after,
            );
        }
        Command::List { format, quiet } => {
            let format = match (quiet, format) {
                (true, _) => ListFormat::Quiet,
                (false, ListFormatArg::Json) => ListFormat::Json,
                (false, ListFormatArg::Table) => ListFormat::Table,
            };
            print(&list::list(&root, format)?);
        }
        Command::Spec { bundle, rootless } => write_spec(&bundle, rootless)?,
        Command::Features => {
            let json = serde_json::to_string_pretty(&patina::features::features())
                .expect("features serialise");
            print(&(json + "\n"));
        }
        Command::Pause { container_id } => pause::pause(&root, &container_id)?,
        Command::Resume { container_id } => resume::resume(&root, &container_id)?,
        Command::Update(a) => {
            let flags = UpdateFlags {
                resources: a.resources,
                memory: a.memory,
                memory_reservation: a.memory_reservation,
                memory_swap: a.memory_swap,
                cpu_shares: a.cpu_shares,
                cpu_quota: a.cpu_quota,
                cpu_period: a.cpu_period,
                cpu_rt_period: a.cpu_rt_period,
                cpu_rt_runtime: a.cpu_rt_runtime,
                cpuset_cpus: a.cpuset_cpus,
                cpuset_mems: a.cpuset_mems,
                pids_limit: a.pids_limit,
                blkio_weight: a.blkio_weight,
            };
            update::update(&root, &a.container_id, &flags)?;
        }
        Command::Ps {
            format,
            container_id,
            ps_args,
        } => {
            let format = match format {
                ListFormatArg::Table => ps::PsFormat::Table,
                ListFormatArg::Json => ps::PsFormat::Json,
            };
            print(&ps::ps(&root, &container_id, format, &ps_args)?);
        }
        Command::Events {
            stats,
            interval,
            container_id,
        } => {
            let interval = events::parse_duration(&interval)?;
            events::events(&root, &container_id, interval, stats)?;
        }
        Command::Checkpoint(a) => checkpoint_command(&root, cli.criu.as_deref(), *a)?,
        Command::Restore(a) => {
            return restore_command(&root, cli.criu.as_deref(), cli.systemd_cgroup, *a)
        }
    }
    Ok(0)
}

fn criu_common(criu: Option<&Path>, a: &CriuArgs) -> Result<patina::checkpoint::Common> {
    Ok(patina::checkpoint::Common {
        image_path: absolute(a.image_path.as_deref().unwrap_or(Path::new("checkpoint"))),
        work_path: a.work_path.as_deref().map(absolute),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode: a
            .manage_cgroups_mode
            .as_deref()
            .map(patina::checkpoint::CgMode::parse)
            .transpose()?,
        empty_ns: patina::checkpoint::parse_empty_ns(&a.empty_ns)?,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        criu: criu.map(Path::to_path_buf),
    })
}

fn checkpoint_command(root: &Path, criu: Option<&Path>, a: CheckpointArgs) -> Result<()> {
    let page_server = match &a.page_server {
        Some(text) => {
            let parsed = text
                .rsplit_once(':')
                .and_then(|(addr, port)| Some((addr.to_owned(), port.parse::<i32>().ok()?)));
            match parsed {
                Some(p) => Some(p),
                None => bail!(
                    InvalidConfig,
                    "--page-server {text:?}: must be ADDRESS:PORT"
                ),
            }
        }
        None => None,
    };
    let opts = patina::checkpoint::dump::CheckpointOptions {
        common: criu_common(criu, &a.criu)?,
        parent_path: a.parent_path,
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        page_server,
        status_fd: a.status_fd,
    };
    patina::checkpoint::dump::checkpoint(root, &a.container_id, &opts)
}

fn restore_command(root: &Path, criu: Option<&Path>, systemd: bool, a: RestoreArgs) -> Result<i32> {
    let opts = patina::checkpoint::restore::RestoreOptions {
        common: criu_common(criu, &a.criu)?,
        bundle: a.bundle,
        detach: a.detach,
        pid_file: a.pid_file.as_deref().map(absolute),
        console_socket: a.console_socket,
        no_subreaper: a.no_subreaper,
        no_pivot: a.no_pivot,
        lsm_profile: a.lsm_profile,
        lsm_mount_context: a.lsm_mount_context,
        systemd_cgroup: systemd,
    };
    patina::checkpoint::restore::restore(root, &a.container_id, &opts)
}

fn exec_command(root: &Path, args: ExecArgs) -> Result<i32> {
    if args.preserve_fds < 0 {
        bail!(
            InvalidConfig,
            "--preserve-fds {}: must not be negative",
            args.preserve_fds
        );
    }
    let (dir, record) = exec::load(root, &args.container_id)?;
    let process = match &args.process {
        Some(path) => exec::read_process_file(path)?,
        None => exec::process_from_flags(
            record.process.as_ref(),
            &exec::ProcessOverrides {
                args: args.command.clone(),
                tty: args.tty,
                env: args.env.clone(),
                cwd: args.cwd.clone(),
                user: args.user.clone(),
                additional_gids: args.additional_gids.clone(),
                caps: args.cap.clone(),
                no_new_privs: args.no_new_privs,
                apparmor: args.apparmor.clone(),
                process_label: args.process_label.clone(),
            },
        )?,
    };
    let opts = exec::ExecOptions {
        detach: args.detach,
        pid_file: args.pid_file.as_ref().map(|p| absolute(p)),
        pidfd_socket: args.pidfd_socket.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        sub_cgroups: args.cgroup.clone(),
    };
    exec::exec(&dir, &record, &process, &opts)
}

fn write_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!(
            AlreadyExists,
            "spec: {:?} already exists; remove it first",
            path.display()
        );
    }
    let mut spec = patina::default_spec::default_spec_for_host();
    if rootless {
        let caller = rootless::Caller::detect();
        patina::default_spec::to_rootless(&mut spec, caller.euid, caller.egid);
    }
    let json = serde_json::to_string_pretty(&spec).expect("spec serialises");
    std::fs::write(&path, json + "\n")
        .map_err(|e| patina::Error::from(e).wrap(format!("write {:?}", path.display())))
}
