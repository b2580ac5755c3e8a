#!/usr/bin/env bash
# Runs integration test binaries inside a QEMU guest booted with a pure cgroup v2 kernel
# (cgroup_no_v1=all), as most production hosts are; this host is v1 hybrid.
#
# Usage: integration/vm/run.sh [TEST...]   (default: the tests listed in integration/vm/tests.txt)
# Env:   PATINA_VM_ARCH x86_64 (default: this machine's) or aarch64: the guest's architecture.
#          aarch64 on an x86_64 machine: the binaries cross-built (tools/arm64-toolchain.sh),
#          qemu-system-aarch64 -M virt, Debian's cloud-arm64 kernel and busybox-static:arm64
#        PATINA_VM_CACHE (default /var/cache/patina-vm: the kernels, their virtio modules and
#          the arm64 busybox, nothing else)
#        PATINA_VM_TIMEOUT seconds for the whole guest run (default 900)
#        PATINA_VM_TEST_ARGS extra arguments for every test binary (a name filter, --nocapture)
#        PATINA_VM_BENCH=N: instead of the tests, N `run`s of a busybox `true` container by
#          patina (release build) and by Debian's runc for the guest's arch (with the
#          libraries it needs), timed in the guest (integration/vm/bench.sh)
# The guest's console is kept in target/vm/console.txt (console-aarch64.txt for an arm64 guest).
#
# Builds patina and the test binaries (static, see .cargo/config.toml), packs them with
# busybox into an initramfs, boots Debian's cloud kernel under TCG (KVM is unusable here;
# for another architecture there is no choice),
# runs every test binary as root in the guest, and prints each binary's cargo-style
# "test result" line plus a closing "N passed, N failed" line. Exits non-zero on any
# failed test, a missing result, or a boot timeout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PATINA_VM_CACHE:-/var/cache/patina-vm}
timeout_s=${PATINA_VM_TIMEOUT:-900}
if [ $# -gt 0 ]; then tests=("$@"); else mapfile -t tests < <(grep -v '^#' "$here/tests.txt" | grep .); fi
bench_runs=${PATINA_VM_BENCH:-}
[ -z "$bench_runs" ] || tests=()
arch=${PATINA_VM_ARCH:-$(uname -m)}
triple=$arch-unknown-linux-gnu
case $arch in
    x86_64)
        qemu=qemu-system-x86_64 qemu_pkg=qemu-system-x86 kernel_meta=linux-image-cloud-amd64 deb_arch=amd64
        machine=(-cpu max) console=ttyS0
        ;;
    aarch64)
        # pauth-impdef: TCG's pointer authentication with a cheap hash (QEMU's advice).
        qemu=qemu-system-aarch64 qemu_pkg=qemu-system-arm kernel_meta=linux-image-cloud-arm64:arm64 deb_arch=arm64
        machine=(-M virt -cpu max,pauth-impdef=on) console=ttyAMA0
        ;;
    *) echo "vm: no guest for architecture $arch (x86_64, aarch64)" >&2; exit 2 ;;
esac
cargo=${CARGO:-cargo} console_name=console.txt
[ "$arch" = x86_64 ] || console_name=console-$arch.txt
if [ "$arch" != "$(uname -m)" ]; then
    toolchain_env=$("$repo/tools/arm64-toolchain.sh")
    eval "$toolchain_env"
    cargo=${ARM64_CARGO:-$cargo}
fi

ensure_qemu() {
    command -v "$qemu" >/dev/null && return
    # bookworm's qemu-system-x86 would replace the machine's backports qemu-utils: use backports.
    local src=/etc/apt/sources.list.d/patina-backports.sources
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$src"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports --no-install-recommends "$qemu_pkg" >/dev/null
}

# Debian's cloud kernel, downloaded and unpacked (never installed), cached by package name,
# with the modules the guest loads for its virtio disk (io.max needs a real block device).
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk)
ensure_kernel() {
    mkdir -p "$cache"
    local pkg
    pkg=$(apt-cache depends "$kernel_meta" 2>/dev/null | awk '/Depends: linux-image-6/ {print $2; exit}')
    [ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache depends "$kernel_meta" | awk '/Depends: linux-image-6/ {print $2; exit}'); }
    if [ ! -e "$cache/$pkg/vmlinuz" ] || [ ! -e "$cache/$pkg/modules/virtio_blk.ko" ]; then
        local tmp m; tmp=$(mktemp -d "$cache/dl.XXXXXX")
        (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null && dpkg -x ./*.deb x)
        mkdir -p "$cache/$pkg/modules"
        cp "$tmp"/x/boot/vmlinuz-* "$cache/$pkg/vmlinuz"
        for m in "${modules[@]}"; do
            find "$tmp/x/lib/modules" -name "$m.ko" -exec cp {} "$cache/$pkg/modules/" \;
        done
        rm -rf "$tmp"
    fi
    kernel=$cache/$pkg/vmlinuz
    kmods=$cache/$pkg/modules
}

# The guest's busybox: this machine's, or Debian's busybox-static for the guest's
# architecture (downloaded and unpacked, cached).
ensure_busybox() {
    busybox=/bin/busybox
    [ "$arch" = "$(uname -m)" ] && return
    busybox=$cache/busybox-$deb_arch/busybox
    [ -x "$busybox" ] && return
    local tmp; tmp=$(mktemp -d "$cache/dl.XXXXXX")
    (cd "$tmp" && apt-get download -qq "busybox-static:$deb_arch" 2>/dev/null && dpkg -x ./*.deb x)
    mkdir -p "$cache/busybox-$deb_arch"
    cp "$tmp/x/bin/busybox" "$busybox"
    rm -rf "$tmp"
}

build() {
    if [ -n "$bench_runs" ]; then
        (cd "$repo" && "$cargo" build -q --release --target "$triple" -p patina)
        return
    fi
    (cd "$repo" && "$cargo" build -q --target "$triple" -p patina)
    local json
    json=$(cd "$repo" && "$cargo" test -q --target "$triple" -p integration --no-run --message-format=json 2>/dev/null)
    for t in "${tests[@]}"; do
        local exe
        exe=$(printf '%s\n' "$json" | python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and "test" in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])' "$t")
        [ -n "$exe" ] || { echo "vm: no test binary named $t" >&2; exit 1; }
        exes+=("$t=$exe")
    done
}

assemble() {
    root=$work/root
    mkdir -p "$root"/{bin,proc,sys,dev,tmp,patina/tests,newroot}
    cp "$busybox" "$root/bin/busybox"
    local b
    local run=()
    [ "$arch" = "$(uname -m)" ] || run=(qemu-"$arch")
    for b in $("${run[@]}" "$busybox" --list); do [ "$b" = busybox ] || ln -s busybox "$root/bin/$b"; done
    local profile=debug
    [ -z "$bench_runs" ] || profile=release
    cp "$repo/target/$triple/$profile/patina" "$root/patina/patina"
    [ -z "$bench_runs" ] || add_runc
    for e in "${exes[@]}"; do cp "${e#*=}" "$root/patina/tests/${e%%=*}"; done
    printf '%s\n' "${PATINA_VM_TEST_ARGS:-}" > "$root/patina/args"
    mkdir -p "$root/patina/modules"
    for m in "${modules[@]}"; do cp "$kmods/$m.ko" "$root/patina/modules/"; done
    printf '%s\n' "${modules[@]}" > "$root/patina/modules/order"
    # The seccomp tests load podman's default profile from the host's containers-common.
    if [ -e /usr/share/containers/seccomp.json ]; then
        mkdir -p "$root/usr/share/containers"
        cp /usr/share/containers/seccomp.json "$root/usr/share/containers/"
    fi
    cp "$here/init" "$root/init"
    cp "$here/guest.sh" "$root/guest.sh"
    chmod +x "$root/init" "$root/guest.sh"
    (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initrd.gz"
}

# Debian's runc for the guest's architecture and the libraries it links (dynamic: the
# guest has no others), unpacked into the guest's root; the benchmark script.
add_runc() {
    local tmp p; tmp=$(mktemp -d "$work/debs.XXXXXX")
    for p in runc libseccomp2 libc6; do
        (cd "$tmp" && apt-get download -qq "$p:$deb_arch" 2>/dev/null) || { echo "vm: no $p:$deb_arch" >&2; exit 1; }
    done
    for p in "$tmp"/*.deb; do dpkg -x "$p" "$root"; done
    rm -rf "$tmp"
    cp "$here/bench.sh" "$root/patina/bench.sh"
    chmod +x "$root/patina/bench.sh"
    echo "$bench_runs" > "$root/patina/bench-runs"
}

boot() {
    local log=$work/console.log
    # A small sparse disk: the guest's /dev/vda, for io.max and io.weight.
    truncate -s 64M "$work/disk.img"
    set +e
    timeout "$timeout_s" "$qemu" -accel tcg,thread=multi "${machine[@]}" -smp 2 -m 3072 \
        -kernel "$kernel" -initrd "$work/initrd.gz" -nographic -no-reboot -monitor none \
        -drive "file=$work/disk.img,if=none,id=disk,format=raw,cache=unsafe" -device virtio-blk-pci,drive=disk \
        -append "console=$console quiet panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 rdinit=/init" \
        -serial "file:$log" >/dev/null 2>&1
    local rc=$?
    set -e
    tr -d '\r' < "$log" > "$work/console.txt"
    mkdir -p "$repo/target/vm" && cp "$work/console.txt" "$repo/target/vm/$console_name"
    [ "$rc" = 124 ] && { echo "vm: guest timed out after ${timeout_s}s" >&2; tail -40 "$work/console.txt" >&2; exit 1; }
    return 0
}

report() {
    local txt=$work/console.txt passed=0 failed=0 missing=0
    grep -q '^PATINA-VM-DONE' "$txt" || { echo "vm: the guest did not finish" >&2; tail -60 "$txt" >&2; exit 1; }
    if [ -n "$bench_runs" ]; then
        grep '^bench' "$txt" | sed "s/^/[$arch guest] /"
        grep -q '^bench: done' "$txt"
        return
    fi
    for e in "${exes[@]}"; do
        local t=${e%%=*} line
        line=$(awk -v t="$t" '$0 == "=== " t {on=1; next} on && /^test result:/ {print; exit}' "$txt")
        if [ -z "$line" ]; then
            echo "vm: $t: no result" >&2; missing=$((missing + 1)); continue
        fi
        echo "[$arch guest, cgroup v2] $t: $line"
        passed=$((passed + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")))
        failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
    done
    if [ "$failed" != 0 ] || [ "$missing" != 0 ]; then
        grep -E -A4 '^(thread .* panicked|test .* FAILED)' "$txt" | head -80 >&2 || true
    fi
    echo "vm: $passed passed, $failed failed"
    [ "$failed" = 0 ] && [ "$missing" = 0 ]
}

work=$(mktemp -d /dev/shm/patina-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
exes=()
start=$(date +%s)
ensure_qemu
ensure_kernel
ensure_busybox
build
assemble
boot
report
echo "vm: guest run took $(( $(date +%s) - start ))s" >&2
