//! process.capabilities: the five sets, applied around the uid change so that the
//! configured sets, not the kernel's setuid rules, decide what the program keeps.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// The sets, translated and checked up front (unknown names are an error, not a skip).
#[derive(Debug, Clone, Default)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn translate(field: &str, set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let mut out = HashSet::new();
    for cap in set.iter().flatten() {
        // oci-spec names them CHOWN etc.; the caps crate wants CAP_CHOWN.
        let name = format!("CAP_{cap}");
        let cap = Cap::from_str(&name).map_err(|_| {
            Error::new(
                crate::Kind::InvalidConfig,
                format!("process.capabilities.{field}: unknown capability {name:?}"),
            )
        })?;
        out.insert(cap);
    }
    Ok(out)
}

impl CapSets {
    pub fn from_spec(caps: &LinuxCapabilities) -> Result<CapSets> {
        Ok(CapSets {
            bounding: translate("bounding", caps.bounding())?,
            effective: translate("effective", caps.effective())?,
            permitted: translate("permitted", caps.permitted())?,
            inheritable: translate("inheritable", caps.inheritable())?,
            ambient: translate("ambient", caps.ambient())?,
        })
    }

    /// Step 1, while still privileged: shrink the bounding set (needs CAP_SETPCAP).
    pub fn drop_bounding(&self) -> Result<()> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| Error::msg(format!("drop {cap} from the bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Step 2, after setuid (with PR_SET_KEEPCAPS held): the exact sets asked for.
    pub fn apply(&self) -> Result<()> {
        let set = |which: CapSet, value: &CapsHashSet, name: &str| {
            caps::set(None, which, value)
                .map_err(|e| Error::msg(format!("set {name} capabilities: {e}")))
        };
        // Inheritable first, while permitted still holds what it had: the kernel takes a
        // new inheritable cap only from the old permitted (or inheritable) set, so one
        // that the config keeps out of permitted would fail later (runc sets the three in
        // one capset against the old sets). Then effective, which must stay within
        // permitted at every step, before permitted shrinks.
        set(CapSet::Inheritable, &self.inheritable, "inheritable")?;
        set(CapSet::Effective, &self.effective, "effective")?;
        set(CapSet::Permitted, &self.permitted, "permitted")?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::msg(format!("clear ambient capabilities: {e}")))?;
        for cap in &self.ambient {
            // The kernel only raises an ambient cap that is permitted and inheritable;
            // runc's default spec lists ambient caps without inheritable ones, and runc
            // passes over the refusal with a log line: so do we, for compatibility.
            if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
                crate::logging::debug(&format!(
                    "ambient capability {cap} not raised (not inheritable): {e}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_translate_to_kernel_capabilities() {
        let spec: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_NET_BIND_SERVICE"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let sets = CapSets::from_spec(&spec).unwrap();
        assert!(
            sets.bounding.contains(&Cap::CAP_CHOWN)
                && sets.bounding.contains(&Cap::CAP_NET_BIND_SERVICE)
        );
        assert_eq!(sets.effective.len(), 1);
        assert!(sets.ambient.is_empty());
    }
}
