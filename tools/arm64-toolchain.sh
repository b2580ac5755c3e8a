#!/usr/bin/env bash
# Installs what the arm64 targets need on an x86_64 Debian bookworm machine, and prints
# the environment for a cross build (`eval "$(tools/arm64-toolchain.sh)"`, done by the
# Makefile's cross-arm64, dist and test-arm64 targets).
#
# rustup's toolchain is used when it has the aarch64 standard library; rustup cannot add
# it offline, so otherwise Debian's rustc-web/cargo-web (1.96, in /usr/bin, beside
# rustup's proxies in ~/.cargo/bin, which stay first on PATH) with libstd-rust-web-dev:arm64
# build it: RUSTC, RUSTDOC and CARGO point there for this build only. The C code
# (zstd-sys) and the link use gcc-aarch64-linux-gnu with libc6-dev-arm64-cross; qemu-user
# runs unit tests (the runner in .cargo/config.toml) and qemu-system-arm the guest
# (bookworm-backports, matching the machine's qemu 10).
set -euo pipefail
target=aarch64-unknown-linux-gnu

have_std() { # $1: rustc
    local dir
    dir=$("$1" --print target-libdir --target "$target" 2>/dev/null) || return 1
    compgen -G "$dir/libstd-*.rlib" >/dev/null
}

install() {
    local pkgs=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p"); done
    [ ${#pkgs[@]} = 0 ] && return
    echo "arm64: installing ${pkgs[*]}" >&2
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
}

backports() {
    grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ && return
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        > /etc/apt/sources.list.d/patina-backports.sources
}

if [ "$(uname -m)" = aarch64 ]; then exit 0; fi # native: nothing to set
install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
if ! command -v qemu-aarch64 >/dev/null || ! command -v qemu-system-aarch64 >/dev/null; then
    backports
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports --no-install-recommends \
        qemu-user qemu-system-arm >&2
fi
echo "export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar"
if have_std "${RUSTC:-rustc}"; then
    echo "export ARM64_CARGO=${CARGO:-cargo}"
    exit 0
fi
install rustc-web cargo-web libstd-rust-web-dev:arm64
have_std /usr/bin/rustc || { echo "arm64: /usr/bin/rustc has no $target standard library" >&2; exit 1; }
echo "export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc ARM64_CARGO=/usr/bin/cargo"
