#!/bin/bash
# A private containerd (Debian's 1.6) for bench/shim.sh (the tests use integration/src/containerd.rs): its own
# config, root, state and sockets under DIR, the shim on its PATH, a busybox image.
# Usage: containerd-env.sh up DIR SHIM_DIR   (prints nothing; containerd's pid in DIR/pid)
#        containerd-env.sh down DIR
set -euo pipefail
cmd=$1 dir=$2
case $cmd in
up)
  shim_dir=$3
  mkdir -p "$dir"/{root,state,opt}
  cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/c.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
TOML
  PATH="$shim_dir:$PATH" setsid containerd --config "$dir/config.toml" --log-level debug \
    > "$dir/containerd.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 100); do [ -S "$dir/c.sock" ] && break; sleep 0.05; done
  ctr -a "$dir/c.sock" version > /dev/null
  ;;
down)
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  # snapshots and the like mounted by containerd under root
  { grep " $dir/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
  rm -rf "$dir" || { sleep 1; rm -rf "$dir"; }
  ;;
esac
