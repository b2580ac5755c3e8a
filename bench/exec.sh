#!/usr/bin/env bash
# Benchmark: `exec CONTAINER /bin/true` into a running container (the Kubernetes
# exec-probe path): patina, crun, runc and the floor (`nsenter` into the same container's
# namespaces and root + exec).
#
# Usage: bench/exec.sh [-n ITERATIONS] [--no-crun] [--host-cgroups]   (default 200, or $N)
# Environment: PATINA, OLD, RUNC, CRUN as for bench/run.sh.
#
# As bench/run.sh: by default in a private mount namespace with cgroup2 at /sys/fs/cgroup
# (crun refuses the host's v1 hybrid), the containers' cgroups beneath this script's own.
# One container per runtime runs `sleep`; the exec runs are interleaved (rotating order)
# and each is measured by bench/measure.rs (wall, CPU of the whole tree, peak RSS).
# Prints medians, the load, and the ratios against the target (CPU <= 0.5x crun's).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=${N:-200}
use_crun=1
host_cgroups=0
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        --no-crun) use_crun=0; shift ;;
        --host-cgroups) host_cgroups=1; use_crun=0; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$n" in ''|*[!0-9]*|0) echo "iterations must be a positive integer: $n" >&2; exit 2 ;; esac
if [ "$host_cgroups" = 0 ] && [ -z "${PATINA_BENCH_NS:-}" ]; then
    exec unshare --mount --propagation private env PATINA_BENCH_NS=1 "$0" "${args[@]}"
fi
[ "$host_cgroups" = 0 ] && bench_cgroup2=1

runc=${RUNC:-/usr/sbin/runc}
patina=${PATINA:-$repo/target/$(uname -m)-unknown-linux-gnu/release/patina}
if [ -z "${PATINA:-}" ] && [ ! -x "$patina" ]; then
    (cd "$repo" && cargo build --release -p patina) >&2
fi
old=${OLD:-}
crun=
if [ "$use_crun" = 1 ]; then
    crun=${CRUN:-$(command -v crun || true)}
    [ -n "$crun" ] || echo "no crun row: crun is not installed (apt-get install crun)" >&2
fi
. "$here/common.sh"
[ -n "$crun" ] && build_memlock_shim
sed -i 's#"args": \["/bin/true"\]#"args": ["/bin/sleep", "100000"]#' "$bundle/config.json"

names=(patina)
[ -n "$crun" ] && names+=(crun)
names+=(runc floor)
[ -n "$old" ] && names+=(old)
declare -A bin=([patina]=$patina [runc]=$runc [crun]=$crun [old]=$old [floor]=nsenter)
declare -A pre=([crun]="env LD_PRELOAD=${memlock_shim:-}")

for name in "${names[@]}"; do
    [ "$name" = floor ] && continue
    make_bundle "$work/bundle-$name" "$bundle/config.json" "$name"
    ${pre[$name]:-} "${bin[$name]}" --root "$work/root-$name" run --detach \
        --bundle "$work/bundle-$name" "bench-$name" </dev/null >/dev/null
done
# The floor enters patina's container: its namespaces and root, no runtime.
init_pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
    "$(find "$work/root-patina/bench-patina" -name state.json | head -1)")

one_exec() {
    local name=$1 line
    if [ "$name" = floor ]; then
        line=$("$measure" nsenter -t "$init_pid" -m -u -i -n -p -C -r -w /bin/true)
    else
        line=$(${pre[$name]:-} "$measure" "${bin[$name]}" --root "$work/root-$name" exec \
            "bench-$name" /bin/true 2>>"$work/$name.err")
    fi
    set -- $line
    if [ "${4:-x}" != 0 ]; then
        echo "$name exec failed (exit ${4:-?}):" >&2; cat "$work/$name.err" >&2; exit 1
    fi
    echo "$1 $2 $3" >> "$work/$name.dat"
}

load_before=$(load)
echo "$load_before; warming up, then $n interleaved exec iterations..." >&2
for i in 1 2 3; do for name in "${names[@]}"; do one_exec "$name"; done; done
rm -f "$work"/*.dat
count=${#names[@]}
for ((i = 1; i <= n; i++)); do
    for ((j = 0; j < count; j++)); do
        if ((i % 2)); then k=$(((i + j) % count)); else k=$(((i + count - 1 - j) % count)); fi
        one_exec "${names[$k]}"
    done
done
load_after=$(load)

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$work/$1.dat" | median; }
declare -A wall cpu rss
for name in "${names[@]}"; do
    wall[$name]=$(col "$name" 1); cpu[$name]=$(col "$name" 2); rss[$name]=$(col "$name" 3)
done
layout="cgroup2 in a private mount namespace"
[ "$host_cgroups" = 1 ] && layout="the host's cgroup v1 hybrid"
echo
echo "Median of $n interleaved \`exec CONTAINER /bin/true\` into a running busybox container, $layout."
echo "Load before: $load_before; after: $load_after."
echo
echo "| runtime | wall (ms) | CPU user+sys (ms) | peak RSS (MiB) |"
echo "|---|---:|---:|---:|"
for name in "${names[@]}"; do
    case $name in
        floor) label="floor (nsenter + exec)" ;;
        old) label="patina, old binary" ;;
        crun) label="crun ($("$crun" --version | head -1 | awk '{print $3}'))" ;;
        runc) label="runc ($("$runc" --version | head -1 | awk '{print $3}'))" ;;
        *) label=$name ;;
    esac
    awk -v l="$label" -v w="${wall[$name]}" -v c="${cpu[$name]}" -v r="${rss[$name]}" \
        'BEGIN {printf "| %s | %.2f | %.2f | %.2f |\n", l, w/1000, c/1000, r/1024}'
done
for other in crun runc floor old; do
    [ -n "${wall[$other]:-}" ] || continue
    label="patina/$other"; [ "$other" = old ] && label="patina new/old"
    awk -v l="$label" -v pw="${wall[patina]}" -v ow="${wall[$other]}" -v pc="${cpu[patina]}" \
        -v oc="${cpu[$other]}" -v pr="${rss[patina]}" -v orss="${rss[$other]}" \
        'BEGIN {printf "| **%s** | **%.2fx** | **%.2fx** | **%.2fx** |\n", l, pw/ow, pc/oc, pr/orss}'
done
if [ -n "${cpu[crun]:-}" ]; then
    awk -v pc="${cpu[patina]}" -v oc="${cpu[crun]}" \
        'BEGIN {printf "| target | | <= 0.5x crun (%s) | |\n", (pc/oc <= 0.5 ? "met" : "MISSED")}'
fi
