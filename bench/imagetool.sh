#!/usr/bin/env bash
# Benchmark: `patina-imagetool unpack` vs `umoci unpack` of the same
# 3-layer image (Debian bookworm minbase + two layers, >200 MB unpacked).
#
# Usage: bench/imagetool.sh [-n RUNS]
# Environment:
#   WORK      where the image and the minbase rootfs are kept between runs
#             (default /var/tmp/patina-imagetool-bench; building them needs
#             debootstrap and apt's Debian mirror)
#   MIRROR    Debian mirror for debootstrap (default: the one apt uses)
#   IMAGETOOL patina-imagetool binary (default: target/<arch>-unknown-linux-gnu/release, built if missing)
#
# Runs are interleaved (umoci, patina cold, patina warm-cache variants in
# turn), on tmpfs (/dev/shm) and on disk ($WORK). Prints medians in seconds
# and ratios as a markdown table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${N:-5}
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
work=${WORK:-/var/tmp/patina-imagetool-bench}
mkdir -p "$work"

tool=${IMAGETOOL:-$repo/target/$(uname -m)-unknown-linux-gnu/release/patina-imagetool}
if [ ! -x "$tool" ]; then
    (cd "$repo" && cargo build --release -p patina-imagetool >&2)
fi
# The 3-layer image, built once and kept in $work (bench/image.sh).
image=$("$here/image.sh" "$work")

now() { date +%s.%N; }
# time_cmd OUTVAR cmd...: wall seconds of one run
time_cmd() {
    local __out=$1; shift
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    printf -v "$__out" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

size_unpacked() { du -sb "$1" | cut -f1; }

echo "image: $(du -sh "$image/blobs" | cut -f1) of blobs, $("$tool" inspect "$image:bench" | grep -c ' tar+gzip$') gzip layers" >&2

printf '| fs | umoci unpack (s) | patina cold (s) | ratio | warm --cache copy/reflink (s) | warm --cache hardlink (s) | warm --overlay (s) | warm hardlink / cold |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for fs in tmpfs disk; do
    if [ "$fs" = tmpfs ]; then base=/dev/shm/patina-imagetool-bench.$$; else base=$work/out.$$; fi
    rm -rf "$base"; mkdir -p "$base"
    cache="$base/cache"
    # Fill the cache once (not timed): the warm rows measure reuse.
    # --allow-devices everywhere: umoci makes the image's device nodes too.
    "$tool" unpack --quiet --allow-devices --image "$image:bench" --cache "$cache" "$base/prime" >/dev/null
    rm -rf "$base/prime"
    u=(); p=(); wc=(); wh=(); wo=()
    for i in $(seq "$runs"); do
        time_cmd t umoci unpack --image "$image:bench" "$base/u"; u+=("$t")
        [ "$i" = 1 ] && echo "unpacked size: $(size_unpacked "$base/u/rootfs") bytes" >&2
        rm -rf "$base/u"
        time_cmd t "$tool" unpack --quiet --allow-devices --image "$image:bench" "$base/p"; p+=("$t"); rm -rf "$base/p"
        time_cmd t "$tool" unpack --quiet --allow-devices --image "$image:bench" --cache "$cache" "$base/c"; wc+=("$t"); rm -rf "$base/c"
        time_cmd t "$tool" unpack --quiet --allow-devices --image "$image:bench" --cache "$cache" --cache-mode hardlink "$base/h"; wh+=("$t"); rm -rf "$base/h"
        time_cmd t "$tool" unpack --quiet --allow-devices --image "$image:bench" --cache "$cache" --overlay "$base/o"; wo+=("$t"); rm -rf "$base/o"
    done
    mu=$(median "${u[@]}"); mp=$(median "${p[@]}"); mc=$(median "${wc[@]}"); mh=$(median "${wh[@]}"); mo=$(median "${wo[@]}")
    printf '| %s | %.3f | %.3f | %.1fx faster | %.3f | %.3f | %.3f | %.0f%% |\n' \
        "$fs" "$mu" "$mp" "$(awk -v a="$mu" -v b="$mp" 'BEGIN {print a / b}')" "$mc" "$mh" "$mo" \
        "$(awk -v a="$mh" -v b="$mp" 'BEGIN {print 100 * a / b}')"
    rm -rf "$base"
done
