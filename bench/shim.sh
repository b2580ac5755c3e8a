#!/bin/bash
# containerd-shim-patina-v2 vs containerd-shim-runc-v2 under a private containerd 1.6:
# N running containers (total RSS/PSS of the shims, shim processes), and the time of
# `ctr run --rm IMAGE ID true` end to end: each stack as users run it, patina's shim
# driving patina vs containerd-shim-runc-v2 driving Debian's runc. SHIM_RUNTIME and
# RUNC_SHIM_RUNTIME change the runtime under each shim (e.g. both runc, to compare shims alone).
# Usage: bench/shim.sh [N] [RUNS]     (as root; release build of the shim)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(dirname "$here")
. "$here/subreaper.sh"   # re-runs this script as a child subreaper (reaps exited shims)
n=${1:-50} runs=${2:-20}
release=$repo/target/$(uname -m)-unknown-linux-gnu/release
[ -x "$release/containerd-shim-patina-v2" ] || { echo "cargo build --release -p containerd-shim-patina first" >&2; exit 1; }
runtime=${SHIM_RUNTIME:-$release/patina}
runc_runtime=${RUNC_SHIM_RUNTIME:-/usr/sbin/runc}
dir=$(mktemp -d /tmp/pshim-bench-XXXX)
cg=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)/patina-shim-bench
cleanup() {
    set +e  # clean up all that can be: rmdir of the control files below fails by design
    "$repo/shim/scripts/containerd-env.sh" down "$dir"
    # Containers' cgroups go away as their shims finish: retry for a few seconds.
    for _ in $(seq 1 50); do
        left=0
        for h in /sys/fs/cgroup/*/; do
            [ -d "$h$cg" ] || continue
            rmdir "$h$cg"/* 2>/dev/null; rmdir "$h$cg" 2>/dev/null || left=1
        done
        [ "$left" = 0 ] && break
        sleep 0.1
    done
    true
}
trap cleanup EXIT INT TERM
"$repo/shim/scripts/containerd-env.sh" up "$dir" "$release"
"$repo/shim/scripts/busybox-image.sh" "$dir/busybox.tar"
ctr="ctr -a $dir/c.sock -n bench"
$ctr images import "$dir/busybox.tar" > /dev/null
echo "BinaryName = \"$runtime\"" > "$dir/patina.toml"
image=docker.io/library/busybox:latest

flags() { # shim id
    case $1 in
    patina) echo "--runtime io.containerd.patina.v2 --runtime-config-path $dir/patina.toml --cgroup $cg/$2 --fifo-dir $dir/fifo" ;;
    runc) echo "--runtime io.containerd.runc.v2 --runc-binary $runc_runtime --runc-root $dir/runc-root --cgroup $cg/$2 --fifo-dir $dir/fifo" ;;
    esac
}

shim_pids() { # comm prefix
    for p in $(pgrep -f "containerd-shim-$1-v2 .*-address $dir/c.sock" || true); do
        [ "$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)" = Z ] || echo "$p"
    done
}

memory() { # shim -> "procs rss_kb pss_kb"
    local procs=0 rss=0 pss=0
    for p in $(shim_pids "$1"); do
        procs=$((procs + 1))
        rss=$((rss + $(awk '/^Rss:/{print $2}' /proc/$p/smaps_rollup)))
        pss=$((pss + $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)))
    done
    echo "$procs $rss $pss"
}

# Memory: N running containers per shim.
declare -A procs rss pss total
for shim in patina runc; do
    for i in $(seq "$n"); do
        $ctr run -d $(flags $shim b$i) $image "$shim-b$i" sleep 100000 > /dev/null
    done
    sleep 1
    read -r procs[$shim] rss[$shim] pss[$shim] < <(memory $shim)
    for i in $(seq "$n"); do $ctr tasks kill -s SIGKILL "$shim-b$i" > /dev/null; done
    for i in $(seq "$n"); do
        for _ in $(seq 50); do $ctr tasks delete "$shim-b$i" > /dev/null 2>&1 && break; sleep 0.1; done
        $ctr containers delete "$shim-b$i" > /dev/null
    done
    $ctr run --rm $(flags $shim warm) $image "$shim-warm" true
    total[$shim]=0
done
# Time: `ctr run --rm ... true`, the two shims alternating so load affects both alike.
for i in $(seq "$runs"); do
    for shim in patina runc; do
        start=$(date +%s%N)
        $ctr run --rm $(flags $shim r$i) $image "$shim-r$i" true
        total[$shim]=$(( ${total[$shim]} + $(date +%s%N) - start ))
    done
done
printf '%-8s %10s %6s %12s %12s %12s %14s\n' shim containers shims "RSS total" "PSS total" "RSS/shim" "run --rm true"
for shim in patina runc; do
    p=${procs[$shim]}
    printf '%-8s %10d %6d %8d KiB %8d KiB %8d KiB %11.1f ms\n' $shim "$n" "$p" "${rss[$shim]}" "${pss[$shim]}" \
        $((p ? ${rss[$shim]} / p : 0)) "$(echo "${total[$shim]} / $runs / 1000000" | bc -l)"
done
