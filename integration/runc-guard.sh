#!/bin/bash
# Runs a command (the suite against runc) and then undoes what runc 1.1 changes on a
# hybrid host outside the test's own cgroups: it enables every controller in the root
# cgroup2's cgroup.subtree_control (/sys/fs/cgroup/unified) when it creates a
# container's cgroup there. Controllers that were enabled before are left as they were.
set -u
file=/sys/fs/cgroup/unified/cgroup.subtree_control
before=$(cat "$file" 2>/dev/null || true)
"$@"
rc=$?
if [ -w "$file" ]; then
    for c in $(cat "$file"); do
        case " $before " in *" $c "*) ;; *) echo "-$c" > "$file" 2>/dev/null || echo "runc-guard: could not disable $c again in $file" >&2 ;; esac
    done
fi
exit $rc
