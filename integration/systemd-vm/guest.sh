#!/bin/bash
# The systemd guest's test runner: /patina/guest.sh, started by patina-tests.service (in the
# image, see image-setup.sh) with its output on the serial console. Waits for the boot to
# finish, runs each entry of /patina/tests.list, prints delimited results for run.sh, and
# powers the guest off.
#
# An entry: `BINARY RUNTIME [VAR=value...] [-- TEST-ARGS...]`
#   BINARY   a test binary in /patina/tests, or a builtin check (@criu-check)
#   RUNTIME  patina (/patina/bin/patina), runc (/usr/sbin/runc) or an absolute path: the
#            PATINA_RUNTIME of the binary (engine tests compare it with runc themselves)
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root RUST_BACKTRACE=1
export PATINA_SHIM_DIR=/patina/bin

echo PATINA-SYSTEMD-VM-START
state=$(systemctl is-system-running --wait 2>&1)
echo "guest: system $state at $(cut -d' ' -f1 /proc/uptime)s uptime; $(uname -r);" \
    "$(systemctl --version | head -1); cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
[ "$state" = running ] || systemctl --failed --no-legend --plain | sed 's/^/guest: failed unit: /'
# Where the boot went (TCG makes every unit slow): the total and the slowest units.
{ systemd-analyze time | head -1; systemd-analyze blame --no-pager | head -6; } 2>&1 | sed 's/^ */guest: boot: /'

# The tests make their cgroups beneath their own (the harness's rule on shared hosts). On
# cgroup v2 a cgroup that holds a process cannot hand controllers to children (the
# no-internal-processes rule), so the runner leaves this unit's cgroup for the root, as in
# the busybox guest; the engines' systemd-driver tests create their scopes through systemd.
echo $$ > /sys/fs/cgroup/cgroup.procs
# The tests keep their bundles in /dev/shm, which systemd mounts nodev,nosuid: a device
# node the tests mknod there could not be opened whatever the device cgroup says, and a
# setuid program there would not gain its owner's uid whatever noNewPrivileges says (the
# busybox guest and this machine mount it with neither).
mount -o remount,dev,suid /dev/shm

criu_check() {
    local out rc
    out=$(criu check 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed 's/^/criu: /'
    if [ $rc = 0 ] && grep -q 'Looks good' <<<"$out"; then
        echo "test criu_check ... ok"
        echo "test result: ok. 1 passed; 0 failed; 0 ignored"
    else
        echo "test criu_check ... FAILED"
        echo "test result: FAILED. 0 passed; 1 failed; 0 ignored"
    fi
}

run_entry() {
    local words=() args=() seen_dashes=0 w
    for w in $1; do
        if [ $seen_dashes = 1 ]; then args+=("$w"); elif [ "$w" = -- ]; then seen_dashes=1; else words+=("$w"); fi
    done
    local binary=${words[0]} runtime=${words[1]:-patina}
    case $runtime in
        patina) runtime=/patina/bin/patina ;;
        runc) runtime=/usr/sbin/runc ;;
    esac
    case $binary in
        @criu-check) criu_check; return 0 ;;
        @*) echo "guest: unknown builtin $binary"; return 2 ;;
    esac
    [ -x "/patina/tests/$binary" ] || { echo "guest: no test binary $binary"; return 2; }
    env "${words[@]:2}" PATINA_RUNTIME="$runtime" \
        "/patina/tests/$binary" --test-threads=2 --color=never "${args[@]}" </dev/null 2>&1
}

i=0
while IFS= read -r entry; do
    i=$((i + 1))
    t0=$(cut -d' ' -f1 /proc/uptime)
    echo "=== [$i] $entry"
    run_entry "$entry"
    rc=$?
    echo "=== [$i] rc=$rc ($(awk -v a="$t0" '{printf "%.0f", $1 - a}' /proc/uptime)s)"
done < /patina/tests.list
# What the tests left: units of containers (scopes) that outlived them.
systemctl list-units --type=scope --all --no-legend --plain | grep -v -E '^(init|session-)' | sed 's/^/guest: scope left: /'
echo "PATINA-SYSTEMD-VM-DONE at $(cut -d' ' -f1 /proc/uptime)s uptime"
if [ -e /patina/shell ]; then
    echo "guest: root shell (exit powers off)"
    setsid -c bash -il </dev/ttyS0 >/dev/ttyS0 2>&1
fi
sync
systemctl poweroff --force --force
