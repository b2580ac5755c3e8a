#!/bin/sh
# Second stage, pid 1 on a tmpfs root: a pure cgroup v2 host, then every test binary.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Hand every controller down, as systemd does on a v2 host.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
hostname patina-guest
# The virtio disk (/dev/vda) for the io controller tests.
while read -r m; do insmod "/patina/modules/$m.ko" || echo "guest: insmod $m failed"; done < /patina/modules/order
i=0; while [ ! -e /sys/block/vda ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
ip link set lo up 2>/dev/null
echo "guest: $(uname -r), cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers), disk: $(cat /sys/block/vda/dev 2>/dev/null || echo none)"
if [ -x /patina/bench.sh ]; then
    /patina/bench.sh
    echo PATINA-VM-DONE
    sync
    poweroff -f
fi
read -r args < /patina/args
export PATINA_RUNTIME=/patina/patina RUST_BACKTRACE=1 PATH=/bin
for t in /patina/tests/*; do
    name=$(basename "$t")
    echo "=== $name"
    # shellcheck disable=SC2086 # $args: words for the test binary
    "$t" --test-threads=2 $args 2>&1
    echo "=== $name rc=$?"
done
echo PATINA-VM-DONE
sync
poweroff -f
