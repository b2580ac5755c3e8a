#!/usr/bin/env bash
# Compares two runs of the same suite (their results.tsv, or the directories holding it):
# prints each test whose status differs, as "REFERENCE-status -> OTHER-status  name".
#
# Usage: compare.sh REFERENCE OTHER
#   e.g. compare.sh target/conformance/runc-bats-runc target/conformance/runc-bats-patina
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: compare.sh REFERENCE OTHER" >&2; exit 2; }
file() { if [ -d "$1" ]; then echo "$1/results.tsv"; else echo "$1"; fi; }
# A test's name: "file: test" for bats (status, file, test), the program for runtime-tools
# (status, program, then numbers).
names() {
    awk -F'\t' '{ n = ($3 ~ /^[0-9]+$/ || $3 == "") ? $2 : $2 ": " $3; print $1 "\t" n }' "$(file "$1")"
}
awk -F'\t' 'NR == FNR { ref[$2] = $1; next }
    { if (!($2 in ref)) print "missing -> " $1 "  " $2
      else if (ref[$2] != $1) print ref[$2] " -> " $1 "  " $2
      seen[$2] = 1 }
    END { for (k in ref) if (!(k in seen)) print ref[k] " -> missing  " k }' \
    <(names "$1") <(names "$2") | sort
