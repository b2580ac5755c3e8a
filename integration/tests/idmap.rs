//! Idmapped bind mounts (config.md "mounts": uidMappings/gidMappings), as Kubernetes
//! mounts volumes into user-namespaced pods: the mount's mappings take the ids on disk
//! (`containerID`) to the ids seen through the mount (`hostID`), so a container whose
//! root is host 100000 sees the volume's root-owned files as its own, and what it
//! writes lands on disk as root. Not in the v2 guest's list: its 6.1 kernel cannot
//! idmap tmpfs (6.3 can), where the tests keep their files.

use integration::{is_runc, spec, Container};
use serde_json::json;
use std::os::unix::fs::MetadataExt;

/// How the volume is idmapped.
#[derive(PartialEq)]
enum Idmap {
    No,
    /// With mappings of its own (the container's, copied).
    Mappings,
    /// With the `idmap` option alone: the container's mappings.
    Option,
}

/// A container in a user namespace (its 0 is host 100000) with a root-owned host
/// directory bound at /data, idmapped as `idmap` says.
fn userns_container_with_volume(name: &str, idmap: Idmap) -> Container {
    let mut c = Container::new(name);
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    spec::set_namespace(&mut c.config, "user", None);
    c.config["linux"]["uidMappings"] = map.clone();
    c.config["linux"]["gidMappings"] = map.clone();
    let vol = c.path("volume");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("owned"), "x").unwrap();
    // The image's mount point (the container's root may not create it in a rootfs
    // owned by the host's root).
    std::fs::create_dir(c.rootfs.join("data")).unwrap();
    let options: &[&str] = match idmap {
        Idmap::Option => &["rbind", "idmap"],
        _ => &["rbind"],
    };
    spec::add_mount(
        &mut c.config,
        "/data",
        "bind",
        vol.to_str().unwrap(),
        options,
    );
    if idmap == Idmap::Mappings {
        let last = c.config["mounts"].as_array().unwrap().len() - 1;
        c.config["mounts"][last]["uidMappings"] = map.clone();
        c.config["mounts"][last]["gidMappings"] = map;
    }
    c
}

const PROBE: &str =
    "stat -c %u:%g /data/owned; (echo y > /data/made) 2>/dev/null && stat -c %u:%g /data/made || echo denied";

#[test]
fn idmapped_volume_belongs_to_the_user_namespace_root() {
    if is_runc() {
        // beyond runc: runc 1.1.5 predates idmapped mounts (it ignores the fields and
        // refuses the option).
        return;
    }
    for idmap in [Idmap::Mappings, Idmap::Option] {
        let mut c = userns_container_with_volume("idmap", idmap);
        assert_eq!(c.sh_ok(PROBE), "0:0\n0:0\n");
        // What the container's root wrote is root's on disk, not 100000's.
        let made = std::fs::metadata(c.path("volume").join("made")).unwrap();
        assert_eq!((made.uid(), made.gid()), (0, 0));
    }
}

#[test]
fn plain_volume_is_nobodys_in_a_user_namespace() {
    // The same without the mount's mappings: the files are unmapped, and not writable.
    let mut c = userns_container_with_volume("noidmap", Idmap::No);
    assert_eq!(c.sh_ok(PROBE), "65534:65534\ndenied\n");
}

#[test]
fn idmapped_mount_needs_a_bind_and_both_maps() {
    if is_runc() {
        return; // beyond runc: runc 1.1.5 ignores the fields
    }
    let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    let mut c = Container::new("idmapbad");
    spec::add_mount(&mut c.config, "/t", "tmpfs", "tmpfs", &[]);
    let last = c.config["mounts"].as_array().unwrap().len() - 1;
    c.config["mounts"][last]["uidMappings"] = map.clone();
    c.config["mounts"][last]["gidMappings"] = map.clone();
    let out = c.run();
    c.assert_rejected(&out, &["uidMappings", "only bind mounts"]);

    let mut c = userns_container_with_volume("idmaphalf", Idmap::No);
    let last = c.config["mounts"].as_array().unwrap().len() - 1;
    c.config["mounts"][last]["uidMappings"] = map;
    let out = c.run();
    c.assert_rejected(&out, &["uidMappings", "needs both"]);

    // The option alone, in a container without a user namespace: no mappings to use.
    let mut c = Container::new("idmapnouserns");
    let vol = c.path("volume");
    std::fs::create_dir(&vol).unwrap();
    spec::add_mount(
        &mut c.config,
        "/data",
        "bind",
        vol.to_str().unwrap(),
        &["bind", "idmap"],
    );
    let out = c.run();
    c.assert_rejected(&out, &["\"idmap\"", "needs uidMappings"]);
}
