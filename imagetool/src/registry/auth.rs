//! Credentials (containers-auth.json(5) and docker's config.json, which share
//! the `auths` format) and the registry's `WWW-Authenticate` challenges
//! (distribution's token.md: Basic, or Bearer with a token endpoint).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a password, even in a debug dump.
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// `user:password`, as `--creds` takes it.
    pub fn parse(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Self {
                username: u.into(),
                password: p.into(),
            }),
            _ => bail!("--creds: expected USER:PASSWORD"),
        }
    }

    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(raw))
    }
}

/// Auth files in the order skopeo and podman read them; docker's last.
/// `$REGISTRY_AUTH_FILE` (or `--authfile`) replaces the list.
pub fn auth_files(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        out.push(Path::new(&d).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        let home = Path::new(&h);
        out.push(home.join(".config/containers/auth.json"));
        out.push(home.join(".docker/config.json"));
    }
    out
}

/// Looks `registry` up in the auth files: the first file with an entry wins.
/// A named file (`--authfile`, `$REGISTRY_AUTH_FILE`) must exist; a default
/// one may be absent. A file that exists but cannot be parsed is an error
/// naming it, never a silent anonymous pull.
pub fn lookup(registry: &str, explicit: Option<&Path>) -> Result<Option<Credentials>> {
    let named = explicit.is_some() || std::env::var_os("REGISTRY_AUTH_FILE").is_some();
    for file in auth_files(explicit) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => continue,
            Err(e) => return Err(anyhow!("auth file {}: {e}", file.display())),
        };
        if let Some(c) =
            find_in(&text, registry).with_context(|| format!("auth file {}", file.display()))?
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Finds `registry`'s entry in an `{"auths": {KEY: {"auth": base64(user:pass)}}}`
/// document. Keys may carry a scheme or a path (`https://index.docker.io/v1/`).
fn find_in(text: &str, registry: &str) -> Result<Option<Credentials>> {
    let doc: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = if registry == "docker.io" {
        vec!["docker.io", "index.docker.io", "registry-1.docker.io"]
    } else {
        vec![registry]
    };
    for (key, entry) in auths {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        if !wanted.contains(&host) {
            continue;
        }
        let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) else {
            continue;
        };
        let raw = STANDARD
            .decode(encoded.trim())
            .map_err(|e| anyhow!("auths.{key:?}.auth: not base64: {e}"))?;
        let raw = String::from_utf8(raw).map_err(|_| anyhow!("auths.{key:?}.auth: not UTF-8"))?;
        let c = Credentials::parse(&raw)
            .map_err(|_| anyhow!("auths.{key:?}.auth: not user:password"))?;
        return Ok(Some(c));
    }
    Ok(None)
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="..",service="..",scope=".."`.
pub fn parse_challenge(header: &str) -> Result<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        bail!("unsupported authentication scheme {scheme:?}");
    }
    let params = parse_params(params);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Ok(Challenge::Bearer {
        realm: get("realm").ok_or_else(|| anyhow!("Bearer challenge without a realm"))?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v", k2=v2`: quoted values may hold commas (scopes do).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',');
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge("Basic realm=\"x\"").unwrap(),
            Challenge::Basic
        );
        assert!(parse_challenge("Negotiate abc").is_err());
    }

    #[test]
    fn auth_file_entries() {
        let enc = STANDARD.encode("u:p:w");
        let text = format!(r#"{{"auths": {{"https://127.0.0.1:5000/v1/": {{"auth": "{enc}"}}}}}}"#);
        let c = find_in(&text, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        assert!(find_in(&text, "127.0.0.1:5001").unwrap().is_none());
        assert!(find_in(r#"{"auths": {"h": {"auth": "%%"}}}"#, "h").is_err());
        assert!(find_in("{", "h").is_err());
        assert!(!format!("{c:?}").contains("p:w"));
    }
}
