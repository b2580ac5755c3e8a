#!/usr/bin/env bash
# Benchmark: rootless `patina run` vs rootless `runc run` of the same busybox /bin/true
# bundle, both started by an unprivileged user this script makes (and removes on exit).
#
# Usage: bench/rootless.sh [-n ITERATIONS]
#   -n N   iterations per runtime (default 200, or $N)
# Environment: PATINA, RUNC as for bench/run.sh.
#
# The config is what `runc spec --rootless` makes of the suite's base config: the user's
# own uid/gid mapped to root (written directly, no newuidmap), no network and no cgroup
# namespace, /sys bound from the host, no resources; no cgroup is delegated to the user,
# so neither runtime makes one. Runs are interleaved; bench/measure.rs runs as the user
# (setpriv is outside the measurement) and reports the median wall time, CPU time of the
# whole process tree and peak RSS. Needs root (useradd, userdel, setpriv).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=${N:-200}
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -n*) n=${1#-n}; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$n" in ''|*[!0-9]*|0) echo "iterations must be a positive integer: $n" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "run as root (it makes a user to run the runtimes as)" >&2; exit 1; }

runc=${RUNC:-/usr/sbin/runc}
if [ -z "${PATINA:-}" ]; then
    patina="$repo/target/x86_64-unknown-linux-gnu/release/patina"
    [ -x "$patina" ] || (cd "$repo" && cargo build --release -p patina) >&2
else
    patina=$PATINA
fi

. "$here/common.sh"

user=prlbench$$
useradd -M -U -s /usr/sbin/nologin "$user"
uid=$(id -u "$user")
gid=$(id -g "$user")
bench_cleanup() {
    for rt in patina runc asroot; do
        bin=$patina; [ "$rt" = runc ] && bin=$runc
        for id in $(ls "$work/root-$rt" 2>/dev/null); do
            setpriv --reuid="$uid" --regid="$gid" --clear-groups \
                "$bin" --root "$work/root-$rt" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
    userdel "$user" 2>/dev/null || true
}
trap bench_cleanup EXIT INT TERM

python3 - "$bundle/config.json" "$uid" "$gid" <<'PY'
import json, sys
path, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = json.load(open(path))
l = c["linux"]
l["namespaces"] = [n for n in l["namespaces"] if n["type"] not in ("network", "cgroup")] + [{"type": "user"}]
l["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
l["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
for m in c["mounts"]:
    if m["destination"] == "/sys":
        m.update({"type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    m["options"] = [o for o in m.get("options", []) if not o.startswith(("uid=", "gid="))]
json.dump(c, open(path, "w"), indent=2)
PY
mkdir -p "$work/root-patina" "$work/root-runc" "$work/root-asroot"
chown -R "$uid:$gid" "$work"
chmod 755 "$work"

# one_run NAME BIN ID: appends "wall cpu rss" to $work/NAME.dat
one_run() {
    local name=$1 bin=$2 id=$3 line as_user
    as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups env -u XDG_RUNTIME_DIR)
    [ "$name" = asroot ] && as_user=()
    line=$("${as_user[@]}" "$measure" "$bin" --root "$work/root-$name" run --bundle "$bundle" "$id" 2>>"$work/$name.err")
    set -- $line
    if [ "${4:-x}" != 0 ]; then
        echo "$name run failed (exit ${4:-?}):" >&2
        cat "$work/$name.err" >&2 2>/dev/null || true
        exit 1
    fi
    echo "$1 $2 $3" >> "$work/$name.dat"
}

# asroot: patina run by root on the same config (maps written directly, a cgroup made, the
# read-only view of the binary instead of the memfd copy): what being rootless costs.
names=(patina runc asroot)
bins=("$patina" "$runc" "$patina")
echo "patina: $patina" >&2
echo "runc:   $runc ($("$runc" --version 2>/dev/null | head -1))" >&2
echo "as $user ($uid:$gid): warming up, then $n interleaved iterations..." >&2
for i in 1 2 3 4 5; do
    for k in 0 1 2; do one_run "${names[$k]}" "${bins[$k]}" "warm-$i"; done
done
rm -f "$work"/*.dat
for ((i = 1; i <= n; i++)); do
    if ((i % 2)); then order=(0 1 2); else order=(2 1 0); fi
    for k in "${order[@]}"; do one_run "${names[$k]}" "${bins[$k]}" "b-$i"; done
    ((i % 50 == 0)) && echo "  $i/$n" >&2
done

median() {
    cut -d' ' -f"$1" "$2" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
ms() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 1000}'; }
mib() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "n/a"}'; }
declare -A wall cpu rss
for name in "${names[@]}"; do
    wall[$name]=$(median 1 "$work/$name.dat")
    cpu[$name]=$(median 2 "$work/$name.dat")
    rss[$name]=$(median 3 "$work/$name.dat")
done
echo
echo "Median of $n rootless runs (an unprivileged user, its own uid/gid mapped, no cgroup) of \`run\` of a busybox /bin/true bundle on tmpfs ($(nproc) cores)."
echo
echo "| runtime | wall (ms) | CPU user+sys (ms) | peak RSS (MiB) |"
echo "|---|---:|---:|---:|"
for name in "${names[@]}"; do
    label="$name (rootless)"
    [ "$name" = asroot ] && label="patina run by root, same config"
    echo "| $label | $(ms "${wall[$name]}") | $(ms "${cpu[$name]}") | $(mib "${rss[$name]}") |"
done
echo "| **patina/runc** | **$(ratio "${wall[patina]}" "${wall[runc]}")** | **$(ratio "${cpu[patina]}" "${cpu[runc]}")** | **$(ratio "${rss[patina]}" "${rss[runc]}")** |"
echo "| **patina rootless/root** | **$(ratio "${wall[patina]}" "${wall[asroot]}")** | **$(ratio "${cpu[patina]}" "${cpu[asroot]}")** | **$(ratio "${rss[patina]}" "${rss[asroot]}")** |"
