#!/bin/bash
# Idle-container density under containerd (issue 20, item 4): memory per `sleep` container
# through containerd-shim-patina-v2 driving patina vs containerd-shim-runc-v2 driving
# Debian's runc, at growing counts N. By hand, not in CI (minutes; up to a few GB).
#
# A private containerd 1.6 (shim/scripts/containerd-env.sh: its own root, state and socket
# under /dev/shm), the busybox image of shim/scripts/busybox-image.sh, the containers'
# cgroups beneath this script's own cgroup (bench/common.sh). One runtime at a time: start
# containers with `ctr run -d IMAGE ID sleep 1000000` ($PARALLEL at a time) up to each
# count, measure, and at the end kill and delete them all before the next runtime. At
# each count N, summed over the runtime's containers, divided by N:
#   shim RSS, shim PSS   /proc/PID/smaps_rollup of the live shims (PSS splits shared pages)
#   ctr cgroups          memory.usage_in_bytes of the containers' parent cgroup (v1 memory:
#                        the sleeps and the kernel objects charged to them), and its kmem part
#   containerd           containerd's RSS growth
#   subtree              growth of this script's own memory cgroup, which holds containerd,
#                        the shims and the containers' cgroups: everything charged (total),
#                        and its kmem part (kernel objects: stacks, page tables, slab)
#   used                 growth of MemTotal - MemAvailable (system-wide: other people's work
#                        moves it too, so a cross-check only)
# Growth is against the same runtime at 0 containers; "step" is the subtree growth from the
# previous count to this one, per added container (flat when it matches the total); "start"
# the seconds the step took, with the 5 s it waits before measuring.
#
# Memory guard: before each step `free -g`, and the runtime stops growing when this
# benchmark's subtree would pass $BUDGET_MB (default 7000) or MemAvailable falls under 4 GB.
# Usage: bench/density-containerd.sh ["PATINA COUNTS"] ["RUNC COUNTS"]
#        (as root; release build; defaults "100 250 500 1000" and "100 250 300")
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(dirname "$here")
. "$here/subreaper.sh"   # re-runs this script as a child subreaper (reaps exited shims)
patina_counts=${1:-100 250 500 1000}
runc_counts=${2:-100 250 300}
par=${PARALLEL:-4}
budget_kb=$(( ${BUDGET_MB:-7000} * 1024 ))
release=$repo/target/$(uname -m)-unknown-linux-gnu/release
[ -x "$release/containerd-shim-patina-v2" ] && [ -x "$release/patina" ] ||
    { echo "cargo build --release -p containerd-shim-patina -p patina first" >&2; exit 1; }
patina=$release/patina runc=/usr/sbin/runc
. "$here/common.sh"   # $work, $bench_cgroups, remove_bench_cgroups, load; cleanup on exit

dir=$work/containerd
sockets=/run/containerd/s   # containerd-shim-runc-v2's socket dir (a constant in 1.6)
sockets_before=$(ls "$sockets" 2>/dev/null || true)
ctr="ctr -a $dir/c.sock -n density"
image=docker.io/library/busybox:latest

# Shims of this containerd (their command line names its socket), zombies left out.
shim_pids() {
    local p
    for p in $(pgrep -f "containerd-shim-.*-address $dir/c.sock" || true); do
        [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" = Z ] || echo "$p"
    done
}

delete_all() {
    local ids
    ids=$($ctr tasks ls -q 2>/dev/null || true)
    [ -z "$ids" ] || echo "$ids" | xargs -r -P "$par" -n 20 $ctr tasks kill -s SIGKILL > /dev/null 2>&1 || true
    [ -z "$ids" ] || echo "$ids" | xargs -r -P "$par" -n 1 $ctr tasks delete -f > /dev/null 2>&1 || true
    ids=$($ctr containers ls -q 2>/dev/null || true)
    [ -z "$ids" ] || echo "$ids" | xargs -r -P "$par" -n 20 $ctr containers delete > /dev/null 2>&1 || true
}

dc_cleanup() {
    set +e
    [ -S "$dir/c.sock" ] && delete_all
    local shims
    shims=$(shim_pids)
    "$repo/shim/scripts/containerd-env.sh" down "$dir"
    # Shims still running (they exit once their tasks are gone): ours by pid, then reaped
    # by the python subreaper above.
    for p in $shims; do
        kill -0 "$p" 2>/dev/null && { echo "shim $p left: killing it" >&2; kill -9 "$p"; }
    done
    for s in $(ls "$sockets" 2>/dev/null); do
        echo "$sockets_before" | grep -qx "$s" || rm -f "$sockets/$s"
    done
    cleanup   # bench/common.sh: cgroups beneath ours, $work
}
# On a signal: exit, which runs the cleanup once (a trap alone would run it and go on).
trap dc_cleanup EXIT
trap 'exit 130' INT TERM

own_mem=/sys/fs/cgroup/memory$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
ctr_mem=/sys/fs/cgroup/memory$bench_cgroups
kb() { echo $(( $(cat "$1") / 1024 )); }
used_kb() { awk '/^MemTotal:/{t=$2} /^MemAvailable:/{a=$2} END{print t-a}' /proc/meminfo; }
avail_kb() { awk '/^MemAvailable:/{print $2}' /proc/meminfo; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# "shims rss_kb pss_kb ctr_kb ctr_kmem_kb containerd_kb subtree_kb used_kb subtree_kmem_kb threads"
snapshot() {
    local shims=0 rss=0 pss=0 threads=0 p
    for p in $(shim_pids); do
        read -r r s < <(awk '/^Rss:/{r=$2} /^Pss:/{s=$2} END{print r, s}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
        shims=$((shims + 1)) rss=$((rss + r)) pss=$((pss + s))
        threads=$((threads + $(awk '/^Threads:/{print $2}' "/proc/$p/status")))
    done
    local c=0 ck=0
    [ -d "$ctr_mem" ] && c=$(kb "$ctr_mem/memory.usage_in_bytes") ck=$(kb "$ctr_mem/memory.kmem.usage_in_bytes")
    echo "$shims $rss $pss $c $ck $(rss_kb "$(cat "$dir/pid")") $(kb "$own_mem/memory.usage_in_bytes") $(used_kb) $(kb "$own_mem/memory.kmem.usage_in_bytes") $threads"
}

flags() { # runtime -> the `ctr run` options, {} standing for the container's number
    case $1 in
    patina) echo "--runtime io.containerd.patina.v2 --runtime-config-path $dir/patina.toml" ;;
    runc) echo "--runtime io.containerd.runc.v2 --runc-binary $runc --runc-root $dir/runc-root" ;;
    esac
    echo "--cgroup $bench_cgroups/$1-{} --fifo-dir $dir/fifo"
}

start_range() { # runtime from to
    seq "$2" "$3" | xargs -P "$par" -I{} $ctr run -d $(flags "$1") "$image" "$1-{}" sleep 1000000 > /dev/null
}

"$repo/shim/scripts/containerd-env.sh" up "$dir" "$release"
"$repo/shim/scripts/busybox-image.sh" "$work/busybox.tar"
$ctr images import "$work/busybox.tar" > /dev/null
echo "BinaryName = \"$patina\"" > "$dir/patina.toml"
# One container of each first: the snapshot, the shim binaries and runc in the page cache.
for rt in patina runc; do $ctr run --rm $(flags $rt | sed "s/{}/warm/") "$image" "$rt-warm" true; done

results=()
for rt in patina runc; do
    counts=$patina_counts
    [ $rt = runc ] && counts=$runc_counts
    sleep 2
    read -r _ _ _ c0 k0 d0 s0 u0 sk0 _ < <(snapshot)
    have=0 prev_sub=$s0
    for n in $counts; do
        echo "== $rt: $have -> $n containers; $(load)" >&2
        free -g >&2
        # Growth so far per container, times the count wanted, must stay in the budget.
        read -r _ _ _ _ _ _ s _ _ _ < <(snapshot)
        per=$(( have ? (s - s0) / have : 20 * 1024 ))
        if [ $(( s - s0 + per * (n - have) )) -gt "$budget_kb" ] || [ "$(avail_kb)" -lt $((4 << 20)) ]; then
            echo "$rt: stopping at $have: $n would pass the memory budget" >&2
            break
        fi
        t=$(date +%s)
        start_range $rt $((have + 1)) "$n"
        have=$n
        sleep 5   # let the shims and containerd settle
        read -r shims rss pss c k d s u sk th < <(snapshot)
        row=$(awk -v rt=$rt -v n=$n -v shims=$shims -v rss=$rss -v pss=$pss -v c=$((c - c0)) \
            -v k=$((k - k0)) -v d=$((d - d0)) -v s=$((s - s0)) -v u=$((u - u0)) \
            -v sk=$((sk - sk0)) -v th=$th -v step=$((s - prev_sub)) -v added=$((n - ${last_n:-0})) -v secs=$(( $(date +%s) - t )) \
            'BEGIN { m = 1024 * n; printf "%-6s %5d %5d %5.1f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %5ds\n",
                rt, n, shims, shims ? th / shims : 0, rss / m, pss / m, c / m, k / m, d / m, s / m, sk / m, step / 1024 / added, u / m, secs }')
        echo "$row" >&2
        results+=("$row|$(load)")
        prev_sub=$s last_n=$n
    done
    last_n=0
    echo "== $rt: deleting $have containers" >&2
    delete_all
    for _ in $(seq 100); do [ -z "$(shim_pids)" ] && break; sleep 0.2; done
done

echo
echo "MB per container (growth from 0 containers of the runtime, divided by N)"
printf '%-6s %5s %5s %5s %8s %8s %8s %8s %8s %8s %8s %8s %8s %6s  %s\n' runtime N shims thr/s "shimRSS" "shimPSS" \
    "cgroups" "kmem" "ctrd" "subtree" "sub-kmem" "step" "used" "start" "load at measurement"
for r in "${results[@]}"; do echo "${r%%|*}  ${r#*|}"; done
