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
ip link set lo up 2>/dev/null
echo "guest: $(uname -r), cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
export PATINA_RUNTIME=/patina/patina RUST_BACKTRACE=1 PATH=/bin
for t in /patina/tests/*; do
    name=$(basename "$t")
    echo "=== $name"
    "$t" --test-threads=2 2>&1
    echo "=== $name rc=$?"
done
echo PATINA-VM-DONE
sync
poweroff -f
