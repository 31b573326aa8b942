#!/usr/bin/env bash
# Fuzz every reader of user files for a bounded time per target (not part of CI).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Targets (fuzz/fuzz_targets/): catalog, models, kernel_rows, result_folder, shape,
# thresholds. The checks are in src/fuzzing.rs and are the same as those of
# tests/fuzz_mutations.rs, which CI runs as plain tests.
#
# With cargo-fuzz (`cargo install cargo-fuzz`) the targets run under libFuzzer with
# coverage feedback. cargo-fuzz passes nightly-only flags to rustc; on a stable toolchain
# this script sets RUSTC_BOOTSTRAP=1 so that stable rustc accepts them (for this build
# only). Sanitizers are off (`-s none`): the code is safe Rust and a panic is what we look
# for; the build keeps debug assertions and overflow checks on. Crashes land in
# fuzz/artifacts/<target>/; replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> fuzz/artifacts/<target>/crash-...
#
# Without cargo-fuzz, the seeded mutation tests run instead, scaled to the time given
# (PRICEPERF_FUZZ_ITERS), with a seed from the clock.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    TARGETS=(catalog models kernel_rows result_folder shape thresholds)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is not installed; running the seeded mutation tests instead" >&2
    echo "fuzz.sh: (install it with: cargo install cargo-fuzz)" >&2
    # Roughly 1,500 inputs a second for the cheap targets in a debug build.
    ITERS=$(( SECONDS_PER_TARGET / 2 + 1 ))
    PRICEPERF_FUZZ_ITERS="$ITERS" PRICEPERF_FUZZ_SEED="$(date +%s)" \
        cargo test --test fuzz_mutations -- --nocapture --test-threads=1 2>&1 |
        grep -E "inputs|test result|panicked|broke|input:"
    exit "${PIPESTATUS[0]}"
fi

# Seed corpora from valid inputs (the embedded data files and priceperf's own writers).
cargo test --test fuzz_mutations -- --ignored write_fuzz_seeds --quiet >/dev/null

export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz build -s none -O >/dev/null
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    echo "== $t (${SECONDS_PER_TARGET}s)"
    if cargo fuzz run -s none -O "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        echo "   no crash"
    else
        echo "   CRASH: see $log and fuzz/artifacts/$t/"
        status=1
    fi
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added" "$log" |
        sed 's/^/   /' || true
done
exit "$status"
