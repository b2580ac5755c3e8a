#!/usr/bin/env bash
# Runs the OCI runtime-tools validation programs (validation/*/*.t of a runtime-tools
# checkout, the contract names 5e639034) against any runc-compatible runtime binary.
#
# Usage: run-runtime-tools.sh RUNTIME_TOOLS_CHECKOUT RUNTIME [PROGRAM...]
#        (PROGRAM: a validation directory name, e.g. linux_cgroups_memory)
# Env:   CONFORMANCE_TEST_TIMEOUT  seconds per program (default 120)
#        CONFORMANCE_OUT           where logs and results go (default target/conformance/runtime-tools-NAME)
#
# Builds runtimetest and the validation programs (`make runtimetest validation-executables`,
# Go 1.23 from Debian, offline from the vendor dir), then runs each program as the
# project's README says (RUNTIME=..., from the checkout, which holds rootfs-amd64.tar.gz and
# runtimetest), inside a cgroup sandbox beneath this process's own cgroup (sandbox.sh): the
# programs write cgroups at /cgrouptest. The runtime is called through a wrapper adding
# `--root` in a scratch directory, so failed programs leave no state in /run. A program
# passes when it exits 0 and none of its TAP lines is "not ok". Prints a per-program table,
# the failing programs with their first failure, and "N passed, N failed"; OUT/PROGRAM.tap
# keeps each program's output. Exit 0 when all passed, 1 when some failed, 2 on setup errors.
set -euo pipefail
# linux_ns_itype runs a container without a mount namespace: runc then makes the mount
# namespace's `/` rslave and leaves the config's mounts behind. Run every program in a
# private mount namespace of this script's own, so no runtime changes this machine's.
if [ -z "${PATINA_RT_OWN_MOUNT_NS:-}" ]; then
    exec env PATINA_RT_OWN_MOUNT_NS=1 unshare --mount --propagation private "$0" "$@"
fi
# shellcheck source=integration/external/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_args() {
    [ $# -ge 2 ] || die "usage: run-runtime-tools.sh RUNTIME_TOOLS_CHECKOUT RUNTIME [PROGRAM...]"
    [ "$(id -u)" = 0 ] || die "needs root (the programs create containers)"
    checkout=$(cd "$1" && pwd) || die "$1: no such directory"
    runtime=$(readlink -f "$2")
    [ -x "$runtime" ] || die "$2: not an executable"
    [ -d "$checkout/validation" ] || die "$checkout: no validation/ (not a runtime-tools checkout)"
    check_commit "$checkout" 5e639034
    name=$(basename "$runtime")
    out=${CONFORMANCE_OUT:-$repo_dir/target/conformance/runtime-tools-$name}
}

build() {
    ensure_packages make gcc util-linux iproute2 tar
    go_env
    # make rebuilds every program each time (its targets are phony); skip it when all exist.
    local missing
    missing=$(cd "$checkout" && find validation -name '*.go' ! -path '*/util/*' | sed 's/\.go$/.t/' |
        while read -r t; do [ -x "$t" ] || echo "$t"; done)
    if [ -n "$missing" ] || [ ! -x "$checkout/runtimetest" ]; then
        make -C "$checkout" runtimetest validation-executables >"$out/build.log" 2>&1 ||
            die "building the validation programs failed, see $out/build.log"
    fi
}

# In the sandbox: each program with its own timeout; "program<TAB>exit" per line on stdout.
inner() {
    local prog rc
    cd "$CONFORMANCE_CHECKOUT"
    for prog in "$@"; do
        echo "== $prog" >&2
        rc=0
        timeout -k 10 "$CONFORMANCE_TEST_TIMEOUT" "validation/$prog/$prog.t" \
            </dev/null >"$CONFORMANCE_OUT/$prog.tap" 2>"$CONFORMANCE_OUT/$prog.stderr" || rc=$?
        printf '%s\t%s\n' "$prog" "$rc" >>"$CONFORMANCE_OUT/exits.tsv"
    done
    # Containers a failed program left behind: delete them through the runtime, as a user
    # would, still inside the sandbox (their state names cgroup paths as seen from here).
    local id
    for id in $(ls "$CONFORMANCE_STATE"); do
        echo "deleting container $id left behind" >&2
        "$RUNTIME" delete --force "$id" >/dev/null 2>&1 || true
    done
}

# exits.tsv and the TAP logs to results.tsv: "pass|fail<TAB>program<TAB>ok<TAB>not-ok<TAB>skip<TAB>exit<TAB>why".
results() {
    local prog rc tap
    while IFS=$'\t' read -r prog rc; do
        tap=$out/$prog.tap
        # Some programs (the hook ones) report a failure as a YAML "error" diagnostic that
        # belongs to no test point, and exit 0 with "1..0": that is a failure too.
        awk -v p="$prog" -v rc="$rc" -v errf="$out/$prog.stderr" '
            /^not ok/ { bad++; attached = 1; if (why == "") { why = $0; sub(/^not ok [0-9]+ ?-? ?/, "", why) } ; next }
            /^ok/ { attached = 1; if ($0 ~ /# (SKIP|skip)/) skip++; else good++; next }
            /^  ---$/ { inblock = 1; orphan = !attached; next }
            /^  \.\.\.$/ { inblock = 0; attached = 0; next }
            inblock && orphan && /"error":/ {
                bad++; e = $0; sub(/^ *"error": "/, "", e); sub(/\\n.*$/, "", e); sub(/",?$/, "", e)
                if (why == "") why = "error diagnostic outside any test point: " e
            }
            END {
                if (why == "" && rc != 0) {
                    if (rc == 124 || rc == 137) why = "timed out"
                    else { while ((getline l < errf) > 0) if (l != "") { why = l; break }
                           if (why == "") why = "exit " rc " with no TAP failure" }
                }
                st = (rc == 0 && bad == 0) ? "pass" : "fail"
                printf "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", st, p, good, bad, skip, rc, why
            }' "$tap"
    done <"$out/exits.tsv"
}

print_table() {
    awk -F'\t' '
        BEGIN { printf "%-34s %-6s %5s %6s %5s %4s\n", "program", "result", "ok", "not ok", "skip", "exit" }
        { printf "%-34s %-6s %5d %6d %5d %4s\n", $2, $1, $3, $4, $5, $6; n[$1]++ }' "$out/results.tsv"
    if grep -q '^fail' "$out/results.tsv"; then
        echo
        echo "failing (first failure):"
        awk -F'\t' '$1 == "fail" {print "  " $2 ": " $7}' "$out/results.tsv"
    fi
    echo
    awk -F'\t' '{t[$1]++} END {printf "%d passed, %d failed\n", t["pass"], t["fail"]}' "$out/results.tsv"
}

main() {
    if [ "${1:-}" = __inner ]; then
        shift
        inner "$@"
        return
    fi
    parse_args "$@"
    shift 2
    rm -rf "$out"
    mkdir -p "$out"
    build
    local progs=("$@")
    if [ ${#progs[@]} -eq 0 ]; then
        mapfile -t progs < <(cd "$checkout/validation" && find . -mindepth 2 -maxdepth 2 -name '*.t' |
            awk -F/ '{print $2}' | sort)
    fi
    local scratch sandbox start took
    scratch=$(mktemp -d /tmp/patina-conformance.XXXXXX)
    chmod 755 "$scratch"
    mkdir "$scratch/state" "$scratch/tmp"
    # The programs call RUNTIME with no --root: give every call its own, here.
    printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$runtime" "$scratch/state" >"$scratch/runtime"
    chmod 755 "$scratch/runtime"
    sandbox=conformance-rt-$$
    host_snapshot >"$scratch/before"
    # shellcheck disable=SC2064
    trap "'$external_dir/sandbox.sh' destroy '$sandbox'; rm -rf '$scratch'" EXIT
    "$external_dir/sandbox.sh" create "$sandbox"
    start=$(date +%s)
    TMPDIR=$scratch/tmp RUNTIME=$scratch/runtime CONFORMANCE_OUT=$out CONFORMANCE_CHECKOUT=$checkout \
        CONFORMANCE_STATE=$scratch/state \
        CONFORMANCE_TEST_TIMEOUT=${CONFORMANCE_TEST_TIMEOUT:-120} \
        "$external_dir/sandbox.sh" run "$sandbox" "$0" __inner "${progs[@]}" ||
        echo "the suite's driver exited $?" >&2
    took=$(($(date +%s) - start))
    "$external_dir/sandbox.sh" destroy "$sandbox"
    host_snapshot >"$scratch/after"
    results >"$out/results.tsv"
    echo
    echo "runtime-tools validation ($(git -C "$checkout" rev-parse --short HEAD)) against $runtime, $took s"
    print_table
    report_leftovers "$scratch/before" "$scratch/after"
    echo "logs: $out"
    ! grep -q '^fail' "$out/results.tsv"
}

main "$@"
