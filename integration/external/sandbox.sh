#!/usr/bin/env bash
# A cgroup and mount sandbox for a suite that writes cgroups at absolute paths
# (runc's bats suite uses /runc-cgroups-integration-test/..., runtime-tools /cgrouptest).
#
#   sandbox.sh create NAME      make NAME beneath this process's own cgroup, in every hierarchy
#   sandbox.sh run NAME CMD...  run CMD in it: its processes in NAME, a cgroup namespace rooted
#                               at NAME and a mount namespace with fresh cgroup mounts, so that
#                               "/x" in a cgroupsPath is NAME/x on the host
#   sandbox.sh destroy NAME     kill what is left in NAME (by pid, thawed first), remove NAME and
#                               everything beneath it; prints what it had to clean up
#
# The mount namespace is a slave of the host's: mounts the suite makes (and leaks) never reach
# the host and vanish with the namespace's last process, which `destroy` ends.
# On cgroup v1 the sandbox gets what a child cgroup needs to be usable: the parent's cpuset, and
# a real-time budget (cpu.rt_runtime_us, $SANDBOX_RT_RUNTIME of each second, default 0.7 s) for
# the suite's rt tests, which copy it from the cgroup namespace's root.
set -euo pipefail

# "fstype mountpoint options own-cgroup" for each cgroup hierarchy mounted under /sys/fs/cgroup.
hierarchies() {
    # mountinfo: optional fields end at "-", then fstype, source, super options.
    awk '{ for (s = 7; $s != "-"; s++); fs = $(s + 1) }
        fs == "cgroup" || fs == "cgroup2" {
            if ($5 !~ "^/sys/fs/cgroup") next
            if ($4 != "/") { print "sandbox: " $5 " is mounted at " $4 ", not its root" > "/dev/stderr"; exit 1 }
            n = split($(s + 3), o, ","); opts = ""
            for (i = 1; i <= n; i++) if (o[i] != "rw" && o[i] != "ro") opts = opts (opts == "" ? "" : ",") o[i]
            print fs, $5, (opts == "" ? "-" : opts)
        }' /proc/self/mountinfo |
        while read -r fstype mnt opts; do
            local own key=$opts
            [ "$fstype" = cgroup2 ] && key=""
            own=$(awk -F: -v k="$key" '$2 == k {print $3; exit}' /proc/self/cgroup)
            # A v1 hierarchy with several controllers lists them in /proc/self/cgroup in kernel
            # order; match it as a set.
            if [ -z "$own" ] && [ "$fstype" = cgroup ]; then
                own=$(awk -F: -v k="$key" 'BEGIN {n = split(k, w, ","); for (i in w) want[w[i]] = 1}
                    { m = split($2, g, ","); if (m != n) next; ok = 1
                      for (i in g) if (!(g[i] in want)) ok = 0
                      if (ok) { print $3; exit } }' /proc/self/cgroup)
            fi
            [ -n "$own" ] || { echo "sandbox: no own cgroup for $mnt ($opts)" >&2; exit 1; }
            echo "$fstype $mnt $opts $own"
        done
}

# The sandbox's directory in each hierarchy, one a line.
dirs() {
    local name=$1 fstype mnt opts own
    while read -r fstype mnt opts own; do
        echo "$mnt${own%/}/$name"
    done < <(hierarchies)
}

create() {
    local name=$1 fstype mnt opts own dir
    while read -r fstype mnt opts own; do
        dir=$mnt${own%/}/$name
        [ -d "$dir" ] || mkdir "$dir"
        case ",$opts," in
        *,cpuset,*)
            cat "$dir/../cpuset.cpus" >"$dir/cpuset.cpus"
            cat "$dir/../cpuset.mems" >"$dir/cpuset.mems"
            ;;
        esac
        if [ -e "$dir/cpu.rt_runtime_us" ] && [ "$(cat "$dir/cpu.rt_runtime_us")" = 0 ]; then
            echo 1000000 >"$dir/cpu.rt_period_us"
            echo "${SANDBOX_RT_RUNTIME:-700000}" >"$dir/cpu.rt_runtime_us" ||
                echo "sandbox: no real-time budget left on this host; the suite's rt tests will fail" >&2
        fi
    done < <(hierarchies)
}

run() {
    local name=$1 dir
    shift
    local specs
    specs=$(hierarchies | awk '{print $1, $2, $3}')
    # Enter the sandbox in every hierarchy, then unshare: the cgroup namespace is rooted where
    # the process is when it unshares.
    while read -r dir; do
        echo $$ >"$dir/cgroup.procs"
    done < <(dirs "$name")
    SANDBOX_SPECS=$specs exec unshare --mount --cgroup --propagation slave -- "$0" inner "$@"
}

# In the new namespaces: cgroup mounts whose root is the sandbox, then the command.
inner() {
    # The host's cgroup mounts, seen from here, have roots outside the namespace ("/.."):
    # drop them (a slave's unmounts do not reach the host), or runtimes would find them first.
    umount -R /sys/fs/cgroup
    mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
    local fstype mnt opts
    while read -r fstype mnt opts; do
        mkdir -p "$mnt"
        if [ "$fstype" = cgroup2 ]; then
            mount -t cgroup2 cgroup2 "$mnt"
            # The namespace's root cgroup is a real child on the host, so it must stay empty
            # for controllers to be enabled beneath it (no internal processes on cgroup v2).
            mkdir -p "$mnt/init"
            echo $$ >"$mnt/init/cgroup.procs"
        else
            mount -t cgroup -o "$opts" cgroup "$mnt"
        fi
    done <<<"$SANDBOX_SPECS"
    unset SANDBOX_SPECS
    exec "$@"
}

# Every pid in the sandbox's subtree of one hierarchy.
pids_in() {
    find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

destroy() {
    local name=$1 dir pid left=0 round
    mapfile -t all < <(dirs "$name")
    for round in 1 2 3 4 5 6 7 8 9 10; do
        local pids=""
        for dir in "${all[@]}"; do
            [ -d "$dir" ] || continue
            # Frozen processes do not die: thaw every frozen cgroup first (v1 and v2).
            find "$dir" -name freezer.state -exec sh -c 'for f; do grep -q FROZEN "$f" && echo THAWED >"$f"; done; true' _ {} + 2>/dev/null || true
            find "$dir" -name cgroup.freeze -exec sh -c 'for f; do echo 0 >"$f"; done' _ {} + 2>/dev/null || true
            pids+=" $(pids_in "$dir" | tr '\n' ' ')"
        done
        pids=$(tr ' ' '\n' <<<"$pids" | grep . | sort -un | tr '\n' ' ' || true)
        [ -n "${pids// /}" ] || break
        [ "$round" = 1 ] && left=$(wc -w <<<"$pids")
        for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
        sleep 0.5
    done
    [ "$left" = 0 ] || echo "sandbox: killed $left process(es) left in $name"
    local n=0
    for dir in "${all[@]}"; do
        [ -d "$dir" ] || continue
        n=$((n + $(find "$dir" -mindepth 1 -type d ! -path "$dir/init" | wc -l)))
        # Deepest first.
        find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [ ! -d "$dir" ] || echo "sandbox: could not remove $dir" >&2
    done
    [ "$n" = 0 ] || echo "sandbox: removed $n cgroup(s) the suite left beneath $name"
}

cmd=${1:-}
shift || true
case $cmd in
create | run | destroy | dirs) "$cmd" "$@" ;;
inner) inner "$@" ;;
*)
    echo "usage: sandbox.sh create|run|destroy NAME [CMD...]" >&2
    exit 2
    ;;
esac
