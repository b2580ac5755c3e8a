#!/bin/bash
# The Kubernetes node path: pod start (RunPodSandbox + CreateContainer + StartContainer of
# one container) and ExecSync `echo ok` latency and CPU, through containerd 1.6's CRI plugin,
# runtime handler `patina` (containerd-shim-patina-v2 + patina, release builds) vs `runc`
# (containerd-shim-runc-v2 + Debian's runc). The CRI client is integration/tests/cri.rs
# (cri_bench); CPU counts containerd, the pod's shim and all they reap.
# Usage: bench/cri.sh [PODS] [EXECS]     (as root; defaults 20, 100)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo build --release -p patina -p containerd-shim-patina
release=$repo/target/$(uname -m)-unknown-linux-gnu/release
PODS=${1:-20} EXECS=${2:-100} PATINA_SHIM_DIR=$release PATINA_SHIM_RUNTIME=$release/patina \
    cargo test -p integration --test cri -- --ignored --exact cri_bench --nocapture
