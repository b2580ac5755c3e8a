//! config.json as `patina create` takes it, up to the first thing that touches the
//! system: parse, validate, then the pure steps of create (namespace plan, capability
//! sets, rlimit names, the seccomp compiler, cgroup placement on fixed host layouts).
//! Checks: no panic and no unbounded allocation on any input; errors are one line (they
//! are what `create` prints); the cgroup a config asks for stays strictly beneath the
//! hierarchy (never its root, never outside; a relative path never the caller's own).

#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;
use patina::cgroups::{Cgroup, Layout};

/// A hybrid host (cgroup v1 hierarchies plus cgroup2 at unified) and a pure v2 host.
const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
";
const V2: &str = "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n";
/// The caller's own cgroups (/proc/self/cgroup), where relative paths go.
const OWN: &str = "0::/caller\n5:memory:/caller\n4:cpu,cpuacct:/caller\n";

fn one_line(what: &str, e: &patina::Error) {
    let text = e.to_string();
    assert!(!text.contains('\n'), "{what}: multi-line error {text:?}");
}

fuzz_target!(|data: &[u8]| {
    let spec = match patina::spec::parse_config(data) {
        Ok(spec) => spec,
        Err(e) => return one_line("parse", &e),
    };
    if let Err(e) = patina::spec::validate(&spec) {
        return one_line("validate", &e);
    }
    create_steps(&spec);
    cgroup_placement(&spec);
});

/// create_from_bundle's checks between validate and the first mkdir, in its order.
fn create_steps(spec: &Spec) {
    let linux = spec.linux().as_ref();
    // Joining by path opens the path: only plans that open nothing are built here.
    let joins = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|ns| ns.path().is_some()));
    if !joins {
        if let Err(e) = patina::namespaces::Plan::from_spec(linux) {
            one_line("namespaces", &e);
        }
    }
    let process = spec.process().as_ref().expect("validate requires process");
    if let Some(caps) = process.capabilities() {
        if let Err(e) = patina::capabilities::CapSets::from_spec(caps) {
            one_line("capabilities", &e);
        }
    }
    for limit in process.rlimits().iter().flatten() {
        let _ = patina::rlimits::resource(&limit.typ().to_string());
    }
    if let Some(seccomp) = linux.and_then(|l| l.seccomp().as_ref()) {
        match patina::seccomp::compile(seccomp) {
            Ok(s) => assert!(s.instructions() <= patina::seccomp::bpf::MAX_INSNS),
            Err(e) => {
                one_line("seccomp", &e);
                assert!(!e.to_string().contains("internal error"), "{e}");
            }
        }
    }
    // state.json keeps config.json's process for `exec`: it must read back.
    let saved = serde_json::to_vec(process).expect("process serialises");
    serde_json::from_slice::<oci_spec::runtime::Process>(&saved)
        .unwrap_or_else(|e| panic!("process does not read back from state.json: {e}"));
}

/// Where `create` would put the container's cgroup, on both host layouts.
fn cgroup_placement(spec: &Spec) {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref())
        .filter(|p| !p.as_os_str().is_empty());
    let inner = match path {
        // validate has run check_path on it.
        Some(p) => p.to_path_buf(),
        None => "fuzz-id".into(),
    };
    for text in [HYBRID, V2] {
        let layout = Layout::from_mountinfo(text);
        let cg = Cgroup::resolve_with(&layout, OWN, &inner);
        for dir in cg.dirs() {
            let mount = Path::new("/sys/fs/cgroup");
            assert!(
                !dir.components().any(|c| c == Component::ParentDir),
                "{inner:?} -> {dir:?}"
            );
            let mut rest = dir
                .strip_prefix(mount)
                .unwrap_or_else(|_| panic!("{inner:?} -> {dir:?}: outside the cgroup mount"))
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .map(|c| c.as_os_str().to_owned())
                .collect::<Vec<_>>();
            // The hierarchy's directory (memory, unified, ...) on v1/hybrid.
            if text == HYBRID {
                assert!(!rest.is_empty(), "{inner:?} -> {dir:?}");
                rest.remove(0);
            }
            assert!(
                !rest.is_empty(),
                "{inner:?} -> {dir:?}: the hierarchy's root"
            );
            assert!(
                inner.is_absolute() || rest != ["caller"],
                "{inner:?} -> {dir:?}: the caller's own cgroup"
            );
        }
    }
}
