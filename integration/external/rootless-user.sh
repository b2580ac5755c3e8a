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
# FEATURES is the suite's ROOTLESS_FEATURES: "idmap" keeps the ranges (the helpers then add
# runc_rootless_idmap's mappings to every config, through newuidmap/newgidmap), "" removes
# them as tests/rootless.sh's disable_idmap does (it also moves newuidmap away, which would
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
    if [ "$features" != idmap ]; then
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
    mkdir -m 755 "$AUX_DIR"
    chown "$((ROOTLESS_UIDMAP_START - 1000 + AUX_UID))" "$AUX_DIR"
    ROOTLESS_FEATURES=$features
    export ROOTLESS_USER ROOTLESS_UID ROOTLESS_GID ROOTLESS_FEATURES AUX_UID AUX_DIR \
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
    lo_u=${ROOTLESS_UIDMAP_START:-$uid} hi_u=$((${ROOTLESS_UIDMAP_START:-$uid} + ${ROOTLESS_UIDMAP_LENGTH:-1} - 1))
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
