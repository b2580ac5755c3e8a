# The throwaway user run-runc-bats.sh --rootless runs the suite as (sourced, not run).
# shellcheck shell=bash
#
# useradd gives the user fresh /etc/subuid and /etc/subgid ranges (SUB_UID_COUNT in
# /etc/login.defs, 65536 on Debian: what runc's tests/rootless.sh gives its `rootless`
# user); userdel takes them away again. Nothing else on the host is changed: the suite's
# files are world-readable already, and the user writes only below the runner's scratch dir.

# useradd/userdel, retried while another process (a parallel test) holds the account files' lock.
rootless_accounts() {
    local try err
    for try in $(seq 1 100); do
        if err=$("$@" 2>&1); then return 0; fi
        [[ "$err" == *lock* ]] || break
        sleep 0.3
    done
    echo "$*: $err" >&2
    return 1
}

# "START COUNT" of NAME's line in FILE (/etc/subuid or /etc/subgid); empty when it has none.
rootless_range() {
    awk -F: -v n="$2" '$1 == n {print $2, $3; exit}' "$1"
}

# Makes user NAME and its dirs under SCRATCH, and sets ROOTLESS_* for the suite's helpers.
# FEATURES is the suite's ROOTLESS_FEATURES: with "idmap" the ranges stay (the helpers then
# add runc_rootless_idmap's mappings to every config, through newuidmap/newgidmap); without
# it they are removed, as tests/rootless.sh's disable_idmap does (it also moves newuidmap away, which would
# change the host: without ranges newuidmap refuses this user anyway).
rootless_user_create() {
    local name=$1 scratch=$2 features=$3 uid_range gid_range
    rootless_accounts useradd -M -U -s /usr/sbin/nologin -c "patina runc-bats rootless run" "$name" ||
        die "cannot make the test user $name"
    ROOTLESS_USER=$name
    ROOTLESS_UID=$(id -u "$name")
    ROOTLESS_GID=$(id -g "$name")
    uid_range=$(rootless_range /etc/subuid "$name")
    gid_range=$(rootless_range /etc/subgid "$name")
    [ -n "$uid_range" ] && [ -n "$gid_range" ] ||
        die "useradd gave $name no subordinate ranges (SUB_UID_COUNT in /etc/login.defs)"
    read -r ROOTLESS_UIDMAP_START ROOTLESS_UIDMAP_LENGTH <<<"$uid_range"
    read -r ROOTLESS_GIDMAP_START ROOTLESS_GIDMAP_LENGTH <<<"$gid_range"
    # runc_rootless_idmap maps container ids 1000.. of the range and gids up to LENGTH-1000.
    [ "$ROOTLESS_UIDMAP_LENGTH" -ge 65536 ] && [ "$ROOTLESS_GIDMAP_LENGTH" -ge 65536 ] ||
        die "$name's subordinate ranges are shorter than the 65536 ids the suite maps"
    ROOTLESS_KEEPS_RANGES=yes
    if [[ "$features" != *idmap* ]]; then
        # Given back: useradd may hand them to the next user at once, so from here on
        # nothing of this run is looked for by those ids (rootless_user_remove).
        ROOTLESS_KEEPS_RANGES=""
        rootless_accounts usermod \
            --del-subuids "$ROOTLESS_UIDMAP_START-$((ROOTLESS_UIDMAP_START + ROOTLESS_UIDMAP_LENGTH - 1))" \
            --del-subgids "$ROOTLESS_GIDMAP_START-$((ROOTLESS_GIDMAP_START + ROOTLESS_GIDMAP_LENGTH - 1))" \
            "$name" || die "cannot remove $name's subordinate ranges"
    fi
    # HOME (go env reads its config there) and TMPDIR (bats' run dir; the bundles under it
    # must be reachable by the container's mapped ids: a+x as the suite's setup_bundle does).
    mkdir -m 711 "$scratch/home" "$scratch/tmp"
    chown "$ROOTLESS_UID:$ROOTLESS_GID" "$scratch/home" "$scratch/tmp"
    # cwd.bats' idmap test works in a directory owned by container uid AUX_UID (as rootless.sh).
    AUX_UID=1024
    AUX_DIR=$scratch/aux
    mkdir -m 700 "$AUX_DIR" # the user must not reach it: only container uid AUX_UID
    [ -z "$ROOTLESS_KEEPS_RANGES" ] || chown "$((ROOTLESS_UIDMAP_START - 1000 + AUX_UID))" "$AUX_DIR"
    ROOTLESS_FEATURES=$features
    export ROOTLESS_USER ROOTLESS_UID ROOTLESS_GID ROOTLESS_FEATURES ROOTLESS_KEEPS_RANGES AUX_UID AUX_DIR \
        ROOTLESS_UIDMAP_START ROOTLESS_UIDMAP_LENGTH ROOTLESS_GIDMAP_START ROOTLESS_GIDMAP_LENGTH
}

# The command prefix that runs a program as the user, with only the environment the suite
# needs (tests/rootless.sh uses sudo -HE; here HOME and TMPDIR are the user's own dirs).
rootless_as_user() {
    local scratch=$1
    printf '%s\0' setpriv --reuid="$ROOTLESS_UID" --regid="$ROOTLESS_GID" --init-groups \
        env -i PATH="$PATH" HOME="$scratch/home" TMPDIR="$scratch/tmp" TERM="${TERM:-xterm}" LANG=C.UTF-8 \
        USER="$ROOTLESS_USER" LOGNAME="$ROOTLESS_USER" RUNC="$RUNC" \
        GOFLAGS="$GOFLAGS" GOTOOLCHAIN="$GOTOOLCHAIN" GOPROXY="$GOPROXY" GOCACHE="$scratch/home/go-build" \
        ROOTLESS_FEATURES="$ROOTLESS_FEATURES" AUX_UID="$AUX_UID" AUX_DIR="$AUX_DIR" \
        ROOTLESS_UIDMAP_START="$ROOTLESS_UIDMAP_START" ROOTLESS_UIDMAP_LENGTH="$ROOTLESS_UIDMAP_LENGTH" \
        ROOTLESS_GIDMAP_START="$ROOTLESS_GIDMAP_START" ROOTLESS_GIDMAP_LENGTH="$ROOTLESS_GIDMAP_LENGTH"
}

# Removes the user: its processes are gone by then (the sandbox's destroy kills by pid
# whatever is left in the sandbox, which the user cannot leave; it cannot write any other
# cgroup.procs). Files it or its mapped ids
# made since SINCE (epoch seconds) outside the scratch dir (removed before) are looked for
# where a test could write, removed and reported. Reports what it could not remove; never fails.
rootless_user_remove() {
    local name=$1 since=$2 uid lo_u hi_u left
    id -u "$name" >/dev/null 2>&1 || return 0
    uid=$(id -u "$name")
    # Its subordinate ids only while it still holds them (idmap); otherwise just its uid.
    lo_u=$uid hi_u=$uid
    if [ -n "${ROOTLESS_KEEPS_RANGES:-}" ]; then
        lo_u=$ROOTLESS_UIDMAP_START hi_u=$((ROOTLESS_UIDMAP_START + ROOTLESS_UIDMAP_LENGTH - 1))
    fi
    # Killed processes can take a moment to be reaped; anything still there after that is
    # reported, never killed here (by uid: not necessarily ours).
    local try
    for try in $(seq 1 20); do
        left=$(ps -e -o pid=,uid=,args= | awk -v u="$uid" -v lo="$lo_u" -v hi="$hi_u" \
            '$2 == u || ($2 >= lo && $2 <= hi)')
        [ -n "$left" ] || break
        sleep 0.25
    done
    [ -z "$left" ] || { echo "rootless: processes running as $name or its ids, not killed:" >&2 && sed 's/^/  /' <<<"$left" >&2; }
    left=$(find /tmp /var/tmp /dev/shm /run -xdev -newermt "@$since" \
        \( -uid "$uid" -o \( -uid +"$((lo_u - 1))" -uid -"$((hi_u + 1))" \) \) -prune -print 2>/dev/null || true)
    if [ -n "$left" ]; then
        echo "rootless: files $name left (removed):" >&2
        sed 's/^/  /' <<<"$left" >&2
        while IFS= read -r f; do rm -rf -- "$f"; done <<<"$left"
    fi
    rootless_accounts userdel "$name" || rootless_accounts userdel -f "$name" || true
    local file
    for file in /etc/passwd /etc/group /etc/subuid /etc/subgid /etc/shadow /etc/gshadow; do
        ! grep -q "^$name:" "$file" 2>/dev/null || echo "rootless: $file still names $name" >&2
    done
}

# The suite's "cgroup" feature, made safe for this host: run inside the sandbox's mount and
# cgroup namespaces (sandbox.sh), where "/" of every hierarchy is the sandbox beneath the
# runner's own cgroup. As tests/rootless.sh's enable_cgroup does at the host's root, it
# makes /runc-cgroups-integration-test there and lets the user's group create cgroups and
# move processes in it; the user's limits stay bounded by the sandbox's (the controllers are
# hierarchical), it cannot write any cgroup outside the sandbox, and sandbox.sh destroy
# removes the whole tree as it does after a root run.
rootless_delegate_cgroups() {
    local path=/runc-cgroups-integration-test fstype mnt dir
    while read -r fstype mnt; do
        dir=$mnt$path
        mkdir -p "$dir"
        if [ "$fstype" = cgroup2 ]; then
            # Moving a process between two cgroups takes write access to their common
            # ancestor's cgroup.procs: the namespace's root (the sandbox itself).
            chown "root:$ROOTLESS_GID" "$dir" "$dir/cgroup.subtree_control" "$dir/cgroup.procs" "$mnt/cgroup.procs"
            chmod g+rw "$dir/cgroup.subtree_control" "$dir/cgroup.procs" "$mnt/cgroup.procs"
            chmod g+rwx "$dir"
            continue
        fi
        chown "root:$ROOTLESS_GID" "$dir" "$dir/cgroup.procs" "$dir/tasks"
        chmod g+rwx "$dir"
        chmod g+rw "$dir/cgroup.procs" "$dir/tasks"
        # A v1 cpuset child is unusable until it has cpus and mems; the runtime fills its
        # own cgroups from here, as the user (the suite's setup chowns them the same way).
        if [ -e "$dir/cpuset.cpus" ]; then
            cat "$mnt/cpuset.cpus" >"$dir/cpuset.cpus"
            cat "$mnt/cpuset.mems" >"$dir/cpuset.mems"
            chown "$ROOTLESS_UID:$ROOTLESS_GID" "$dir/cpuset.cpus" "$dir/cpuset.mems"
        fi
        # update.bats' "update rt period and runtime" writes these (bounded by the
        # sandbox's real-time budget).
        for f in cpu.rt_period_us cpu.rt_runtime_us; do
            [ ! -e "$dir/$f" ] || chown "$ROOTLESS_UID:$ROOTLESS_GID" "$dir/$f"
        done
    done < <(awk '{ for (s = 7; $s != "-"; s++); fs = $(s + 1) }
        (fs == "cgroup" || fs == "cgroup2") && $5 ~ "^/sys/fs/cgroup" { print fs, $5 }' /proc/self/mountinfo)
    # The suite's pod tests mkdir -p /sys/fs/cgroup/CONTROLLER/... for every controller of
    # /proc/cgroups, mounted or not (net_cls, perf_event, ... are not, here): as root that
    # makes plain directories on the sandbox's tmpfs; the user gets the same place to do it.
    local c
    for c in $(awk '!/^#/ && $4 == 1 {print $1}' /proc/cgroups); do
        if [ ! -e "/sys/fs/cgroup/$c" ]; then
            mkdir -p "/sys/fs/cgroup/$c$path"
            chown "root:$ROOTLESS_GID" "/sys/fs/cgroup/$c$path"
            chmod g+rwx "/sys/fs/cgroup/$c$path"
        fi
    done
}
