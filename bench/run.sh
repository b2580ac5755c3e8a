#!/usr/bin/env bash
# Benchmark: `run`, and `create` + `start` + `delete`, of the same busybox /bin/true bundle
# by patina, crun, runc and the floor (`unshare` of the same namespaces + chroot + exec).
#
# Usage: bench/run.sh [-n ITERATIONS] [--mode run|csd|both] [--no-floor] [--no-crun]
#                     [--host-cgroups] [--resources] [--seccomp FILE]
#   -n N             iterations per runtime (default 200, or $N)
#   --mode M         run (`run`), csd (`create` + `start` + `delete`, one measurement) or both
#                    (default both)
#   --no-floor       skip the `unshare` floor row
#   --no-crun        skip crun
#   --host-cgroups   the host's cgroup v1 hybrid instead of the private cgroup2 mount
#                    (crun refuses the hybrid layout: no crun row then)
#   --resources      the config also sets memory, pids and cpu limits (and the deny-all
#                    device rule): needs the v1 controllers, so implies --host-cgroups
#   --seccomp F      add F (an OCI linux.seccomp object) to the config of every runtime;
#                    bench/podman-seccomp-x86_64.json is podman's default profile as podman
#                    hands it to the runtime; adds a "patina without the profile" row
# Environment:
#   PATINA   patina binary (default: target/<arch>-unknown-linux-gnu/release/patina, built if missing)
#   OLD      a second patina binary (e.g. built from an earlier commit): adds an "old" row
#            and the new/old ratio, interleaved like the rest
#   RUNC     runc binary (default: /usr/sbin/runc)
#   CRUN     crun binary (default: crun on PATH; `apt-get install crun`)
#
# By default the whole benchmark runs in a private mount namespace with the host's cgroup2
# hierarchy mounted at /sys/fs/cgroup (the only layout crun 1.8.1 accepts here), so all
# runtimes see the same layout; every container's cgroup is beneath this script's own,
# and removed on exit. Runs are interleaved (the order rotates each iteration) on a bundle
# in /dev/shm. Each run goes through bench/measure.rs, which reaps the whole process tree
# as a subreaper: wall time, CPU time (user+sys of every process of the tree) and peak RSS
# (largest max RSS in the tree). The machine is shared: CPU time is the steadier figure,
# and the load average is printed before and after. Prints medians as markdown tables
# with the ratios against the targets (issue 20).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=${N:-200}
mode=both
floor=1
use_crun=1
host_cgroups=0
resources=0
seccomp=
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -n*) n=${1#-n}; shift ;;
        --mode) mode=$2; shift 2 ;;
        --no-floor) floor=0; shift ;;
        --no-crun) use_crun=0; shift ;;
        --host-cgroups) host_cgroups=1; shift ;;
        --resources) resources=1; host_cgroups=1; shift ;;
        --seccomp) seccomp=$(realpath "$2"); shift 2 ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$n" in ''|*[!0-9]*|0) echo "iterations must be a positive integer: $n" >&2; exit 2 ;; esac
case "$mode" in run) modes=(run) ;; csd) modes=(csd) ;; both) modes=(run csd) ;;
    *) echo "--mode must be run, csd or both: $mode" >&2; exit 2 ;; esac

if [ "$host_cgroups" = 0 ] && [ -z "${PATINA_BENCH_NS:-}" ]; then
    exec unshare --mount --propagation private env PATINA_BENCH_NS=1 "$0" "${args[@]}"
fi
[ "$host_cgroups" = 0 ] && bench_cgroup2=1

runc=${RUNC:-/usr/sbin/runc}
if [ -z "${PATINA:-}" ]; then
    patina="$repo/target/$(uname -m)-unknown-linux-gnu/release/patina"
    if [ ! -x "$patina" ]; then
        echo "building patina (release)..." >&2
        (cd "$repo" && cargo build --release -p patina) >&2
    fi
else
    patina=$PATINA
fi
old=${OLD:-}
crun=
if [ "$use_crun" = 1 ]; then
    if [ "$host_cgroups" = 1 ]; then
        echo "no crun row: crun 1.8.1 refuses the host's cgroup v1 hybrid layout" >&2
    else
        crun=${CRUN:-$(command -v crun || true)}
        [ -n "$crun" ] || echo "no crun row: crun is not installed (apt-get install crun)" >&2
    fi
fi
for b in "$patina" "$runc" $crun $old; do
    [ -x "$b" ] || { echo "not executable: $b" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "/bin/busybox missing: apt-get install busybox-static" >&2; exit 1; }

# The measuring wrapper, $work (removed on exit), the bench cgroups and the bundle.
. "$here/common.sh"
[ -n "$crun" ] && build_memlock_shim

if [ "$resources" = 1 ]; then
    sed -i 's|^  "linux": {$|  "linux": {\n    "resources": { "memory": { "limit": 268435456 }, "pids": { "limit": 128 }, "cpu": { "shares": 512, "quota": 50000, "period": 100000 }, "devices": [{ "allow": false, "access": "rwm" }] },|' "$bundle/config.json"
    grep -q '"resources"' "$bundle/config.json" || { echo "could not add resources to the config" >&2; exit 1; }
fi
cp "$bundle/config.json" "$work/config-plain.json"
if [ -n "$seccomp" ]; then
    [ -r "$seccomp" ] || { echo "cannot read $seccomp" >&2; exit 2; }
    python3 - "$bundle/config.json" "$seccomp" <<'PY'
import json, sys
path, profile = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["linux"]["seccomp"] = json.load(open(profile))
json.dump(config, open(path, "w"), indent=2)
PY
fi

names=(patina)
[ -n "$crun" ] && names+=(crun)
names+=(runc)
[ "$floor" = 1 ] && names+=(floor)
[ -n "$seccomp" ] && names+=(plain)
[ -n "$old" ] && names+=(old)
declare -A bin=([floor]=unshare [patina]=$patina [plain]=$patina [runc]=$runc [crun]=$crun [old]=$old)

# One bundle per runtime and mode: the shared rootfs, the config with its own cgroup.
for name in "${names[@]}"; do
    [ "$name" = floor ] && continue
    for m in "${modes[@]}"; do
        config=$bundle/config.json
        [ "$name" = plain ] && config=$work/config-plain.json
        make_bundle "$work/bundle-$name-$m" "$config" "$name-$m"
    done
done

# one_run NAME MODE ID: appends "wall cpu rss" to $work/NAME-MODE.dat
one_run() {
    local name=$1 m=$2 id=$3 line b=${bin[$1]} r=$work/root-$1 bd=$work/bundle-$1-$2
    local pre=()
    [ "$name" = crun ] && pre=(env "LD_PRELOAD=$memlock_shim")
    if [ "$name" = floor ]; then
        line=$("$measure" unshare --pid --fork --net --ipc --uts --mount --cgroup \
            chroot "$bundle/rootfs" /bin/true)
    elif [ "$m" = run ]; then
        line=$("${pre[@]}" "$measure" "$b" --root "$r" run --bundle "$bd" "$id" 2>>"$work/$name.err")
    else
        line=$("${pre[@]}" "$measure" "$b" --root "$r" create --bundle "$bd" "$id" \
            :: "$b" --root "$r" start "$id" ::: "$b" --root "$r" delete "$id" 2>>"$work/$name.err")
    fi
    set -- $line
    if [ "${4:-x}" != 0 ]; then
        echo "$name $m failed (exit ${4:-?}):" >&2
        cat "$work/$name.err" >&2 2>/dev/null || true
        exit 1
    fi
    echo "$1 $2 $3" >> "$work/$name-$m.dat"
}

echo "patina: $patina" >&2
[ -n "$old" ] && echo "old:    $old" >&2
[ -n "$crun" ] && echo "crun:   $crun ($("$crun" --version | head -1)), preloading $memlock_shim" >&2
echo "runc:   $runc ($("$runc" --version 2>/dev/null | head -1))" >&2
echo "cgroups: $([ "$host_cgroups" = 1 ] && echo "host v1 hybrid" || echo "cgroup2 in a private mount namespace"), beneath $bench_cgroups" >&2
load_before=$(load)
echo "$load_before; warming up, then $n interleaved iterations..." >&2
for i in 1 2 3 4 5; do
    for name in "${names[@]}"; do
        for m in "${modes[@]}"; do
            [ "$name" = floor ] && [ "$m" = csd ] && continue
            one_run "$name" "$m" "warm-$i"
        done
    done
done
rm -f "$work"/*.dat
count=${#names[@]}
for ((i = 1; i <= n; i++)); do
    # Rotate the order each iteration, and reverse it every other one.
    for ((j = 0; j < count; j++)); do
        if ((i % 2)); then k=$(((i + j) % count)); else k=$(((i + count - 1 - j) % count)); fi
        for m in "${modes[@]}"; do
            [ "${names[$k]}" = floor ] && [ "$m" = csd ] && continue
            one_run "${names[$k]}" "$m" "b-$i"
        done
    done
    ((i % 50 == 0)) && echo "  $i/$n ($(load))" >&2
done
load_after=$(load)

# median COLUMN FILE
median() {
    cut -d' ' -f"$1" "$2" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
ms() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 1000}'; }
mib() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "n/a"}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r + 0 <= t) ? "met" : "MISSED"}'; }

what="a busybox /bin/true bundle"
[ "$resources" = 1 ] && what="$what with memory, pids and cpu limits"
[ -n "$seccomp" ] && what="$what with the seccomp profile $(basename "$seccomp")"
layout="cgroup2 in a private mount namespace"
[ "$host_cgroups" = 1 ] && layout="the host's cgroup v1 hybrid"
declare -A wall cpu rss
for m in "${modes[@]}"; do
    for name in "${names[@]}"; do
        [ "$name" = floor ] && [ "$m" = csd ] && continue
        wall[$name]=$(median 1 "$work/$name-$m.dat")
        cpu[$name]=$(median 2 "$work/$name-$m.dat")
        rss[$name]=$(median 3 "$work/$name-$m.dat")
    done
    echo
    if [ "$m" = run ]; then op='`run`'; else op='`create` + `start` + `delete`'; fi
    echo "Median of $n interleaved $op of $what on tmpfs, $layout."
    echo "Load before: $load_before; after: $load_after."
    echo
    echo "| runtime | wall (ms) | CPU user+sys (ms) | peak RSS (MiB) |"
    echo "|---|---:|---:|---:|"
    for name in "${names[@]}"; do
        [ -n "${wall[$name]:-}" ] || continue
        [ "$name" = floor ] && [ "$m" = csd ] && continue
        case $name in
            floor) label="floor (unshare + chroot + exec)" ;;
            plain) label="patina without the seccomp profile" ;;
            old) label="patina, old binary" ;;
            crun) label="crun ($("$crun" --version | head -1 | awk '{print $3}'))" ;;
            runc) label="runc ($("$runc" --version | head -1 | awk '{print $3}'))" ;;
            *) label=$name ;;
        esac
        echo "| $label | $(ms "${wall[$name]}") | $(ms "${cpu[$name]}") | $(mib "${rss[$name]}") |"
    done
    for other in crun runc floor plain old; do
        [ -n "${wall[$other]:-}" ] || continue
        [ "$other" = floor ] && [ "$m" = csd ] && continue
        label="patina/$other"
        [ "$other" = plain ] && label="patina with/without seccomp"
        [ "$other" = old ] && label="patina new/old"
        echo "| **$label** | **$(ratio "${wall[patina]}" "${wall[$other]}")** | **$(ratio "${cpu[patina]}" "${cpu[$other]}")** | **$(ratio "${rss[patina]}" "${rss[$other]}")** |"
    done
    if [ "$m" = run ]; then
        t="| targets | | "
        if [ -n "${cpu[crun]:-}" ]; then
            r=$(ratio "${cpu[patina]}" "${cpu[crun]}"); t="$t<= 0.7x crun ($(verdict "${r%x}" 0.7))"
        fi
        if [ -n "${cpu[floor]:-}" ]; then
            r=$(ratio "${cpu[patina]}" "${cpu[floor]}"); t="$t, <= 1.6x floor ($(verdict "${r%x}" 1.6))"
        fi
        echo "$t | <= 3 MiB ($(verdict "$(mib "${rss[patina]}")" 3)) |"
    fi
    unset wall cpu rss
    declare -A wall cpu rss
done
