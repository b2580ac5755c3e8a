# Sourced first by the bench scripts that start containerd shims (shim.sh,
# density-containerd.sh): a shim is re-parented to the nearest child subreaper when its
# `start` exits. Re-run the calling script under a python parent that is one (prctl
# PR_SET_CHILD_SUBREAPER) and reaps every orphan, so no exited shim is left behind.
if [ -z "${PATINA_BENCH_REAPER:-}" ]; then
    exec env PATINA_BENCH_REAPER=1 python3 -c '
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
rc = subprocess.call(sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
sys.exit(rc)' "$0" "$@"
fi
