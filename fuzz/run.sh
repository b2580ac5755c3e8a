#!/bin/bash
# Run the fuzz targets one after another, each for SECONDS (libFuzzer's -max_total_time):
#   fuzz/run.sh SECONDS [TARGET...]        (make fuzz: 600 s each; make fuzz-smoke: 20 s,
#                                          with FUZZ_BUILD=smoke: see below)
# Installs cargo-fuzz when missing. New corpus entries go to fuzz/corpus/TARGET (not
# committed); the committed seeds are fuzz/seeds/TARGET. Logs: fuzz/logs/TARGET.log.
# Exits non-zero when a target crashes (its input is in fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config_json seccomp shim_ttrpc tar_extract state_json)

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
	cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# cargo-fuzz asks rustc for nightly features (-Zsanitizer, sancov passes): the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
# The repo's .cargo/config.toml builds the machine's target with +crt-static and
# relocation-model=static (a static patina starts faster). AddressSanitizer refuses a
# statically linked libc ("sanitizer is incompatible with statically linked libc").
# cargo-fuzz passes its flags in RUSTFLAGS, which replaces the config's target rustflags
# (cargo takes one source of flags, and RUSTFLAGS comes first), so the fuzz build is
# dynamic PIE with ASan; -crt-static is appended to say so explicitly and to keep it
# that way should the flags ever be merged.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=-crt-static"

# FUZZ_BUILD=smoke (make fuzz-smoke, in CI): an unoptimized build without AddressSanitizer,
# overflow checks and debug assertions on: 128 s cold instead of 361 s for the optimized
# ASan build on 2 cores, which decided whether CI stays under 30 minutes. The smoke proves
# the targets build and run over their seeds; the long runs (make fuzz) keep ASan.
start=$(date +%s)
host=$(rustc -vV | sed -n 's/^host: //p')
if [ "${FUZZ_BUILD:-}" = smoke ]; then
	cargo fuzz build --dev --sanitizer none
	bin_dir="target/$host/debug"
else
	cargo fuzz build
	bin_dir="target/$host/release"
fi
echo "fuzz build: $(( $(date +%s) - start )) s"
# Run the built programs directly: `cargo fuzz run` checks the build again for each
# target and, with its own idea of the flags, rebuilt the whole tree each time (the
# four-target smoke took 9 minutes, 7 of them compiling).

mkdir -p logs
failed=()
summary=()
for t in "${targets[@]}"; do
	mkdir -p "corpus/$t" "artifacts/$t"
	opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
	case $t in
	tar_extract) opts+=(-max_len=65536) ;;
	config_json | shim_ttrpc) opts+=(-max_len=16384 -malloc_limit_mb=256) ;;
	*) opts+=(-max_len=8192 -malloc_limit_mb=256) ;;
	esac
	[ -f "dicts/$t.dict" ] && opts+=(-dict="dicts/$t.dict")
	echo "fuzz $t: ${seconds} s"
	if "$bin_dir/$t" -artifact_prefix="artifacts/$t/" "${opts[@]}" "corpus/$t" "seeds/$t" \
		>"logs/$t.log" 2>&1; then
		result=ok
	else
		result=FAIL
		failed+=("$t")
		tail -40 "logs/$t.log"
	fi
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1 || true)
	[ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+[[:space:]]' "logs/$t.log" | tail -1 || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
	summary+=("$(printf '%-12s %-5s execs %-10s %s' "$t" "$result" "${execs:-?}" \
		"$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+' <<<"$done_line")")")
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${failed[*]} failed (a crash input is in fuzz/artifacts/TARGET/, the log in fuzz/logs/)" >&2
fi
# The closing line CI reads: each target is one test.
echo "fuzz: $(( ${#targets[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
