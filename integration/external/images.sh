#!/usr/bin/env bash
# Makes the two root filesystems runc's bats suite would download (tests/integration/
# get-images.sh), from Debian packages only, and puts them where get-images.sh looks:
#   busybox-amd64.tar.xz  Debian's busybox-static with a link per applet, and the
#                         /etc/passwd and /etc/group of the busybox image (a `nobody`
#                         user is needed by cgroup_delegation.bats)
#   debian-amd64.tar.xz   `debootstrap --variant=minbase` of this host's Debian release
#                         (hooks.bats runs ldconfig in it)
# Both are tarred as the suite unpacks them: entries relative to the root (`./bin/...`).
# Built once into $PATINA_CONFORMANCE_CACHE (default /var/cache/patina-conformance) and
# copied into the checkout; re-running finds them there.
#
# Usage: images.sh RUNC_CHECKOUT
set -euo pipefail

cache=${PATINA_CONFORMANCE_CACHE:-/var/cache/patina-conformance}

make_busybox() {
    local out=$1 tree
    tree=$(mktemp -d "$cache/busybox.XXXXXX")
    chmod 755 "$tree" # the tar's "." entry: the container's / must be searchable by any uid
    mkdir -p "$tree"/{bin,dev,etc,home,proc,sys,usr/bin,usr/sbin,sbin,var/spool/mail,var/www,tmp,root}
    chmod 1777 "$tree/tmp"
    chmod 700 "$tree/root"
    cp /bin/busybox "$tree/bin/busybox"
    # The busybox image keeps every applet in /bin; the suite calls /bin/sh, /bin/true, ...
    local applet
    for applet in $("$tree/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -f "$tree/bin/busybox" "$tree/bin/$applet"
    done
    cat >"$tree/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PW
    cat >"$tree/etc/group" <<'GR'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
GR
    tar --numeric-owner -C "$tree" -cJf "$out.tmp" . && mv "$out.tmp" "$out"
    rm -rf "$tree"
}

make_debian() {
    local out=$1 tree suite mirror
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
    # The mirror apt already uses: the only one reachable here.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    tree=$(mktemp -d "$cache/debian.XXXXXX")
    chmod 755 "$tree"
    if ! debootstrap --variant=minbase "$suite" "$tree" "$mirror" >"$cache/debootstrap.log" 2>&1; then
        echo "images: debootstrap $suite from $mirror failed, see $cache/debootstrap.log" >&2
        rm -rf "$tree"
        return 1
    fi
    rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
    tar --numeric-owner -C "$tree" -cJf "$out.tmp" . && mv "$out.tmp" "$out"
    rm -rf "$tree"
}

main() {
    local checkout=$1 testdata arch
    testdata=$checkout/tests/integration/testdata
    [ -d "$testdata" ] || { echo "images: $testdata: not a runc checkout" >&2; exit 1; }
    arch=$(dpkg --print-architecture)
    mkdir -p "$cache"
    [ -s "$cache/busybox-$arch.tar.xz" ] || make_busybox "$cache/busybox-$arch.tar.xz"
    [ -s "$cache/debian-$arch.tar.xz" ] || make_debian "$cache/debian-$arch.tar.xz"
    local img
    for img in busybox debian; do
        cmp -s "$cache/$img-$arch.tar.xz" "$testdata/$img-$arch.tar.xz" ||
            cp "$cache/$img-$arch.tar.xz" "$testdata/$img-$arch.tar.xz"
    done
}

main "$@"
