#!/bin/bash
# An OCI image of Debian's static busybox for bench/shim.sh, built offline: umoci packs it,
# skopeo turns it into a docker-archive that `ctr images import` names
# docker.io/library/busybox:latest. (The tests build theirs in integration/src/image.rs.)
# Usage: busybox-image.sh OUT.tar
set -euo pipefail
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umoci init --layout "$work/oci"
umoci new --image "$work/oci:latest"
umoci unpack --rootless --image "$work/oci:latest" "$work/bundle" > /dev/null
root=$work/bundle/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
umoci repack --image "$work/oci:latest" "$work/bundle" > /dev/null
umoci config --image "$work/oci:latest" --config.cmd sh --config.env PATH=/bin > /dev/null
rm -f "$out"
skopeo copy --quiet "oci:$work/oci:latest" "docker-archive:$out:docker.io/library/busybox:latest"
