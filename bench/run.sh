#!/usr/bin/env bash
# Benchmark: `patina run` vs `runc run` of the same busybox /bin/true bundle.
#
# Usage: bench/run.sh [-n ITERATIONS] [--no-floor] [--resources] [--seccomp FILE]
#   -n N         iterations per runtime (default 200, or $N)
#   --no-floor   skip the `unshare` floor row
#   --resources  the config also sets memory, pids and cpu limits (and runc's
#                deny-all device rule), so each run creates and fills a cgroup
#   --seccomp F  add F (an OCI linux.seccomp object) to the config of both runtimes;
#                bench/podman-seccomp-x86_64.json is podman's default profile as podman
#                hands it to the runtime (arch map and default capabilities resolved)
# Environment:
#   PATINA   patina binary (default: target/<arch>-unknown-linux-gnu/release/patina, built if missing)
#   RUNC     runc binary   (default: /usr/sbin/runc)
#   To try the script without patina: PATINA=/usr/sbin/runc bench/run.sh
#
# Runs are interleaved (the order alternates each iteration) on a bundle in
# /dev/shm. Each run goes through bench/measure.rs, which reaps the whole
# process tree as a subreaper: wall time, CPU time (user+sys of every process
# of the tree) and peak RSS (largest max RSS in the tree). Prints medians as
# a markdown table with patina/runc ratios against the targets.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=${N:-200}
floor=1
resources=0
seccomp=
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -n*) n=${1#-n}; shift ;;
        --no-floor) floor=0; shift ;;
        --resources) resources=1; shift ;;
        --seccomp) seccomp=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$n" in ''|*[!0-9]*|0) echo "iterations must be a positive integer: $n" >&2; exit 2 ;; esac

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
for b in "$patina" "$runc"; do
    [ -x "$b" ] || { echo "not executable: $b" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "/bin/busybox missing: apt-get install busybox-static" >&2; exit 1; }

# The measuring wrapper, $work (removed on exit) and the /bin/true bundle in $bundle.
. "$here/common.sh"

if [ "$resources" = 1 ]; then
    sed -i 's|^  "linux": {$|  "linux": {\n    "resources": { "memory": { "limit": 268435456 }, "pids": { "limit": 128 }, "cpu": { "shares": 512, "quota": 50000, "period": 100000 }, "devices": [{ "allow": false, "access": "rwm" }] },|' "$bundle/config.json"
    grep -q '"resources"' "$bundle/config.json" || { echo "could not add resources to the config" >&2; exit 1; }
fi

if [ -n "$seccomp" ]; then
    [ -r "$seccomp" ] || { echo "cannot read $seccomp" >&2; exit 2; }
    # The same bundle without the profile, for the "patina (no seccomp)" row.
    mkdir -p "$work/bundle-plain"
    ln -s "$bundle/rootfs" "$work/bundle-plain/rootfs"
    cp "$bundle/config.json" "$work/bundle-plain/config.json"
    python3 - "$bundle/config.json" "$seccomp" <<'PY'
import json, sys
path, profile = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["linux"]["seccomp"] = json.load(open(profile))
json.dump(config, open(path, "w"), indent=2)
PY
fi

# one_run NAME BIN ID: appends "wall cpu rss" to $work/NAME.dat
one_run() {
    local name=$1 bin=$2 id=$3 line
    if [ "$name" = plain ]; then
        line=$("$measure" "$bin" --root "$work/root-$name" run --bundle "$work/bundle-plain" "$id" 2>>"$work/$name.err")
    elif [ "$name" = floor ]; then
        line=$("$measure" unshare --pid --fork --net --ipc --uts --mount --cgroup \
            chroot "$bundle/rootfs" /bin/true)
    else
        line=$("$measure" "$bin" --root "$work/root-$name" run --bundle "$bundle" "$id" 2>>"$work/$name.err")
    fi
    set -- $line
    if [ "${4:-x}" != 0 ]; then
        echo "$name run failed (exit ${4:-?}):" >&2
        cat "$work/$name.err" >&2 2>/dev/null || true
        exit 1
    fi
    echo "$1 $2 $3" >> "$work/$name.dat"
}

names=(patina runc)
bins=("$patina" "$runc")
[ "$floor" = 1 ] && { names+=(floor); bins+=(""); }
[ -n "$seccomp" ] && { names+=(plain); bins+=("$patina"); }

echo "patina: $patina" >&2
echo "runc:   $runc ($("$runc" --version 2>/dev/null | head -1))" >&2
echo "warming up, then $n interleaved iterations..." >&2
for i in 1 2 3 4 5; do
    for k in "${!names[@]}"; do one_run "${names[$k]}" "${bins[$k]}" "warm-$i"; done
done
rm -f "$work"/*.dat
for ((i = 1; i <= n; i++)); do
    if ((i % 2)); then order=(0 1 2 3); else order=(3 1 0 2); fi
    for k in "${order[@]}"; do
        [ "$k" -lt "${#names[@]}" ] || continue
        one_run "${names[$k]}" "${bins[$k]}" "b-$i"
    done
    ((i % 50 == 0)) && echo "  $i/$n" >&2
done

# median COLUMN FILE
median() {
    cut -d' ' -f"$1" "$2" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
declare -A wall cpu rss
for name in "${names[@]}"; do
    wall[$name]=$(median 1 "$work/$name.dat")
    cpu[$name]=$(median 2 "$work/$name.dat")
    rss[$name]=$(median 3 "$work/$name.dat")
done
ms() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 1000}'; }
mib() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "n/a"}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r <= t) ? "ok" : "MISSED"}'; }

echo
what="a busybox /bin/true bundle"
[ "$resources" = 1 ] && what="a busybox /bin/true bundle with memory, pids and cpu limits"
echo "Median of $n runs of \`run\` of $what on tmpfs ($(nproc) cores)${seccomp:+, seccomp profile $(basename "$seccomp")}."
echo
echo "| runtime | wall (ms) | CPU user+sys (ms) | peak RSS (MiB) |"
echo "|---|---:|---:|---:|"
for name in "${names[@]}"; do
    label=$name
    [ "$name" = floor ] && label="floor (unshare + chroot + exec)"
    [ "$name" = plain ] && label="patina without the seccomp profile"
    echo "| $label | $(ms "${wall[$name]}") | $(ms "${cpu[$name]}") | $(mib "${rss[$name]}") |"
done
rw=$(ratio "${wall[patina]}" "${wall[runc]}")
rc=$(ratio "${cpu[patina]}" "${cpu[runc]}")
rr=$(ratio "${rss[patina]}" "${rss[runc]}")
echo "| **patina/runc** | **$rw** | **$rc** | **$rr** |"
if [ -n "$seccomp" ]; then
    sw=$(ratio "${wall[patina]}" "${wall[plain]}")
    echo "| **patina with/without seccomp** | **$sw** | **$(ratio "${cpu[patina]}" "${cpu[plain]}")** | **$(ratio "${rss[patina]}" "${rss[plain]}")** |"
    echo "| seccomp target | <= 1.10x ($(verdict "${sw%x}" 1.10)) | | |"
fi
echo "| target | <= 0.65x ($(verdict "${rw%x}" 0.65)) | <= 0.30x ($(verdict "${rc%x}" 0.30)) | <= 3 MiB ($(verdict "$(mib "${rss[patina]}")" 3)) |"
