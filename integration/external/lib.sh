# Shared by run-runc-bats.sh and run-runtime-tools.sh (sourced, not run).
# shellcheck shell=bash

external_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$external_dir/../.." && pwd)
go_bin=/usr/lib/go-1.23/bin

die() {
    echo "${0##*/}: $*" >&2
    exit 2
}

# Go from bookworm-backports builds the suites' helpers offline from their vendor dirs.
go_env() {
    export PATH=$go_bin:$PATH GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOPROXY=off
    export GOCACHE=${GOCACHE:-/var/cache/patina-conformance/go-build}
}

# Installs the Debian packages named (and Go 1.23 from backports) when any is missing.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ -x "$go_bin/go" ] || missing+=(golang-1.23-go)
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "installing ${missing[*]}" >&2
    if [[ " ${missing[*]} " == *" golang-1.23-go "* ]] &&
        ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            >/etc/apt/sources.list.d/patina-backports.sources
    fi
    apt-get update -qq
    local p2 plain=()
    for p2 in "${missing[@]}"; do [ "$p2" = golang-1.23-go ] || plain+=("$p2"); done
    if [ ${#plain[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${plain[@]}" >/dev/null
    fi
    if [[ " ${missing[*]} " == *" golang-1.23-go "* ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports golang-1.23-go >/dev/null
    fi
}

# The checkout must be the commit the contract names; another one is run but flagged.
check_commit() {
    local checkout=$1 want=$2 have
    have=$(git -C "$checkout" rev-parse HEAD 2>/dev/null) || die "$checkout: not a git checkout"
    case $have in
    "$want"*) ;;
    *) echo "warning: $checkout is at ${have:0:12}, the contract names $want" >&2 ;;
    esac
}

# What a suite could leave on the host outside its sandbox: mounts, network links, and
# runtime state under /run. Compared before and after a run.
host_snapshot() {
    {
        awk '{print "mount", $5}' /proc/self/mountinfo
        ip -o link show 2>/dev/null | awk -F': ' '{print "link", $2}'
        find /run/runc /run/patina -maxdepth 1 -mindepth 1 2>/dev/null | sed 's/^/state /' || true
    } | sort
}

report_leftovers() {
    local before=$1 after=$2 diffs
    diffs=$(comm -13 "$before" "$after" || true)
    if [ -n "$diffs" ]; then
        echo "left on the host by the run (not cleaned: not ours to remove blindly):"
        sed 's/^/  /' <<<"$diffs"
    else
        echo "left on the host by the run: nothing (mounts, links, /run state compared)"
    fi
}

# Per-group summary of a results file ("status<TAB>group<TAB>test" lines, status one of
# pass/fail/skip): a table, the failing tests, and the closing count line.
summarize() {
    local results=$1 label=$2
    awk -F'\t' -v label="$label" '
        { if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
          c[$2, $1]++; t[$1]++ }
        END {
            printf "%-40s %5s %5s %5s\n", label, "pass", "fail", "skip"
            for (i = 1; i <= n; i++) { g = order[i]
                printf "%-40s %5d %5d %5d\n", g, c[g, "pass"], c[g, "fail"], c[g, "skip"] }
            printf "%-40s %5d %5d %5d\n", "total", t["pass"], t["fail"], t["skip"]
        }' "$results"
    if grep -q '^fail' "$results"; then
        echo
        echo "failing:"
        awk -F'\t' '$1 == "fail" {print "  " $2 ": " $3}' "$results"
    fi
    echo
    awk -F'\t' '{t[$1]++} END {printf "%d passed, %d failed, %d skipped\n", t["pass"], t["fail"], t["skip"]}' "$results"
}
