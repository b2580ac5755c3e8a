#!/usr/bin/env bash
# mmdebstrap hooks of build-image.sh: `image-setup.sh essential|customize ROOT`.
# Part of the image cache key: a change here builds a new image.
set -euo pipefail
phase=$1
root=$2

essential() {
    # The kernel's postinst builds the initramfs: only the modules that mount the root
    # (virtio disk, ext4) instead of `most`, which is slower to build and to boot.
    mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
    printf 'MODULES=list\n' > "$root/etc/initramfs-tools/conf.d/patina-guest.conf"
    printf '%s\n' virtio_pci virtio_blk ext4 > "$root/usr/share/initramfs-tools/modules.d/patina-guest"
}

customize() {
    echo patina-systemd-guest > "$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 patina-systemd-guest\n' > "$root/etc/hosts"
    # noinit_itable: the image is made on the host; no lazy inode-table zeroing under TCG.
    cat > "$root/etc/fstab" <<'EOF'
/dev/vda / ext4 rw,noinit_itable,errors=remount-ro 0 1
/dev/vdb /patina ext4 rw,noinit_itable,x-systemd.device-timeout=30s 0 0
EOF
    mkdir -p "$root/patina"
    # The tests and their runner come on the second disk (run.sh builds it per run):
    # the image holds only this unit, so a change to the tests never rebuilds the image.
    cat > "$root/etc/systemd/system/patina-tests.service" <<'EOF'
[Unit]
Description=patina tests from the second disk (integration/systemd-vm)
RequiresMountsFor=/patina
ConditionPathExists=/patina/guest.sh

[Service]
# exec: the unit counts as started once the runner runs, so that the runner's
# `systemctl is-system-running --wait` does not wait on this unit.
Type=exec
ExecStart=/patina/guest.sh
StandardInput=null
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
    chroot "$root" systemctl enable --quiet patina-tests.service
    # Nothing on the serial line but the runner; no timers or daemons the tests did not
    # ask for (they start private engines; the systemd-driver tests too).
    chroot "$root" systemctl mask serial-getty@ttyS0.service getty@tty1.service \
        apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
        fstrim.timer systemd-tmpfiles-clean.timer 2>/dev/null
    # podman's boot-time services (auto-update, restart of restart-policy containers) took
    # 25-30 s each of the guest's boot under TCG and have nothing to do here.
    chroot "$root" systemctl mask podman-auto-update.timer podman-auto-update.service \
        podman-restart.service 2>/dev/null
    chroot "$root" systemctl disable docker.service docker.socket containerd.service 2>/dev/null || true
    # A root shell for runs by hand (run.sh PATINA_SYSTEMD_VM_SHELL=1): no password.
    chroot "$root" passwd -d root >/dev/null
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log
}

"$phase"
