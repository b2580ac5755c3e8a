#!/usr/bin/env bash
# Runs integration test binaries inside a Debian 12 guest with systemd as PID 1 on pure
# cgroup v2 (issue 15): the host most users have, with docker, podman and containerd at
# their defaults. integration/vm is the busybox guest without systemd.
#
# Usage: integration/systemd-vm/run.sh [ENTRY...]
#   ENTRY is a line of the test list: `BINARY RUNTIME [VAR=value...] [-- TEST-ARGS...]`
#   (see tests.txt); default: the entries of tests.txt, or of tests-full.txt with
#   PATINA_SYSTEMD_VM_LIST=full. Example, one test by hand:
#     integration/systemd-vm/run.sh 'cgroups patina -- --exact pids_limit_caps_forks'
# Env: PATINA_SYSTEMD_VM_CACHE  image and .deb cache (default /var/cache/patina-systemd-vm)
#      PATINA_SYSTEMD_VM_TIMEOUT seconds for the whole guest run (default 900; full: 2700)
#      PATINA_SYSTEMD_VM_SHELL=1 after the tests, a root shell on this terminal (the serial
#                                console); `exit` powers the guest off
# The guest's console is kept in target/systemd-vm/console.txt.
#
# Builds the image if the cache has none (build-image.sh), builds patina, the shim and the
# test binaries, puts them with guest.sh and the list on a second ext4 disk, boots the
# image under QEMU TCG (this host's KVM is unusable) through a throwaway qcow2 overlay, and
# reads the results from the serial console: one line per entry and a closing
# "N passed, N failed". Exits non-zero on a failed test, a failed or missing entry, or a
# timeout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
list_file=$here/tests.txt
default_timeout=900
if [ "${PATINA_SYSTEMD_VM_LIST:-}" = full ]; then
    list_file=$here/tests-full.txt
    default_timeout=2700
fi
timeout_s=${PATINA_SYSTEMD_VM_TIMEOUT:-$default_timeout}
if [ $# -gt 0 ]; then entries=("$@"); else mapfile -t entries < <(grep -v '^#' "$list_file" | grep .); fi
# PATINA_SYSTEMD_VM_PROFILE=release: patina and the shim from a release build (benchmarks).
profile=${PATINA_SYSTEMD_VM_PROFILE:-debug}
bin=$repo/target/x86_64-unknown-linux-gnu/$profile

log() { echo "systemd-vm: $*" >&2; }
now() { date +%s; }

ensure_qemu() {
    command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null && return
    # As integration/vm/run.sh: bookworm's qemu-system-x86 would replace the machine's
    # backports qemu-utils, so both come from backports.
    local src=/etc/apt/sources.list.d/patina-backports.sources
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$src"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports --no-install-recommends qemu-system-x86 qemu-utils >/dev/null
}

# The test binaries named by the entries, from cargo's build messages.
build() {
    local release=()
    [ "$profile" = release ] && release=(--release)
    (cd "$repo" && cargo build -q "${release[@]}" -p patina -p containerd-shim-patina)
    local json names
    json=$(cd "$repo" && cargo test -q -p integration --no-run --message-format=json 2>/dev/null)
    # Builtins (@...) have no binary.
    names=$(for e in "${entries[@]}"; do read -r b _ <<<"$e"; if [ "${b#@}" = "$b" ]; then echo "$b"; fi; done | sort -u)
    for t in $names; do
        local exe
        exe=$(printf '%s\n' "$json" | python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and "test" in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])' "$t")
        [ -n "$exe" ] || { log "no test binary named $t"; exit 1; }
        exes+=("$t=$exe")
    done
}

# The second disk: /patina in the guest.
assemble() {
    local stage=$work/stage
    mkdir -p "$stage/bin" "$stage/tests"
    # Debug info stripped: a quarter of the size to copy and to page in under TCG; panics
    # still name the test and the message.
    strip --strip-debug -o "$stage/bin/patina" "$bin/patina"
    strip --strip-debug -o "$stage/bin/containerd-shim-patina-v2" "$bin/containerd-shim-patina-v2"
    for e in "${exes[@]}"; do strip --strip-debug -o "$stage/tests/${e%%=*}" "${e#*=}"; done
    printf '%s\n' "${entries[@]}" > "$stage/tests.list"
    cp "$here/guest.sh" "$stage/guest.sh"
    chmod +x "$stage/guest.sh"
    [ "${PATINA_SYSTEMD_VM_SHELL:-}" = 1 ] && touch "$stage/shell"
    truncate -s 1G "$work/tests.img"
    mkfs.ext4 -q -F -L patina-tests -d "$stage" "$work/tests.img"
    rm -rf "$stage"
}

boot() {
    local log=$work/console.log serial rc
    qemu-img create -q -f qcow2 -F raw -b "$image/base.img" "$work/overlay.qcow2"
    serial=(-serial "file:$log")
    [ "${PATINA_SYSTEMD_VM_SHELL:-}" = 1 ] && serial=(-serial mon:stdio)
    local append="root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1"
    # loglevel=1: no kernel messages (an OOM kill the tests cause) amid the results.
    append+=" quiet loglevel=1 panic=-1 fsck.mode=skip systemd.show_status=error"
    # On a busy host TCG makes udev slow: the test disk's device unit missed systemd's
    # 90 s default (an emergency shell instead of the tests). Wait up to 10 minutes.
    append+=" systemd.default_device_timeout_sec=600 systemd.default_timeout_start_sec=600"
    set +e
    if [ "${PATINA_SYSTEMD_VM_SHELL:-}" = 1 ]; then
        qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 4096 \
            -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$append" \
            -nographic -no-reboot -nic none \
            -drive "file=$work/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe" \
            -drive "file=$work/tests.img,if=virtio,format=raw,cache=unsafe" "${serial[@]}"
        exit 0
    fi
    # The guest's CPU time next to its wall time: TCG is CPU-bound, so on a busy host the
    # CPU seconds (over the 2 vCPU threads) estimate what an idle machine would take.
    /usr/bin/time -f '%e %U %S' -o "$work/qemu.time" \
        timeout "$timeout_s" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 4096 \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$append" \
        -display none -no-reboot -monitor none -nic none \
        -drive "file=$work/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe" \
        -drive "file=$work/tests.img,if=virtio,format=raw,cache=unsafe" \
        -pidfile "$work/qemu.pid" "${serial[@]}" >/dev/null 2>&1 &
    local qpid=$!
    # A boot that ends in systemd's emergency shell never runs the tests: stop it at once
    # rather than at the timeout.
    while kill -0 "$qpid" 2>/dev/null; do
        if grep -q 'You are in emergency mode' "$log" 2>/dev/null && [ -s "$work/qemu.pid" ]; then
            log "the guest's boot failed (emergency mode); stopping it"
            kill "$(cat "$work/qemu.pid")" 2>/dev/null
            sleep 2
        fi
        sleep 2
    done
    wait "$qpid"
    rc=$?
    set -e
    # /usr/bin/time reports the command's status as a first line when it is not 0.
    read -r q_wall q_user q_sys < <(tail -1 "$work/qemu.time")
    tr -d '\r' < "$log" > "$work/console.txt"
    mkdir -p "$repo/target/systemd-vm" && cp "$work/console.txt" "$repo/target/systemd-vm/console.txt"
    if [ "$rc" != 0 ]; then
        [ "$rc" = 124 ] && log "guest timed out after ${timeout_s}s" || log "qemu failed (exit $rc)"
        tail -40 "$work/console.txt" >&2
        exit 1
    fi
}

# One line per entry: the entry, its cargo result line, and its exit status (an engine
# teardown that finds leaks fails the binary after its tests passed).
report() {
    local txt=$work/console.txt passed=0 failed=0 bad=0 i=0
    grep -q '^PATINA-SYSTEMD-VM-DONE' "$txt" || { log "the guest did not finish"; tail -60 "$txt" >&2; exit 1; }
    grep '^guest:' "$txt" >&2 || true
    for e in "${entries[@]}"; do
        i=$((i + 1))
        local line rc p f
        line=$(awk -v t="=== [$i] $e" '$0 == t {on=1; next} on && /^test result:/ {print; exit}' "$txt")
        rc=$(awk -v t="=== [$i] rc=" 'index($0, t) == 1 {print substr($0, length(t) + 1); exit}' "$txt" | cut -d' ' -f1)
        if [ -z "$line" ]; then
            echo "[systemd guest] $e: no result (exit ${rc:-none})"
            bad=$((bad + 1))
            continue
        fi
        p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
            line+=" (but exited $rc)"
            bad=$((bad + 1))
        fi
        echo "[systemd guest] $e: $line"
    done
    if [ "$failed" != 0 ] || [ "$bad" != 0 ]; then
        grep -E -A6 '^(thread .* panicked|test .* FAILED|engine teardown|criu: )' "$txt" | head -120 >&2 || true
    fi
    # Skips say so by name in the tests' output: list them.
    grep -E '^(SKIP|skipped)|: skipped' "$txt" | sort -u | head -40 >&2 || true
    echo "systemd-vm: $passed passed, $failed failed, $bad entries failed or without result"
    [ "$failed" = 0 ] && [ "$bad" = 0 ]
}

start=$(now)
ensure_qemu
image=$("$here/build-image.sh")
t_image=$(now)
work=$(mktemp -d /dev/shm/patina-systemd-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
exes=()
build
assemble
t_build=$(now)
boot
t_boot=$(now)
set +e
report
rc=$?
set -e
log "image $((t_image - start))s, build and disk $((t_build - t_image))s, guest $((t_boot - t_build))s (qemu CPU ${q_user}s user + ${q_sys}s sys), total $((t_boot - start))s"
exit $rc
