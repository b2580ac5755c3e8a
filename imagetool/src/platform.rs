//! Platform selection in image indexes (image-index.md#platform-variants).

use anyhow::{bail, Result};
use oci_spec::image::Descriptor;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in GOOS/GOARCH spelling.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        let arch = if arch == "ppc64" && cfg!(target_endian = "little") {
            "ppc64le"
        } else {
            arch
        };
        Self {
            os: std::env::consts::OS.to_string(),
            arch: arch.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self {
                    os: os.to_string(),
                    arch: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => bail!("--platform {s:?}: expected os/arch[/variant]"),
        }
    }

    /// Picks the descriptor for this platform. An exact variant match wins;
    /// otherwise an entry without a variant (or the host default's absence)
    /// is accepted. A lone descriptor without a platform is taken as is.
    pub fn choose<'a>(&self, descs: &[&'a Descriptor]) -> Result<&'a Descriptor> {
        if let [only] = descs {
            if only.platform().is_none() {
                return Ok(only);
            }
        }
        let same_os_arch: Vec<&'a Descriptor> = descs
            .iter()
            .copied()
            .filter(|d| {
                d.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == self.os && p.architecture().to_string() == self.arch
                })
            })
            .collect();
        let variant_of = |d: &Descriptor| d.platform().as_ref().and_then(|p| p.variant().clone());
        if let Some(want) = &self.variant {
            if let Some(d) = same_os_arch
                .iter()
                .find(|d| variant_of(d).as_deref() == Some(want))
            {
                return Ok(d);
            }
        }
        if let Some(d) = same_os_arch.iter().find(|d| variant_of(d).is_none()) {
            return Ok(d);
        }
        match (same_os_arch.first(), &self.variant) {
            // Asked for a default variant (e.g. arm64 -> v8) but the index
            // names another: any entry of the right arch is better than none.
            (Some(d), None) => Ok(d),
            _ => {
                let offered: Vec<String> = descs.iter().map(|d| describe(d)).collect();
                bail!(
                    "no manifest for platform {self} (offered: {})",
                    offered.join(", ")
                )
            }
        }
    }
}

fn describe(d: &Descriptor) -> String {
    match d.platform() {
        Some(p) => match p.variant() {
            Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
            None => format!("{}/{}", p.os(), p.architecture()),
        },
        None => "unspecified".to_string(),
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.variant {
            Some(v) => write!(f, "{}/{}/{v}", self.os, self.arch),
            None => write!(f, "{}/{}", self.os, self.arch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_platform() {
        assert_eq!(
            Platform::parse("linux/arm64/v8")
                .unwrap()
                .variant
                .as_deref(),
            Some("v8")
        );
        assert_eq!(Platform::parse("linux/amd64").unwrap().arch, "amd64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//").is_err());
    }
}
