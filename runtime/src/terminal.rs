//! process.terminal: a pty from the container's own devpts, whose master goes to the
//! engine over `--console-socket` (SCM_RIGHTS, as runc does: containerd, podman and
//! conmon rely on it) and whose slave becomes the program's stdio and controlling tty.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Context, Error, Result};

/// Window size for TIOCSWINSZ.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own from a valid pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
    nix::errno::Errno::result(rc)
        .map(drop)
        .context("set terminal size")
}

/// In init, after pivot_root: make the pty, hand the master over, take the slave, and
/// make it /dev/console.
pub fn setup(console_socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    setup_pty(console_socket, size, true)
}

/// For an exec'd process: its own pty, /dev/console stays the container's.
pub fn setup_without_console(console_socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    setup_pty(console_socket, size, false)
}

fn setup_pty(console_socket: &OwnedFd, size: Option<(u16, u16)>, console: bool) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("open /dev/ptmx")?;
    grantpt(&master).context("grantpt")?;
    unlockpt(&master).context("unlockpt")?;
    let slave_name = ptsname_r(&master).context("ptsname")?;
    if let Some((rows, cols)) = size {
        set_size(master.as_raw_fd(), rows, cols).context("process.consoleSize")?;
    }
    let slave: OwnedFd = nix::fcntl::open(
        Path::new(&slave_name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open pty slave {slave_name}"))?;
    if console {
        bind_console(&slave_name)?;
    }
    send_master(console_socket, master.as_raw_fd(), &slave_name)?;
    drop(master);
    // SAFETY: TIOCSCTTY takes an int argument; init has called setsid already.
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    nix::errno::Errno::result(rc).context("make the pty the controlling terminal")?;
    for target in 0..=2 {
        dup_onto(slave.as_raw_fd(), target).context("dup pty slave onto stdio")?;
    }
    Ok(())
}

/// /dev/console in the container is the pty slave (config-linux.md "/dev/console").
fn bind_console(slave: &str) -> Result<()> {
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).context("create /dev/console")?;
    }
    mount(
        Some(slave),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind {slave} on /dev/console"))
}

fn send_master(socket: &OwnedFd, master: RawFd, name: &str) -> Result<()> {
    let fds = [master];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map(drop)
        .context("send pty master over the console socket")
}

/// dup2 without nix's OwnedFd-shaped API (targets 0-2 are not ours to own).
pub fn dup_onto(fd: RawFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 on two descriptor numbers; failure is reported through errno.
    let rc = unsafe { libc::dup2(fd, target) };
    nix::errno::Errno::result(rc).map(drop).map_err(Error::from)
}

/// patina relays a container's tty itself only between it and the caller's terminal:
/// without one (a pipe, a service, CI), a `terminal: true` program would wait forever
/// for input that never ends and ignore the signals a shell forwards (runc fails the
/// same way, at once).
pub fn require_controlling_terminal(field: &str) -> Result<()> {
    nix::fcntl::open(
        "/dev/tty",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(drop)
    .with_context(|| {
        format!(
            "{field}: relaying the tty without --console-socket needs a terminal: open /dev/tty"
        )
    })
}

/// A connected pair standing in for `--console-socket` when patina relays the tty
/// itself: (our end, to receive the master on; the end the container process sends on).
pub fn relay_pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the terminal")
}

/// Receive a pty master sent by init over our end of a console socketpair.
pub fn receive_master(socket: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::os::fd::FromRawFd;
    let mut name = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive pty master")?;
    for cmsg in msg.cmsgs().context("read control message")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this descriptor in our table for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::msg("console socket: no pty master received"))
}

/// When patina relays the pty itself (foreground `run`/`exec` without
/// `--console-socket`), the container's "\n" stays "\n" on the way out, as runc has it
/// (ClearONLCR): the caller's terminal does its own output processing, and a caller that
/// reads the relay through a pipe gets plain lines. Engines that take the master over
/// `--console-socket` set termios themselves and keep the default.
pub fn clear_onlcr(master: &OwnedFd) -> Result<()> {
    use nix::sys::termios::{tcgetattr, tcsetattr, OutputFlags, SetArg};
    let mut t = tcgetattr(master).context("tcgetattr on the pty master")?;
    t.output_flags.remove(OutputFlags::ONLCR);
    tcsetattr(master, SetArg::TCSANOW, &t).context("clear ONLCR on the pty")
}

/// Puts our own terminal in raw mode while relaying, and restores it after.
pub struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// The size of our own terminal (stdin), if it is one.
pub fn own_size() -> Option<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into a winsize we own.
    let ok = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_row > 0).then_some((size.ws_row, size.ws_col))
}

/// When patina relays the terminal, the container's pty starts with our terminal's
/// size (unless the config sets one), so the program never sees 0x0.
pub fn inherit_size(process: &mut oci_spec::runtime::Process) {
    if process.console_size().is_none() {
        if let Some((rows, cols)) = own_size() {
            let size: oci_spec::runtime::Box =
                serde_json::from_value(serde_json::json!({ "height": rows, "width": cols }))
                    .expect("a console size");
            process.set_console_size(Some(size));
        }
    }
}

/// Copy our terminal's size onto the pty (on SIGWINCH).
pub fn copy_size_to(master: &OwnedFd) {
    if let Some((rows, cols)) = own_size() {
        let _ = set_size(master.as_raw_fd(), rows, cols);
    }
}
