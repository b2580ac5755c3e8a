//! uid/gid shifting for user namespaces: files owned by container id C are
//! written as host id H+(C-c0) so that, inside a user namespace with the
//! same mapping, the container sees its original owners.

use anyhow::{bail, Context, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl IdMap {
    /// Parses `container:host:size` (the umoci and runtime-spec order).
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let [c, h, n] = parts.as_slice() else {
            bail!("id map {s:?}: expected container:host:size");
        };
        let map = Self {
            container: c
                .parse()
                .with_context(|| format!("id map {s:?}: container id"))?,
            host: h
                .parse()
                .with_context(|| format!("id map {s:?}: host id"))?,
            size: n.parse().with_context(|| format!("id map {s:?}: size"))?,
        };
        if map.size == 0 {
            bail!("id map {s:?}: size must be positive");
        }
        if u64::from(map.container) + u64::from(map.size) > 1 << 32
            || u64::from(map.host) + u64::from(map.size) > 1 << 32
        {
            bail!("id map {s:?}: range overflows 32 bits");
        }
        Ok(map)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Ownership {
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
    /// Rootless unpack: leave every file owned by the unpacking user.
    pub skip_chown: bool,
}

fn map_id(maps: &[IdMap], id: u64, what: &str) -> Result<u32> {
    if maps.is_empty() {
        return u32::try_from(id).with_context(|| format!("{what} {id} out of range"));
    }
    for m in maps {
        if id >= u64::from(m.container) && id < u64::from(m.container) + u64::from(m.size) {
            return Ok((u64::from(m.host) + id - u64::from(m.container)) as u32);
        }
    }
    bail!("{what} {id} is not covered by the {what} map")
}

impl Ownership {
    pub fn host_uid(&self, uid: u64) -> Result<u32> {
        map_id(&self.uid_map, uid, "uid")
    }
    pub fn host_gid(&self, gid: u64) -> Result<u32> {
        map_id(&self.gid_map, gid, "gid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_shift_ids() {
        let own = Ownership {
            uid_map: vec![IdMap::parse("0:100000:65536").unwrap()],
            ..Default::default()
        };
        assert_eq!(own.host_uid(0).unwrap(), 100000);
        assert_eq!(own.host_uid(1000).unwrap(), 101000);
        assert!(own.host_uid(70000).is_err());
        assert_eq!(own.host_gid(5).unwrap(), 5);
        assert!(IdMap::parse("0:1").is_err());
        assert!(IdMap::parse("0:1:0").is_err());
    }
}
