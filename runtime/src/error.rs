//! One error type for every layer, carrying what kind of failure it is, the step that
//! failed and the OS error that caused it, so that the user sees
//! `mount "proc" on "/proc": EPERM (...)` rather than a bare errno or a lost cause, and
//! a program (the shim, an engine reading `--log-format json`) sees a [`Kind`] it can
//! rely on without reading the message.

use std::fmt;

use nix::errno::Errno;

/// What went wrong, for programs: the CLI writes it into JSON log lines (`"kind"`), the
/// shim maps it onto a gRPC code (shim/src/errors.rs), the imagetool onto its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The container (or other named thing) does not exist.
    NotFound,
    /// The container id (or file to be written) is already taken.
    AlreadyExists,
    /// The config or a flag holds a value patina refuses; the message names the field.
    InvalidConfig,
    /// A well-formed request for something patina does not implement (or this host
    /// lacks); the message names the feature.
    Unsupported,
    /// The container is in a state that does not allow the operation (runc's
    /// "container is not running"): a failed precondition.
    WrongState,
    /// A system call or file operation failed: the message names the step and the errno.
    Os,
    /// Anything else: an unexpected answer from a child or hook, an internal error.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::NotFound,
        Kind::AlreadyExists,
        Kind::InvalidConfig,
        Kind::Unsupported,
        Kind::WrongState,
        Kind::Os,
        Kind::Other,
    ];

    /// The stable name used in JSON log lines and docs/cli.md.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NotFound => "not_found",
            Kind::AlreadyExists => "already_exists",
            Kind::InvalidConfig => "invalid_config",
            Kind::Unsupported => "unsupported",
            Kind::WrongState => "wrong_state",
            Kind::Os => "os",
            Kind::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// One byte for the init channel (process/channel.rs), which carries a child's
    /// failure back to the runtime.
    pub fn tag(self) -> u8 {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(6) as u8 + b'0'
    }

    pub fn from_tag(tag: u8) -> Kind {
        Kind::ALL
            .get(tag.wrapping_sub(b'0') as usize)
            .copied()
            .unwrap_or(Kind::Other)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed step: what kind of failure, what patina was doing, and the OS error behind
/// it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
    /// The config field (InvalidConfig) or feature (Unsupported) the error is about.
    subject: Option<String>,
    context: Vec<String>,
    errno: Option<Errno>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` that is not caused by a syscall. The messages of InvalidConfig
    /// and Unsupported errors start with the field or feature (`root.path "x": not a
    /// directory`): that first word is kept as the subject.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        let message = message.into();
        let subject = matches!(kind, Kind::InvalidConfig | Kind::Unsupported)
            .then(|| leading_word(&message))
            .flatten();
        Error {
            kind,
            subject,
            context: vec![message],
            errno: None,
        }
    }

    /// A general failure (kind Other), for messages that fit no other kind.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::new(Kind::Other, message)
    }

    /// A refused value whose message does not start with its field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            subject: Some(field.into()),
            ..Error::new(Kind::InvalidConfig, message)
        }
    }

    /// An error from a syscall, described by the step it served.
    pub fn os(errno: Errno, step: impl Into<String>) -> Self {
        Error {
            kind: Kind::Os,
            subject: None,
            context: vec![step.into()],
            errno: Some(errno),
        }
    }

    /// Prefix the error with the step of the caller (outermost first in the message).
    pub fn wrap(mut self, step: impl Into<String>) -> Self {
        let step = step.into();
        if self.subject.is_none() && matches!(self.kind, Kind::InvalidConfig | Kind::Unsupported) {
            self.subject = leading_word(&step);
        }
        self.context.insert(0, step);
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The config field or feature an InvalidConfig or Unsupported error is about.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }
}

/// `linux.resources.memory.swap: ...` -> `linux.resources.memory.swap`; None when the
/// message does not start with a config path or a flag (a caller's `wrap` may name it).
fn leading_word(message: &str) -> Option<String> {
    const TOP_LEVEL: [&str; 6] = [
        "hostname",
        "domainname",
        "ociVersion",
        "process",
        "root",
        "mounts",
    ];
    let word = message.split([' ', ':']).next().unwrap_or_default();
    let field = word.contains(['.', '[']) || word.starts_with("--") || TOP_LEVEL.contains(&word);
    field.then(|| word.to_owned())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context.join(": "))?;
        if let Some(errno) = self.errno {
            // nix's Display is "EPERM: Operation not permitted"; keep crun's "EPERM (...)".
            let name = format!("{errno:?}");
            let name = name.split(':').next().unwrap_or_default();
            write!(f, ": {name} ({})", errno.desc())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Errno> for Error {
    fn from(errno: Errno) -> Self {
        Error {
            kind: Kind::Os,
            subject: None,
            context: Vec::new(),
            errno: Some(errno),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        match err.raw_os_error() {
            Some(code) => Errno::from_raw(code).into(),
            None => Error::msg(err.to_string()),
        }
    }
}

/// Attach the step being done to any failure that converts into [`Error`].
pub trait Context<T> {
    fn context(self, step: impl Into<String>) -> Result<T>;
    fn with_context<S: Into<String>>(self, step: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, step: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().wrap(step))
    }

    fn with_context<S: Into<String>>(self, step: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().wrap(step()))
    }
}

/// An [`Error`] from a format string, of a [`Kind`] when the first argument names one:
/// `err!("...")` (Other), `err!(NotFound, "...")`, `err!(InvalidConfig, "root.path ...")`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($arg:tt)+) => {
        $crate::error::Error::new($crate::error::Kind::$kind, format!($($arg)+))
    };
    ($($arg:tt)+) => {
        $crate::error::Error::msg(format!($($arg)+))
    };
}

/// Return early with [`err!`]'s error.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)+) => {
        return Err($crate::err!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_every_step_and_the_errno() {
        let err: Result<()> = Err(Errno::EPERM).context("mount \"proc\" on \"/proc\"");
        let err = err.context("prepare rootfs").unwrap_err();
        assert_eq!(
            err.to_string(),
            "prepare rootfs: mount \"proc\" on \"/proc\": EPERM (Operation not permitted)"
        );
        assert_eq!(err.errno(), Some(Errno::EPERM));
    }

    #[test]
    fn kinds_survive_wrapping_and_name_their_subject() {
        let err: Result<()> = Err(crate::err!(InvalidConfig, "root.path {:?}: x", "r"));
        let err = err.context("create \"c1\"").unwrap_err();
        assert_eq!(err.kind(), Kind::InvalidConfig);
        assert_eq!(err.subject(), Some("root.path"));
        assert_eq!(err.to_string(), "create \"c1\": root.path \"r\": x");
        let err = crate::err!(Unsupported, "linux.intelRdt: not supported");
        assert_eq!(err.subject(), Some("linux.intelRdt"));
        assert_eq!(
            Error::invalid("container id", "bad id").subject(),
            Some("container id")
        );
        let err = crate::err!(NotFound, "container {:?} does not exist", "c");
        assert_eq!(err.kind(), Kind::NotFound);
        assert_eq!(Error::from(Errno::EPERM).kind(), Kind::Os);
        assert_eq!(crate::err!("plain {}", 1).kind(), Kind::Other);
    }

    #[test]
    fn kind_names_and_tags_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.as_str()), Some(kind));
            assert_eq!(Kind::from_tag(kind.tag()), kind);
        }
        assert_eq!(Kind::from_name("nope"), None);
        assert_eq!(Kind::from_tag(b'x'), Kind::Other);
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let err = Error::from(io).wrap("open config.json");
        assert_eq!(err.errno(), Some(Errno::ENOENT));
        assert!(err.to_string().starts_with("open config.json: ENOENT"));
    }
}
