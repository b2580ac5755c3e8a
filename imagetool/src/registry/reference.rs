//! Image references as `docker://` and the bare `host/name[:tag][@digest]` spell
//! them (distribution's reference grammar, the parts a pull needs).

use std::fmt;

use anyhow::{bail, Context, Result};

use crate::digest::Digest;

/// Docker Hub: the registry a reference without a host names, and the host
/// its API actually answers on.
const HUB: &str = "docker.io";
const HUB_API: &str = "registry-1.docker.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (`docker.io` for Hub references).
    pub registry: String,
    /// Repository path, `library/` added for Hub's official images.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses `[docker://]host[:port]/path[:tag][@sha256:hex]`. A first
    /// component without `.` or `:` (and not `localhost`) is a Hub path.
    pub fn parse(input: &str) -> Result<Self> {
        let s = input.strip_prefix("docker://").unwrap_or(input);
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).with_context(|| format!("image reference {input:?}"))?),
            ),
            None => (s, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ if name.contains('/') => (HUB.to_string(), name.to_string()),
            _ => (HUB.to_string(), format!("library/{name}")),
        };
        check_repository(&repository, input)?;
        if let Some(t) = &tag {
            check_tag(t, input)?;
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Host the API is reached on.
    pub fn api_host(&self) -> &str {
        if self.registry == HUB {
            HUB_API
        } else {
            &self.registry
        }
    }

    /// What to ask the manifests endpoint for: the digest wins over the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// True for hosts on this machine, where a registry without TLS is the
    /// norm (docker and podman treat them as insecure registries too).
    pub fn is_loopback(&self) -> bool {
        let host = host_part(&self.registry);
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `host` of `host[:port]` and of `[v6]:port`.
fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Path components: lowercase alphanumerics joined by `.`, `_`, `__`, `-`
/// (so a repository can never carry `..`, `?` or `#` into a URL).
fn check_repository(repo: &str, input: &str) -> Result<()> {
    let ok = !repo.is_empty()
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        });
    if !ok {
        bail!("image reference {input:?}: invalid repository name {repo:?}");
    }
    Ok(())
}

fn check_tag(tag: &str, input: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.as_bytes()[0] != b'.'
        && tag.as_bytes()[0] != b'-'
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        bail!("image reference {input:?}: invalid tag {tag:?}");
    }
    Ok(())
}

impl fmt::Display for Reference {
    /// The canonical form, used as the ref name in the local layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_references() {
        let r = Reference::parse("docker://127.0.0.1:5000/busybox:latest").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/busybox:latest");

        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("quay.io/org/app@{d}")).unwrap();
        assert_eq!(r.registry, "quay.io");
        assert_eq!(r.repository, "org/app");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), d);
        assert!(!r.is_loopback());

        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = Reference::parse("localhost/a/b:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "a/b")
        );
        assert!(Reference::parse("[::1]:5000/x:y").unwrap().is_loopback());
    }

    #[test]
    fn refuses_names_that_would_bend_a_url() {
        for bad in [
            "localhost:5000/../v2/x",
            "localhost:5000/a?b=c",
            "localhost:5000/A",
            "localhost:5000/a:b/c",
            "localhost:5000/a:-x",
            "localhost:5000/a@sha256:zz",
            "localhost:5000/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
