#!/bin/sh
# cargo's runner for aarch64-unknown-linux-gnu (.cargo/config.toml): the test binary
# itself on an arm64 machine, qemu-user (Debian's qemu-user package) anywhere else.
if [ "$(uname -m)" = aarch64 ]; then exec "$@"; fi
exec qemu-aarch64 "$@"
