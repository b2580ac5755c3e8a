#!/usr/bin/env bash
# Packs the release binaries into one tarball per target, with checksums.
#
# Usage: tools/dist.sh VERSION OUTDIR TRIPLE...
# For each TRIPLE: OUTDIR/patina-VERSION-<arch>-linux.tar.gz holding
#   patina-VERSION-<arch>-linux/bin/{patina,containerd-shim-patina-v2,patina-imagetool}
#   patina-VERSION-<arch>-linux/share/...   (OUTDIR/share as it is: `make dist-share`)
#   patina-VERSION-<arch>-linux/README.md
# then OUTDIR/SHA256SUMS over the tarballs (`sha256sum -c SHA256SUMS` checks them).
# Every binary must be static (no interpreter): a tarball for any Linux of its arch.
# Tarballs are reproducible: sorted names, root owner, the last commit's time.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 VERSION OUTDIR TRIPLE..." >&2; exit 2; }
version=$1 out=$2; shift 2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bins=(patina containerd-shim-patina-v2 patina-imagetool)
mtime=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)
mkdir -p "$out"
tarballs=()
for triple in "$@"; do
    arch=${triple%%-*}
    name=patina-$version-$arch-linux
    stage=$(mktemp -d)
    mkdir -p "$stage/$name/bin"
    for b in "${bins[@]}"; do
        src=$repo/target/$triple/release/$b
        [ -x "$src" ] || { echo "dist: $src: missing (build it first)" >&2; rm -rf "$stage"; exit 1; }
        if ! file -b "$src" | grep -q 'statically linked'; then
            echo "dist: $src: not statically linked: $(file -b "$src")" >&2; rm -rf "$stage"; exit 1
        fi
        cp "$src" "$stage/$name/bin/"
    done
    [ -d "$out/share" ] && cp -a "$out/share" "$stage/$name/"
    cp "$repo/README.md" "$stage/$name/"
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -cf - "$name" \
        | gzip -n -9 > "$out/$name.tar.gz"
    rm -rf "$stage"
    tarballs+=("$name.tar.gz")
    echo "dist: $out/$name.tar.gz ($(du -k "$out/$name.tar.gz" | cut -f1) KiB)"
done
(cd "$out" && sha256sum "${tarballs[@]}" > SHA256SUMS && cat SHA256SUMS)
