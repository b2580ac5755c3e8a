#!/usr/bin/env bash
# Runs runc's own integration suite (tests/integration/*.bats of a runc checkout, the
# contract names v1.1.5, f19387a6) against any runc-compatible runtime binary.
#
# Usage: run-runc-bats.sh [--rootless[=FEATURES]] RUNC_CHECKOUT RUNTIME [FILE.bats...]
#   --rootless  run bats as a throwaway unprivileged user (rootless-user.sh), as runc's
#               tests/rootless.sh does, with the suite's ROOTLESS_FEATURES: idmap (the
#               default: subordinate ranges, newuidmap), cgroup (a cgroup delegated to the
#               user, here inside the sandbox beneath this process's cgroup, never at the
#               root of the host's hierarchies as rootless.sh does), idmap+cgroup, or plain
#               (none of them).
# Env:   CONFORMANCE_TEST_TIMEOUT  seconds per test (default 120; bats fails the test past it)
#        CONFORMANCE_OUT           where logs and results go (default target/conformance/runc-bats-NAME)
#
# Sets up what Debian can give (bats, gawk, jq, criu, Go 1.23 for the suite's helpers
# recvtty, sd-helper and seccompagent, the busybox and debian images: images.sh), then runs
# each .bats file under script(1) (tty tests need a terminal), inside a cgroup sandbox
# beneath this process's own cgroup (sandbox.sh), so the suite's cgroups at
# /runc-cgroups-integration-test land there and go with it. Prints a per-file table, the
# failing tests and "N passed, N failed, N skipped"; OUT/results.tsv has one line per test,
# OUT/FILE.tap the suite's output. Exit 0 when every test passed or skipped, 1 when some
# failed, 2 when the run could not be set up.
set -euo pipefail
# shellcheck source=integration/external/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=integration/external/rootless-user.sh
. "$(dirname "${BASH_SOURCE[0]}")/rootless-user.sh"

if [ "${1:-}" = __inner ]; then
    # Re-entered inside the sandbox (see main): the suite dir and out dir come in the env.
    suite=$CONFORMANCE_SUITE out=$CONFORMANCE_OUT per_test=$CONFORMANCE_TEST_TIMEOUT
    rootless=$CONFORMANCE_ROOTLESS
else
rootless=""
case ${1:-} in
--rootless) rootless=idmap && shift ;;
--rootless=idmap | --rootless=cgroup | --rootless=idmap+cgroup | --rootless=plain) rootless=${1#--rootless=} && shift ;;
--rootless=*) die "--rootless takes idmap, cgroup, idmap+cgroup or plain, not ${1#--rootless=}" ;;
esac
[ $# -ge 2 ] || die "usage: run-runc-bats.sh [--rootless[=FEATURES]] RUNC_CHECKOUT RUNTIME [FILE.bats...]"
[ "$(id -u)" = 0 ] || die "needs root (the suite creates containers)"
checkout=$(cd "$1" && pwd) || die "$1: no such directory"
runtime=$(readlink -f "$2")
[ -x "$runtime" ] || die "$2: not an executable"
shift 2
suite=$checkout/tests/integration
[ -f "$suite/helpers.bash" ] || die "$checkout: no tests/integration/helpers.bash (not a runc checkout)"
check_commit "$checkout" f19387a6

name=$(basename "$runtime")
out=${CONFORMANCE_OUT:-$repo_dir/target/conformance/runc-bats${rootless:+-rootless-$rootless}-$name}
per_test=${CONFORMANCE_TEST_TIMEOUT:-120}
fi

setup() {
    ensure_packages bats gawk jq criu debootstrap busybox-static xz-utils gcc libseccomp-dev \
        pkg-config util-linux iproute2
    go_env
    local helper tags
    for helper in recvtty sd-helper seccompagent; do
        tags=""
        [ "$helper" = seccompagent ] && tags=seccomp # without it, a stub that only says "unsupported"
        if [ ! -x "$checkout/contrib/cmd/$helper/$helper" ]; then
            (cd "$checkout/contrib/cmd/$helper" && go build -tags "$tags" -o "$helper" .) ||
                die "building $helper failed"
        fi
    done
    "$external_dir/images.sh" "$checkout" || die "making the test images failed"
}

# The test names of a .bats file, in order, each once.
test_names() {
    sed -n 's/^@test "\(.*\)" {$/\1/p' "$suite/$1" | awk '!seen[$0]++'
}

# Runs one test inside the sandbox, under a pty and its own timeout (bats' BATS_TEST_TIMEOUT
# cannot be used: its watchdog is a background job of the test's shell, and the tests that
# call a bare `wait` would wait for it). Appends its TAP to OUT/FILE.tap and one line to
# OUT/results.tsv: "pass|fail|skip<TAB>file<TAB>test".
run_test() {
    local file=$1 test=$2 tap=$out/${1%.bats}.tap rc=0 one filter as_user=(env)
    one=$(mktemp "$TMPDIR/tap.XXXXXX")
    # --filter is a regex matched against the name: escape it, anchor it.
    filter="^$(sed 's/[][\.*^$(){}+?|/]/\\&/g' <<<"$test")\$"
    # Rootless: script(1) runs as the user too, so the test's terminal is the user's.
    [ -z "$rootless" ] || mapfile -d '' -t as_user < <(rootless_as_user "$CONFORMANCE_SCRATCH")
    timeout -k 10 "$per_test" "${as_user[@]}" CONFORMANCE_FILTER="$filter" CONFORMANCE_FILE=$file \
        script -qefc 'bats --tap --filter "$CONFORMANCE_FILTER" "$CONFORMANCE_FILE"' \
        /dev/null </dev/null >"$one" 2>&1 || rc=$?
    sed -i 's/\r$//' "$one"
    {
        echo "#### $test"
        cat "$one"
    } >>"$tap"
    awk -v f="$file" -v t="$test" -v rc="$rc" -v lim="$per_test" '
        /^(not )?ok [0-9]+ / {
            st = ($1 == "not") ? "fail" : "pass"
            if (st == "pass" && $0 ~ / # skip/) st = "skip"
            print st "\t" f "\t" t; got++
        }
        END { if (!got) print "fail\t" f "\t" t " (" ((rc == 124 || rc == 137) ? "timed out after " lim " s" : "no result, exit " rc) ")" }' \
        "$one" >>"$out/results.tsv"
    rm -f "$one"
}

# In the sandbox: every test of every file in turn.
inner() {
    local file test
    [[ "$rootless" != *cgroup* ]] || rootless_delegate_cgroups
    cd "$suite"
    for file in "$@"; do
        echo "== $file" >&2
        while IFS= read -r test; do
            run_test "$file" "$test"
        done < <(test_names "$file")
    done
}

main() {
    if [ "${1:-}" = __inner ]; then
        shift
        inner "$@"
        return
    fi
    setup
    local files=("$@")
    if [ ${#files[@]} -eq 0 ]; then
        mapfile -t files < <(cd "$suite" && ls ./*.bats | sed 's|^\./||')
    fi
    rm -rf "$out"
    mkdir -p "$out"
    local scratch sandbox start user=""
    scratch=$(mktemp -d /tmp/patina-conformance.XXXXXX)
    chmod 755 "$scratch" # userns tests reach the bundles as other users
    sandbox=conformance-bats-$$
    host_snapshot >"$scratch/before"
    start=$(date +%s)
    [ -z "$rootless" ] || user=prb$$
    # bash runs the EXIT trap on a signal only if the signal itself is trapped.
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # The user goes last, once the sandbox has no process left and its files are gone.
    # shellcheck disable=SC2064
    trap "'$external_dir/sandbox.sh' destroy '$sandbox'; rm -rf '$scratch'; [ -z '$user' ] || rootless_user_remove '$user' '$start'" EXIT
    if [ -n "$rootless" ]; then
        rootless_user_create "$user" "$scratch" "${rootless#plain}"
        echo "rootless ($rootless): user $user ($ROOTLESS_UID), subuid $ROOTLESS_UIDMAP_START+$ROOTLESS_UIDMAP_LENGTH" >&2
    fi
    "$external_dir/sandbox.sh" create "$sandbox"
    TMPDIR=$scratch CONFORMANCE_SCRATCH=$scratch CONFORMANCE_ROOTLESS=$rootless RUNC=$runtime CONFORMANCE_TEST_TIMEOUT=$per_test CONFORMANCE_OUT=$out CONFORMANCE_SUITE=$suite \
        "$external_dir/sandbox.sh" run "$sandbox" "$0" __inner "${files[@]}" ||
        echo "the suite's driver exited $?" >&2
    local took=$(($(date +%s) - start))
    "$external_dir/sandbox.sh" destroy "$sandbox"
    host_snapshot >"$scratch/after"
    echo
    echo "runc bats suite ($(git -C "$checkout" describe --tags 2>/dev/null || echo "$checkout")) against $runtime${rootless:+, rootless ($rootless)}, $took s"
    summarize "$out/results.tsv" "file"
    report_leftovers "$scratch/before" "$scratch/after"
    echo "logs: $out"
    ! grep -q '^fail' "$out/results.tsv"
}

main "$@"
