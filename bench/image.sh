#!/usr/bin/env bash
# The imagetool benchmarks' image: 3 gzip layers, about 80 MB of blobs and
# 234 MB unpacked (Debian bookworm minbase by debootstrap; then
# /usr/lib/python3.11; then /usr/share/perl plus whiteouts of layer-1
# content), as OCI layout WORK/image with ref `bench`. Built once and kept.
# Prints the layout's path.
#
# Usage: bench/image.sh WORK
# Environment: MIRROR, Debian mirror for debootstrap (default: the one apt uses)
set -euo pipefail
work=$1
mkdir -p "$work"
# Build chatter to stderr; stdout carries only the path.
exec 3>&1 1>&2
for cmd in umoci debootstrap; do
    command -v "$cmd" >/dev/null || { echo "need $cmd (apt-get install $cmd)" >&2; exit 1; }
done

mirror=${MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}

image="$work/image"
if [ ! -f "$image/index.json" ]; then
    if [ ! -d "$work/minbase" ]; then
        echo "debootstrap minbase from $mirror ..." >&2
        rm -rf "$work/minbase.tmp"
        debootstrap --variant=minbase bookworm "$work/minbase.tmp" "$mirror" >&2
        mv "$work/minbase.tmp" "$work/minbase"
    fi
    echo "building the 3-layer image with umoci ..." >&2
    rm -rf "$image.tmp" "$work/build"
    umoci init --layout "$image.tmp"
    umoci new --image "$image.tmp:bench"
    umoci unpack --image "$image.tmp:bench" "$work/build" >/dev/null
    cp -a "$work/minbase/." "$work/build/rootfs/"
    rm -f "$work/build/rootfs/var/cache/apt/archives/"*.deb
    umoci repack --refresh-bundle --image "$image.tmp:bench" "$work/build"
    # Layer 2: a tree of many small and mid-sized files.
    cp -a /usr/lib/python3.11 "$work/build/rootfs/opt/python3.11"
    umoci repack --refresh-bundle --image "$image.tmp:bench" "$work/build"
    # Layer 3: more files, plus deletions (whiteouts) of layer-1 content.
    cp -a /usr/share/perl "$work/build/rootfs/opt/perl"
    rm -rf "$work/build/rootfs/usr/share/man" "$work/build/rootfs/usr/share/doc/libc6"
    umoci repack --refresh-bundle --image "$image.tmp:bench" "$work/build"
    umoci config --image "$image.tmp:bench" --config.cmd /bin/sh
    umoci gc --layout "$image.tmp"
    rm -rf "$work/build"
    mv "$image.tmp" "$image"
fi

echo "$image" >&3
