# Fresh Debian machine, as root: `make demo` runs a real container; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
APT_LISTS := .ci/apt-packages.txt $(wildcard integration/apt-packages.txt imagetool/apt-packages.txt shim/apt-packages.txt)

.PHONY: rust deps build demo test lint unit integration integration-runc engines engines-runc test-vm test-systemd test-systemd-full bench clean fault-campaign fuzz fuzz-smoke install test-install \
	cross-arm64 unit-arm64 test-arm64 dist dist-share

# .cargo/config.toml builds for "host-tuple": the outputs are under target/$(HOST_TRIPLE)/.
HOST_TRIPLE := $(shell uname -m)-unknown-linux-gnu
ARM64 := aarch64-unknown-linux-gnu
BIN_PKGS := -p patina -p containerd-shim-patina -p patina-imagetool

deps:
	@pkgs=$$(cat $(APT_LISTS) | grep -v '^#' | sort -u | tr '\n' ' '); \
	missing=$$(for p in $$pkgs; do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(MAKE) -s rust

# A Rust toolchain new enough for the workspace: rustup's if there is one, else Debian
# bookworm's rustc-web/cargo-web (1.96; they install /usr/bin/cargo and /usr/bin/rustc,
# and conflict with Debian's older rustc package). 1.91: cargo's build.target =
# "host-tuple" (.cargo/config.toml); the code itself builds with 1.85 (rust-version).
RUST_MIN := 1.91
rust:
	@ver=$$($(CARGO) --version 2>/dev/null | awk '{print $$2}'); \
	if [ -n "$$ver" ] && [ "$$(printf '%s\n%s\n' $(RUST_MIN) $$ver | sort -V | head -1)" = $(RUST_MIN) ]; then exit 0; fi; \
	echo "cargo $${ver:-not found} is older than $(RUST_MIN): installing Debian's rustc-web and cargo-web"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rustc-web cargo-web; \
	ver=$$($(CARGO) --version 2>/dev/null | awk '{print $$2}'); \
	[ "$$(printf '%s\n%s\n' $(RUST_MIN) $$ver | sort -V | head -1)" = $(RUST_MIN) ] || { echo "no cargo >= $(RUST_MIN) (found $${ver:-none})"; exit 1; }

build: deps
	$(CARGO) build --release -p patina

demo: build
	PATINA=$(CURDIR)/target/$(HOST_TRIPLE)/release/patina fixtures/demo.sh

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# imagetool's end-to-end tests run the patina binary: build it first.
unit: deps
	$(CARGO) build -p patina
	$(CARGO) test --workspace --exclude integration

integration: deps
	$(CARGO) build -p patina -p containerd-shim-patina
	$(CARGO) test -p integration

# The same suite against Debian's runc: tests where patina goes beyond runc say so.
integration-runc: deps
	PATINA_RUNTIME=/usr/sbin/runc integration/runc-guard.sh $(CARGO) test -p integration

# The suite again inside a QEMU guest with a pure cgroup v2 kernel (time: docs/cgroups.md).
test-vm: deps
	integration/vm/run.sh

# The engines at their defaults in a Debian 12 guest with systemd as PID 1 (pure cgroup v2):
# integration/systemd-vm/tests.txt; -full adds tests-full.txt's longer entries. The image
# and its .debs are cached in PATINA_SYSTEMD_VM_CACHE (docs/cgroups.md).
PATINA_SYSTEMD_VM_CACHE ?= /var/cache/patina-systemd-vm
test-systemd: deps
	PATINA_SYSTEMD_VM_CACHE=$(PATINA_SYSTEMD_VM_CACHE) integration/systemd-vm/run.sh

test-systemd-full: deps
	PATINA_SYSTEMD_VM_CACHE=$(PATINA_SYSTEMD_VM_CACHE) PATINA_SYSTEMD_VM_LIST=full integration/systemd-vm/run.sh

# Only the engine tests (podman, containerd, docker; about 15 s), against patina / against runc.
ENGINE_TESTS := --test engine_podman --test engine_containerd --test engine_docker
engines: deps
	$(CARGO) build -p patina
	$(CARGO) test -p integration --no-fail-fast $(ENGINE_TESTS)

engines-runc: deps
	PATINA_RUNTIME=/usr/sbin/runc $(CARGO) test -p integration --no-fail-fast $(ENGINE_TESTS)

# kill -9 at random points of create/run/exec/delete, 300 times each, counting leaks
# (the suite runs the same test with 12).
fault-campaign: deps
	$(CARGO) build -p patina
	PATINA_FAULT_TRIES=300 $(CARGO) test -p integration --test fault_campaign -- --nocapture

test: lint unit test-install integration integration-runc test-vm test-systemd fuzz-smoke unit-arm64

# The fuzz targets (fuzz/, docs/security.md "Fuzzing"), one after another, FUZZ_SECONDS
# each; fuzz/run.sh installs cargo-fuzz if missing and builds with ASan (RUSTC_BOOTSTRAP
# on the stable toolchain). fuzz-smoke: 20 s each, part of `make test`, from an
# unoptimized build without ASan (FUZZ_BUILD=smoke: 128 s cold instead of 361 s).
FUZZ_SECONDS ?= 600
fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)

SMOKE_SECONDS ?= 20
fuzz-smoke: deps
	FUZZ_BUILD=smoke fuzz/run.sh $(SMOKE_SECONDS)

# arm64 (docs/arm64.md). On x86_64, tools/arm64-toolchain.sh installs the cross
# toolchain (Debian's rustc-web with the aarch64 std when rustup's lacks it, gcc and
# qemu) and prints the environment for this build only; on arm64 it prints nothing.
ARM64_ENV = env=$$(tools/arm64-toolchain.sh) && eval "$$env" && ARM64_CARGO=$${ARM64_CARGO:-$(CARGO)}

# Static aarch64 binaries of all three: target/aarch64-unknown-linux-gnu/release/.
cross-arm64: deps
	$(ARM64_ENV) && $$ARM64_CARGO build --release --target $(ARM64) $(BIN_PKGS)

# The unit tests (--lib --bins) built for aarch64 and run under qemu-user (the runner in
# .cargo/config.toml): CI's arm64 smoke. The integration suite needs a kernel: test-arm64.
# The end-to-end tests of imagetool and the shim (their tests/) spawn the aarch64
# binaries, which this machine cannot exec without a binfmt_misc handler (machine-wide:
# not installed), so they are not run for aarch64. qemu-user passes most syscalls to the
# host kernel, but not mount_setattr (ENOSYS) nor statx's mount id: the two tests that
# need them are left out by name (their code runs in test-arm64's guest, in the runtime).
QEMU_USER_SKIP := exe_protect::tests::read_only_view_cannot_be_reopened_for_writing \
	rootfs::propagation::tests::finds_the_root_of_the_mount_a_directory_is_on
unit-arm64: deps
	@echo "unit-arm64: not run under qemu-user (no mount_setattr, no statx mount id): $(QEMU_USER_SKIP)"
	$(ARM64_ENV) && $$ARM64_CARGO build --target $(ARM64) -p patina && \
		$$ARM64_CARGO test --target $(ARM64) --workspace --exclude integration --lib --bins --no-fail-fast -- \
		$(foreach t,$(QEMU_USER_SKIP),--skip $(t))

# The suite in an emulated arm64 guest (pure cgroup v2), as test-vm does on x86_64.
test-arm64: deps
	PATINA_VM_ARCH=aarch64 integration/vm/run.sh

# Release tarballs in target/dist/: patina-<version>-<arch>-linux.tar.gz holding bin/ (the
# three static binaries), share/ (whatever dist-share puts in target/dist/share) and the
# README, plus SHA256SUMS. From x86_64: both arches; on arm64: aarch64 only.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
dist: deps dist-share
	$(CARGO) build --release $(BIN_PKGS)
	$(MAKE) -s cross-arm64
	tools/dist.sh $(VERSION) target/dist $(HOST_TRIPLE) $(if $(filter $(ARM64),$(HOST_TRIPLE)),,$(ARM64))

# The hook for files shipped beside the binaries: write them under target/dist/share/
# (man pages in share/man/man1/, shell completions in share/bash-completion/completions/,
# share/zsh/site-functions/, share/fish/vendor_completions.d/); each tarball takes the
# tree as it is. Nothing yet.
dist-share:
	mkdir -p target/dist/share

bench: build
	bench/run.sh

# The three binaries, their man pages and bash/zsh/fish completions (written by
# tools/gen-docs from the binaries' own argument definitions) under $(DESTDIR)$(PREFIX).
# PROFILE=dev installs the debug build (what test-install uses: already built by `unit`).
PREFIX ?= /usr/local
PROFILE ?= release
PROFILE_DIR = $(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
BIN_DIR = target/x86_64-unknown-linux-gnu/$(PROFILE_DIR)
GEN_DIR = target/gen-docs
install: deps
	$(CARGO) build --profile $(PROFILE) -p patina -p patina-imagetool -p containerd-shim-patina
	rm -rf $(GEN_DIR)
	$(CARGO) run -q -p gen-docs -- $(GEN_DIR) >/dev/null
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(BIN_DIR)/patina $(BIN_DIR)/patina-imagetool $(BIN_DIR)/containerd-shim-patina-v2 \
		$(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(GEN_DIR)/man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(GEN_DIR)/man/man8/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 644 $(GEN_DIR)/completions/bash/* $(DESTDIR)$(PREFIX)/share/bash-completion/completions/
	install -m 644 $(GEN_DIR)/completions/zsh/* $(DESTDIR)$(PREFIX)/share/zsh/site-functions/
	install -m 644 $(GEN_DIR)/completions/fish/* $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/

# `make install` into a scratch DESTDIR, then the pages render and the completions complete.
test-install: deps
	tools/test-install.sh

clean:
	$(CARGO) clean
