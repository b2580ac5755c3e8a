# Shared by the bench scripts (sourced; needs $here, $repo, $patina, $runc, and $crun
# when crun takes part): builds bench/measure.rs, makes $work on tmpfs (cleaned on exit,
# deleting any container left under $work/root-* and the cgroups of bench_cgroups), and a
# busybox bundle at $bundle running /bin/true.
# The measuring wrapper, rebuilt when its source changes.
measure="$repo/target/bench-measure"
if [ ! -x "$measure" ] || [ "$here/measure.rs" -nt "$measure" ]; then
    mkdir -p "$repo/target"
    rustc -O --edition 2021 -o "$measure" "$here/measure.rs"
fi

work=$(mktemp -d /dev/shm/patina-bench-XXXXXX)
cleanup() {
    set +e  # clean up all that can be, whatever fails
    for rt in patina runc crun plain old; do
        if [ -d "$work/root-$rt" ]; then
            bin=$patina
            case $rt in runc) bin=$runc ;; crun) bin="${crun:-true}" ;; old) bin="${old:-true}" ;; esac
            for id in $(ls "$work/root-$rt" 2>/dev/null); do
                LD_PRELOAD=${memlock_shim:-} "$bin" --root "$work/root-$rt" delete --force "$id" >/dev/null 2>&1 || true
            done
        fi
    done
    remove_bench_cgroups
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# bench_cgroups: the parent of every container cgroup of the benchmark, beneath this
# script's own cgroup in every hierarchy (on the v1 hybrid our cgroup is deepest in one
# hierarchy and the root in the others: the deepest path is beneath all of them). The
# configs set linux.cgroupsPath under it; cleanup removes whatever is left there.
#
# With bench_cgroup2=1 the caller runs in a private mount namespace of its own
# (`unshare --mount --propagation private`, done by the caller before sourcing this):
# crun 1.8.1 refuses this host's v1 hybrid layout, so every runtime then runs with
# cgroup2 (the host's unified hierarchy) mounted at /sys/fs/cgroup.
bench_cgroups=
cgroup_mounts=()
if [ "${bench_cgroup2:-0}" = 1 ]; then
    [ "$(findmnt -no FSTYPE /sys/fs/cgroup)" = cgroup2 ] || mount -t cgroup2 cgroup2 /sys/fs/cgroup
    own=$(sed -n 's/^0:://p' /proc/self/cgroup)
    cgroup_mounts=(/sys/fs/cgroup)
else
    own=$(awk -F: '{print length($3), $3}' /proc/self/cgroup | sort -n | tail -1 | cut -d' ' -f2-)
    while IFS=: read -r _ _ path; do
        case "$own/" in "${path%/}/"*) ;; *)
            echo "cannot place the bench cgroups beneath every own cgroup ($path vs $own)" >&2; exit 1 ;;
        esac
    done < /proc/self/cgroup
    cgroup_mounts=($(findmnt -rn -t cgroup,cgroup2 -o TARGET))
fi
bench_cgroups="${own%/}/patina-bench-$$"
# Where our deepest cgroup has no directory in another hierarchy (v1: the runtimes make
# those parents of $bench_cgroups there), the first missing one, removed again on exit.
missing_parents=()
for h in "${cgroup_mounts[@]}"; do
    p=$h
    for c in ${own//\// }; do
        p=$p/$c
        [ -d "$p" ] || { missing_parents+=("$p"); break; }
    done
done
rmdir_retry() {
    # A container's cgroup may take a moment to empty after its processes are reaped.
    for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$1" 2>/dev/null && return; sleep 0.1; done
    echo "could not remove cgroup $1" >&2
}
remove_bench_cgroups() {
    [ -n "$bench_cgroups" ] || return 0
    local h d
    for h in "${cgroup_mounts[@]}"; do
        [ -d "$h$bench_cgroups" ] || continue
        for d in $(find "$h$bench_cgroups" -depth -type d); do rmdir_retry "$d"; done
    done
    for h in "${missing_parents[@]}"; do
        [ -d "$h" ] || continue
        for d in $(find "$h" -depth -type d); do rmdir_retry "$d"; done
    done
}
# make_bundle DIR CONFIG CGROUP: a bundle in DIR on the shared rootfs (by absolute path:
# runc refuses a symlinked one) with CONFIG, its linux.cgroupsPath $bench_cgroups/CGROUP.
make_bundle() {
    mkdir -p "$1"
    python3 - "$2" "$1/config.json" "$bundle/rootfs" "$bench_cgroups/$3" <<'PY'
import json, sys
source, target, rootfs, cgroup = sys.argv[1:]
config = json.load(open(source))
config["root"]["path"] = rootfs
config["linux"]["cgroupsPath"] = cgroup
json.dump(config, open(target, "w"), indent=2)
PY
}

# crun 1.8.1 calls setrlimit(RLIMIT_MEMLOCK) (for its eBPF device filter) and fails if
# it cannot; root cannot raise that limit in this VM (no CAP_SYS_RESOURCE), while kernels
# >= 5.11 charge BPF to the memory cgroup and ignore memlock anyway. This shim, preloaded
# into crun only, makes exactly that call succeed without doing anything; every other
# setrlimit goes to libc. Built here so the benchmark needs nothing installed but cc.
memlock_shim=
build_memlock_shim() {
    memlock_shim=$work/memlock-shim.so
    cat > "$work/memlock-shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/resource.h>
int setrlimit(__rlimit_resource_t resource, const struct rlimit *limit) {
    static int (*real)(__rlimit_resource_t, const struct rlimit *);
    if (resource == RLIMIT_MEMLOCK)
        return 0;
    if (!real)
        real = (int (*)(__rlimit_resource_t, const struct rlimit *))dlsym(RTLD_NEXT, "setrlimit");
    return real(resource, limit);
}
C
    cc -O2 -shared -fPIC -o "$memlock_shim" "$work/memlock-shim.c" -ldl
}

# load: the load average and the runnable/total tasks (/proc/loadavg), and how many
# compilers other people are running.
load() {
    echo "load average $(cut -d' ' -f1-4 /proc/loadavg) on $(nproc) cores, $(pgrep -c -x rustc || true) rustc"
}

bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in true sh sleep; do ln -s busybox "$bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$bundle/rootfs/etc/group"
# The suite's base config (runc spec without resources and seccomp), running /bin/true.
cat > "$bundle/config.json" <<'JSON'
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/true"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "inheritable": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": false },
  "hostname": "bench",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
  ],
  "linux": {
    "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" } ],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
