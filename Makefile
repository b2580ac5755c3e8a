# Fresh Debian machine, as root: `make demo` runs a real container; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
APT_LISTS := .ci/apt-packages.txt $(wildcard integration/apt-packages.txt imagetool/apt-packages.txt shim/apt-packages.txt)

.PHONY: rust deps build demo test lint unit integration integration-runc engines engines-runc test-vm bench clean fault-campaign fuzz fuzz-smoke install test-install

deps:
	@pkgs=$$(cat $(APT_LISTS) | grep -v '^#' | sort -u | tr '\n' ' '); \
	missing=$$(for p in $$pkgs; do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(MAKE) -s rust

# A Rust toolchain new enough for the workspace (rust-version 1.85): rustup's if there is
# one, else Debian bookworm's rustc-web/cargo-web (1.96; they install /usr/bin/cargo and
# /usr/bin/rustc, and conflict with Debian's older rustc package).
RUST_MIN := 1.85
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
	PATINA=$(CURDIR)/target/x86_64-unknown-linux-gnu/release/patina fixtures/demo.sh

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

test: lint unit test-install integration integration-runc test-vm fuzz-smoke

# The fuzz targets (fuzz/, docs/security.md "Fuzzing"), one after another, FUZZ_SECONDS
# each; fuzz/run.sh installs cargo-fuzz if missing and builds with ASan (RUSTC_BOOTSTRAP
# on the stable toolchain). fuzz-smoke: 20 s each, part of `make test` (the cold ASan
# build is most of its cost).
FUZZ_SECONDS ?= 600
fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)

SMOKE_SECONDS ?= 20
fuzz-smoke: deps
	fuzz/run.sh $(SMOKE_SECONDS)

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
