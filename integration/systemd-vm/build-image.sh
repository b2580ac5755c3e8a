#!/usr/bin/env bash
# Builds the systemd guest's disk image (issue 15): Debian 12 (bookworm) with systemd as
# PID 1, the engines and runtimes of packages.txt, Debian's cloud kernel and its initramfs.
#
# Usage: integration/systemd-vm/build-image.sh      (prints the image's cache dir)
# Env:   PATINA_SYSTEMD_VM_CACHE (default /var/cache/patina-systemd-vm)
#
# The image is cached under $cache/<key>/ (base.img, vmlinuz, initrd.img), the key being a
# hash of packages.txt, image-setup.sh and the apt sources: a change to any of them builds a
# new image; of the older ones only the newest is kept (disk is tight). The .debs of the
# last build stay in $cache/debs so that a rebuild downloads only what changed.
#
# mmdebstrap --variant=minbase in root mode into a scratch dir (no docs, man pages, locales
# or apt lists; dpkg without fsync: the image is rebuilt, never repaired), then
# `mkfs.ext4 -d` of that tree into a sparse raw image. The apt sources are this machine's
# (/etc/apt/sources.list.d/debian.sources when it names bookworm).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PATINA_SYSTEMD_VM_CACHE:-/var/cache/patina-systemd-vm}
# Room for what the tests write outside /dev/shm (skopeo's cache, unit state, logs).
image_size=2G

log() { echo "systemd-vm: $*" >&2; }

sources() {
    local f=/etc/apt/sources.list.d/debian.sources
    if [ -r "$f" ] && grep -q '^Suites:.*bookworm' "$f"; then
        # Only the bookworm suites of the main archive and security (no backports: the
        # guest is plain Debian 12).
        sed -E 's/ bookworm-backports//' "$f"
    else
        printf 'deb http://deb.debian.org/debian bookworm main\n'
        printf 'deb http://deb.debian.org/debian bookworm-updates main\n'
        printf 'deb http://deb.debian.org/debian-security bookworm-security main\n'
    fi
}

ensure_tools() {
    local missing=()
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
    [ ${#missing[@]} = 0 ] && return
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

packages() { grep -v '^#' "$here/packages.txt" | grep . | sort -u | paste -sd, -; }

key=$( { packages; cat "$here/image-setup.sh"; sources; } | sha256sum | cut -c1-16)
out=$cache/$key
ready() { [ -s "$out/base.img" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; }
if ready; then
    echo "$out"
    exit 0
fi
# One build at a time (several worktrees share the cache): wait for another's, then
# look again. A guest still running on a removed image keeps its open file.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if ready; then
    echo "$out"
    exit 0
fi

ensure_tools
mkdir -p "$cache/debs"
# Disk is tight: leftovers of interrupted builds go, and of the older images only the
# newest stays (a worktree on another package list may still be using it).
rm -rf "$cache"/build.*
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name debs ! -name "$key" -printf '%T@ %p\n' |
    sort -rn | tail -n +2 | cut -d' ' -f2- | xargs -r rm -rf
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
sources > "$work/debian.sources"
root=$work/root
start=$(date +%s)
log "building the image $key (mmdebstrap, $(packages | tr , '\n' | wc -l) packages)"
# --skip=essential/unlink keeps the essential .debs in the apt cache for the sync-out.
# The essential hook runs before the kernel's postinst builds the initramfs: image-setup.sh
# configures initramfs-tools there (see the script).
mmdebstrap --mode=root --variant=minbase --format=directory --quiet \
    --include="$(packages)" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='force-unsafe-io' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="sync-in $cache/debs /var/cache/apt/archives" \
    --essential-hook="$here/image-setup.sh essential \"\$1\"" \
    --customize-hook="$here/image-setup.sh customize \"\$1\"" \
    --customize-hook="sync-out /var/cache/apt/archives $work/debs" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    bookworm "$root" "$work/debian.sources"
log "mmdebstrap took $(( $(date +%s) - start ))s"

# The .debs of this build replace the previous ones.
rm -rf "$cache/debs"
mkdir -p "$cache/debs"
find "$work/debs" -maxdepth 1 -name '*.deb' -exec mv -t "$cache/debs" {} +

# Kernel and initramfs boot from outside the image (qemu -kernel/-initrd).
mkdir -p "$work/out"
cp "$root"/boot/vmlinuz-* "$work/out/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/out/initrd.img"
rm -f "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$root"/boot/System.map-*
truncate -s "$image_size" "$work/out/base.img"
mkfs.ext4 -q -F -L patina-root -d "$root" "$work/out/base.img"
rm -rf "$root"
rm -rf "$out"
mv "$work/out" "$out"
log "image $key built in $(( $(date +%s) - start ))s: $(du -h --apparent-size "$out/base.img" | cut -f1) apparent, $(du -h "$out/base.img" | cut -f1) used"
echo "$out"
