#!/usr/bin/env bash
# Benchmark: `patina exec` vs `runc exec` of /bin/true into a running container
# (the Kubernetes exec-probe path).
#
# Usage: bench/exec.sh [-n ITERATIONS]     (default 200, or $N)
# Environment: PATINA, RUNC as for bench/run.sh.
#
# One container per runtime runs `sleep`; the exec runs are interleaved and each is
# measured by bench/measure.rs (wall, CPU of the whole tree, peak RSS). Prints medians
# and patina/runc ratios against the target (<= 0.5x wall and CPU).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=${N:-200}
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
runc=${RUNC:-/usr/sbin/runc}
patina=${PATINA:-$repo/target/$(uname -m)-unknown-linux-gnu/release/patina}
if [ -z "${PATINA:-}" ] && [ ! -x "$patina" ]; then
    (cd "$repo" && cargo build --release -p patina) >&2
fi
. "$here/common.sh"
sed -i 's#"args": \["/bin/true"\]#"args": ["/bin/sleep", "100000"]#' "$bundle/config.json"

for rt in patina runc; do
    bin=$patina; [ "$rt" = runc ] && bin=$runc
    "$bin" --root "$work/root-$rt" run --detach --bundle "$bundle" "bench-$rt" </dev/null >/dev/null
done

one_exec() {
    local name=$1 bin=$2 line
    line=$("$measure" "$bin" --root "$work/root-$name" exec "bench-$name" /bin/true 2>>"$work/$name.err")
    set -- $line
    if [ "${4:-x}" != 0 ]; then
        echo "$name exec failed (exit ${4:-?}):" >&2; cat "$work/$name.err" >&2; exit 1
    fi
    echo "$1 $2 $3" >> "$work/$name.dat"
}

echo "warming up, then $n interleaved exec iterations..." >&2
for i in 1 2 3; do one_exec patina "$patina"; one_exec runc "$runc"; done
rm -f "$work"/*.dat
for i in $(seq 1 "$n"); do
    if [ $((i % 2)) = 0 ]; then one_exec patina "$patina"; one_exec runc "$runc"
    else one_exec runc "$runc"; one_exec patina "$patina"; fi
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$work/$1.dat" | median; }
pw=$(col patina 1); pc=$(col patina 2); pr=$(col patina 3)
rw=$(col runc 1); rc=$(col runc 2); rr=$(col runc 3)
echo
echo "Median of $n runs of \`exec CONTAINER /bin/true\` into a running busybox container."
echo
echo "| runtime | wall (ms) | CPU user+sys (ms) | peak RSS (MiB) |"
echo "|---|---:|---:|---:|"
awk -v w="$pw" -v c="$pc" -v r="$pr" 'BEGIN {printf "| patina | %.2f | %.2f | %.2f |\n", w/1000, c/1000, r/1024}'
awk -v w="$rw" -v c="$rc" -v r="$rr" 'BEGIN {printf "| runc | %.2f | %.2f | %.2f |\n", w/1000, c/1000, r/1024}'
awk -v pw="$pw" -v rw="$rw" -v pc="$pc" -v rc="$rc" -v pr="$pr" -v rr="$rr" 'BEGIN {
    printf "| **patina/runc** | **%.2fx** | **%.2fx** | **%.2fx** |\n", pw/rw, pc/rc, pr/rr
    printf "| target | <= 0.50x (%s) | <= 0.50x (%s) | |\n", (pw/rw <= 0.5 ? "ok" : "MISSED"), (pc/rc <= 0.5 ? "ok" : "MISSED")
}'
