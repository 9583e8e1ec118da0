#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (see docs/fuzzing.md): `scripts/fuzz.sh [SECONDS] [TARGET…]`
# runs each named target (all by default) for SECONDS (default 600) on the nightly toolchain,
# starting from corpora generated from the project's fixtures (scripts/fuzz-seeds.py) and from
# fuzz/regressions/<target>/. A crash stops that target; its input is in fuzz/artifacts/<target>/.
# Ends with one line per target and `N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(jsonl_line text_file megatron_idx datatrove_index npy tokenizer_json tokenizer_cache output_dir)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || { echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)"; exit 2; }
python3 scripts/fuzz-seeds.py
(cd fuzz && cargo +nightly fuzz build -O) || exit 2
passed=0 failed=0 results=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t/last-run.log"
    if (cd fuzz && cargo +nightly fuzz run -O "$t" "corpus/$t" "../fuzz/regressions/$t" -- \
            -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=262144 \
            -print_final_stats=1) >"$log" 2>&1; then
        passed=$((passed + 1))
        results+=("ok     $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${secs}s, corpus $(ls "fuzz/corpus/$t" | wc -l)")
    else
        failed=$((failed + 1))
        results+=("FAILED $t: see $log and fuzz/artifacts/$t/")
    fi
done
printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
