#!/usr/bin/env bash
# Benchmark: `patina-imagetool pull` (registry -> store -> bundle) against
# `skopeo copy` alone and `skopeo copy` + `umoci unpack`, from Debian's
# docker-registry on 127.0.0.1, for the 3-layer image of bench/image.sh.
#
# Usage: bench/pull.sh [-n RUNS]
# Environment:
#   WORK      where the image is kept (default /var/tmp/patina-imagetool-bench)
#   IMAGETOOL patina-imagetool binary (default: the release build, built if missing)
#
# Runs are interleaved, each into fresh directories (nothing cached), on
# tmpfs and on disk. Prints medians (seconds: wall, and CPU = user + sys of
# the process and its threads), bytes written and peak RSS. On a shared
# machine the CPU figures are the steadier ones.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=5
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
work=${WORK:-/var/tmp/patina-imagetool-bench}
tool=${IMAGETOOL:-$repo/target/x86_64-unknown-linux-gnu/release/patina-imagetool}
[ -x "$tool" ] || (cd "$repo" && cargo build --release -p patina-imagetool >&2)
for cmd in docker-registry skopeo umoci; do
    command -v "$cmd" >/dev/null || { echo "need $cmd (apt-get install $cmd)" >&2; exit 1; }
done
image=$("$here/image.sh" "$work")

reg=$(mktemp -d /dev/shm/patina-pull-bench-registry.XXXXXX)
port=$(( 20000 + RANDOM % 30000 )); while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$(( 20000 + RANDOM % 30000 )); done
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/storage\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$reg" "$port" > "$reg/config.yml"
docker-registry serve "$reg/config.yml" > "$reg/log" 2>&1 &
regpid=$!
outs=()
cleanup() { kill "$regpid" 2>/dev/null || true; wait "$regpid" 2>/dev/null || true; rm -rf "$reg" "${outs[@]}"; }
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
ref="docker://127.0.0.1:$port/bench:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$image:bench" "$ref"

now() { date +%s.%N; }
# timed OUTVAR cmd...: wall seconds of one run; its CPU seconds go to $cpu.
timed() {
    local __out=$1; shift
    local t0 t1 tf
    tf=$(mktemp)
    t0=$(now); /usr/bin/time -o "$tf" -f '%U %S' "$@" >/dev/null 2>&1; t1=$(now)
    cpu=$(awk '{print $1 + $2}' "$tf"); rm -f "$tf"
    printf -v "$__out" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
bytes() { du -sb "$@" | awk '{s += $1} END {print s}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.0f MB", b / 1e6}'; }

echo "image: $(du -sh "$image/blobs" | cut -f1) of blobs, 3 gzip layers, registry 127.0.0.1:$port" >&2
printf '| fs | skopeo copy (s) | skopeo copy + umoci unpack (s) | patina copy (s) | patina pull (s) | pull / skopeo copy | CPU: skopeo copy (s) | CPU: patina pull (s) | written: skopeo+umoci | written: patina pull | patina pull peak RSS |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for fs in tmpfs disk; do
    if [ "$fs" = tmpfs ]; then base=/dev/shm/patina-pull-bench.$$; else base=$work/pull-out.$$; fi
    outs+=("$base"); rm -rf "$base"; mkdir -p "$base"
    sc=(); su=(); pc=(); pp=(); csc=(); cpp=()
    for i in $(seq "$runs"); do
        timed t skopeo copy --quiet --src-tls-verify=false "$ref" "oci:$base/s:bench"; sc+=("$t"); csc+=("$cpu")
        t0=$(now)
        skopeo copy --quiet --src-tls-verify=false "$ref" "oci:$base/su:bench" >/dev/null
        umoci unpack --image "$base/su:bench" "$base/su-bundle" >/dev/null
        su+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}')")
        timed t "$tool" copy --quiet "$ref" "oci:$base/pc:bench"; pc+=("$t")
        timed t "$tool" pull --quiet --allow-devices --store "$base/pp-store" "$ref" "$base/pp-bundle"; pp+=("$t"); cpp+=("$cpu")
        if [ "$i" = 1 ]; then
            wsu=$(bytes "$base/su" "$base/su-bundle"); wpp=$(bytes "$base/pp-store" "$base/pp-bundle")
            rm -rf "$base/pp-store" "$base/pp-bundle"
            rss=$( { /usr/bin/time -f '%M' "$tool" pull --quiet --allow-devices --store "$base/pp-store" "$ref" "$base/pp-bundle" >/dev/null; } 2>&1 | tail -1)
        fi
        rm -rf "$base"/*
    done
    ms=$(median "${sc[@]}"); mu=$(median "${su[@]}"); mc=$(median "${pc[@]}"); mp=$(median "${pp[@]}")
    printf '| %s | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | %.2f | %s | %s | %s MB |\n' "$fs" "$ms" "$mu" "$mc" "$mp" \
        "$(awk -v a="$mp" -v b="$ms" 'BEGIN {print a / b}')" "$(median "${csc[@]}")" "$(median "${cpp[@]}")" \
        "$(mb "$wsu")" "$(mb "$wpp")" \
        "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')"
    rm -rf "$base"
done
