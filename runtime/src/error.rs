//! One error type for every layer, carrying the step that failed and the OS error
//! that caused it, so that the user sees `mount "proc" on "/proc": EPERM (...)`
//! rather than a bare errno or a lost cause.

use std::fmt;

use nix::errno::Errno;

/// A failed step: what patina was doing, and the OS error behind it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    context: Vec<String>,
    errno: Option<Errno>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error that is not caused by a syscall (invalid input, wrong state).
    pub fn msg(message: impl Into<String>) -> Self {
        Error {
            context: vec![message.into()],
            errno: None,
        }
    }

    /// An error from a syscall, described by the step it served.
    pub fn os(errno: Errno, step: impl Into<String>) -> Self {
        Error {
            context: vec![step.into()],
            errno: Some(errno),
        }
    }

    /// Prefix the error with the step of the caller (outermost first in the message).
    pub fn wrap(mut self, step: impl Into<String>) -> Self {
        self.context.insert(0, step.into());
        self
    }

    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }
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

/// Return early with a message-only error.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::msg(format!($($arg)*)))
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
    fn io_errors_keep_their_errno() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let err = Error::from(io).wrap("open config.json");
        assert_eq!(err.errno(), Some(Errno::ENOENT));
        assert!(err.to_string().starts_with("open config.json: ENOENT"));
    }
}
