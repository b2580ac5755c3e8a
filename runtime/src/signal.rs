//! Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `9`.

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

pub fn parse_signal(text: &str) -> Result<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(Error::new(
                crate::Kind::InvalidConfig,
                format!("invalid signal {text:?}"),
            ))
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(offset) = name
        .strip_prefix("SIGRTMIN+")
        .and_then(|n| n.parse::<i32>().ok())
    {
        return Ok(libc::SIGRTMIN() + offset);
    }
    name.parse::<Signal>().map(|s| s as i32).map_err(|_| {
        Error::new(
            crate::Kind::InvalidConfig,
            format!("unknown signal {text:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_sig_and_numbers() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("1000").is_err());
    }
}
