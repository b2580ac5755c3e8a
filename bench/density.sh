#!/usr/bin/env bash
# Density: N containers started (P at a time) and left running, then deleted (P at a
# time), per runtime: patina, crun, runc. Reports the cost per container for each batch
# of S containers, so a cost that grows with the number already running shows.
#
# Usage: bench/density.sh [-n N] [-p P] [-s S] [--runtimes "patina crun runc"]
#   -n N   containers per runtime (default 500)
#   -p P   runtime invocations at a time (default 8)
#   -s S   batch size for the per-batch figures (default 50)
# Environment: PATINA, RUNC, CRUN as for bench/run.sh. A script to run by hand, not in CI:
# with the defaults it starts 1,500 containers (one runtime after the other, each
# runtime's N running together) and takes a few minutes.
#
# As bench/run.sh it runs in a private mount namespace with cgroup2 at /sys/fs/cgroup
# (crun refuses the host's v1 hybrid), every cgroup beneath this script's own and removed
# on exit. Each container runs `sleep` from the busybox bundle with its own cgroup.
# CPU comes from cgroup2's cpu.stat (usage_usec, kept without any controller enabled):
# the launching xargs and every runtime process run in a cgroup of their own, and each
# container's init is charged to its container's cgroup once the runtime puts it there:
# a batch's CPU is the launcher cgroup's growth plus what the batch's container cgroups
# used, read when the batch's runtimes have returned (their inits are then `sleep`).
# Wall time is the batch's, divided by its size: P at a time on this machine's cores.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=500 par=8 step=50
runtimes="patina crun runc"
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -p) par=$2; shift 2 ;;
        -s) step=$2; shift 2 ;;
        --runtimes) runtimes=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
for v in "$n" "$par" "$step"; do
    case "$v" in ''|*[!0-9]*|0) echo "counts must be positive integers: $v" >&2; exit 2 ;; esac
done
[ $((n % step)) = 0 ] || { echo "-n must be a multiple of -s" >&2; exit 2; }

if [ -z "${PATINA_BENCH_NS:-}" ]; then
    # A private mount namespace, and a subreaper: the detached containers' inits are
    # re-parented here when their runtime returns, and are reaped as they are killed.
    exec unshare --mount --propagation private env PATINA_BENCH_NS=1 python3 -c '
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
main = subprocess.Popen(sys.argv[1:]).pid
rc = 1
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == main:
        rc = os.waitstatus_to_exitcode(status)
sys.exit(rc)' "$0" "${args[@]}"
fi
bench_cgroup2=1

runc=${RUNC:-/usr/sbin/runc}
patina=${PATINA:-$repo/target/$(uname -m)-unknown-linux-gnu/release/patina}
if [ -z "${PATINA:-}" ] && [ ! -x "$patina" ]; then
    (cd "$repo" && cargo build --release -p patina) >&2
fi
crun=
case " $runtimes " in *" crun "*)
    crun=${CRUN:-$(command -v crun || true)}
    [ -n "$crun" ] || { echo "crun not found (apt-get install crun, or --runtimes)" >&2; exit 1; } ;;
esac
. "$here/common.sh"
[ -n "$crun" ] && build_memlock_shim
sed -i 's#"args": \["/bin/true"\]#"args": ["/bin/sleep", "100000"]#' "$bundle/config.json"
declare -A bin=([patina]=$patina [runc]=$runc [crun]=$crun)
cg=/sys/fs/cgroup$bench_cgroups
mkdir -p "$cg"

# usage CGROUP...: the sum of usage_usec of the cgroups given
usage() { cat "${@/%//cpu.stat}" 2>/dev/null | awk '$1 == "usage_usec" {s += $2} END {print s + 0}'; }
now_us() { echo $(($(date +%s%N) / 1000)); }
# launch RT ARGS...: xargs with the runtime, its stdin the work list, in RT's launcher cgroup
launch() {
    local rt=$1; shift
    (
        echo "$BASHPID" > "$cg/$rt/launcher/cgroup.procs"
        [ "$rt" = crun ] && export LD_PRELOAD=$memlock_shim
        exec xargs -P "$par" "$@" >/dev/null 2>>"$work/$rt.err"
    )
}

echo "$(load); $n containers per runtime, $par at a time, batches of $step" >&2
for rt in $runtimes; do
    b=${bin[$rt]}
    [ -x "$b" ] || { echo "not executable: $b" >&2; exit 1; }
    mkdir -p "$cg/$rt/launcher"
    python3 - "$bundle/config.json" "$work/d-$rt" "$bundle/rootfs" "$bench_cgroups/$rt" "$n" <<'PY'
import json, os, sys
source, out, rootfs, cgroup, n = sys.argv[1:]
config = json.load(open(source))
config["root"]["path"] = rootfs
for i in range(1, int(n) + 1):
    os.makedirs(f"{out}/b{i}")
    config["linux"]["cgroupsPath"] = f"{cgroup}/c{i}"
    json.dump(config, open(f"{out}/b{i}/config.json", "w"))
PY
    echo "$rt: starting ($(load))" >&2
    for ((first = 1; first <= n; first += step)); do
        last=$((first + step - 1))
        ids=$(seq "$first" "$last")
        u0=$(usage "$cg/$rt/launcher"); t0=$(now_us)
        for i in $ids; do echo "$work/d-$rt/b$i $rt-$i"; done |
            launch "$rt" -n 2 "$b" --root "$work/root-$rt" run --detach --bundle
        t1=$(now_us)
        u1=$(usage "$cg/$rt/launcher" $(for i in $ids; do echo "$cg/$rt/c$i"; done))
        running=$(ls "$work/root-$rt" | wc -l)
        [ "$running" = "$last" ] || { echo "$rt: $running containers after $last starts:" >&2; tail -5 "$work/$rt.err" >&2; exit 1; }
        echo "$rt start $first $last $((t1 - t0)) $((u1 - u0))" >> "$work/density.dat"
    done
    echo "$rt: deleting ($(load))" >&2
    for ((first = 1; first <= n; first += step)); do
        last=$((first + step - 1))
        u0=$(usage "$cg/$rt/launcher"); t0=$(now_us)
        for i in $(seq "$first" "$last"); do echo "$rt-$i"; done |
            launch "$rt" -n 1 "$b" --root "$work/root-$rt" delete --force
        t1=$(now_us); u1=$(usage "$cg/$rt/launcher")
        echo "$rt delete $first $last $((t1 - t0)) $((u1 - u0))" >> "$work/density.dat"
    done
    left=$(ls "$work/root-$rt" | wc -l)
    [ "$left" = 0 ] || { echo "$rt: $left containers left after delete" >&2; exit 1; }
done
echo "done ($(load))" >&2

# The tables: per batch, wall and CPU per container, each runtime a column.
set -- $runtimes
echo
echo "$n containers per runtime (\`run --detach\` of busybox \`sleep\`, then \`delete --force\`), $par at a time,"
echo "cgroup2 in a private mount namespace, one runtime after the other; $(load)."
echo "Per container, in ms: wall (batch time / batch size) / CPU (runtime, init and launcher)."
echo
header="| containers |"; rule="|---|"
for rt in "$@"; do header="$header $rt start |"; rule="$rule---:|"; done
for rt in "$@"; do header="$header $rt delete |"; rule="$rule---:|"; done
echo "$header"; echo "$rule"
for ((first = 1; first <= n; first += step)); do
    last=$((first + step - 1)); row="| $first-$last |"
    for what in start delete; do
        for rt in "$@"; do
            row="$row $(awk -v rt="$rt" -v w="$what" -v f="$first" -v s="$step" \
                '$1 == rt && $2 == w && $3 == f {printf "%.2f / %.2f", $5 / s / 1000, $6 / s / 1000}' "$work/density.dat") |"
        done
    done
    echo "$row"
done
row="| last/first batch CPU |"
for what in start delete; do
    for rt in "$@"; do
        row="$row $(awk -v rt="$rt" -v w="$what" -v f=1 -v l=$((n - step + 1)) \
            '$1 == rt && $2 == w && $3 == f {a = $6} $1 == rt && $2 == w && $3 == l {b = $6} END {printf "%.2fx", b / a}' "$work/density.dat") |"
    done
done
echo "$row"
