#!/usr/bin/env bash
# benches/parquet.sh — `utk augment` on the benchmark mix as JSONL (zstd) and as parquet, side by
# side in the same session (issue 13: parquet at least as fast, peak RSS under 1 GiB).
#
# Usage:   benches/parquet.sh [DATA] [OUT]
#   DATA   the shared data folder (default: ../shared/data); uses DATA/corpus/*.jsonl.zst and
#          DATA/tokenizers/qwen3/tokenizer.json
#   OUT    scratch folder (default: mktemp -d); the corpora and the venv are kept and reused
#
# 1. Builds the release binary and copies it to OUT/utk.
# 2. The mix: the six corpora decompressed and concatenated in sorted order (as benches/augment.sh's
#    "1x"), recompressed as OUT/mix-1x.jsonl.zst, and written as OUT/mix-1x.parquet by pyarrow (a venv in
#    OUT): the `text` and `id` columns, zstd, row groups of 1,000 rows.
# 3. `utk augment` with the Qwen3 tokenizer, -L 128k, 2 threads, on each, REPEATS times,
#    interleaved, under /usr/bin/time -v (wall time, peak RSS), each after waiting for the machine
#    to be quiet (benches/quiet.sh). Checks that both outputs hold byte-identical windows.
# 4. Prints a markdown table: best wall time and highest peak RSS of each input.
#
# Environment: REPEATS=3, SCALE=1 (the mix concatenated SCALE times, as augment.sh's "4x" with
# SCALE=4; files OUT/mix-SCALEx.*), QUIET_CORES=0.25, QUIET_WAIT=120, PIP_ARGS.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-$repo/../shared/data}"
out="${2:-$(mktemp -d "${TMPDIR:-/tmp}/utk-parquet-bench.XXXXXX")}"
REPEATS="${REPEATS:-3}"
SCALE="${SCALE:-1}"
QUIET_CORES="${QUIET_CORES:-0.25}"
QUIET_WAIT="${QUIET_WAIT:-120}"
mkdir -p "$out/logs"
log() { echo "parquet-bench: $*" >&2; }
# shellcheck source=benches/quiet.sh
source "$repo/benches/quiet.sh"

log "building utk"
(cd "$repo" && cargo build --release --locked --quiet)
cp "${CARGO_TARGET_DIR:-$repo/target}/release/utk" "$out/utk"

mix="$out/mix-${SCALE}x"
if [ ! -s "$mix.jsonl.zst" ]; then
    log "concatenating the corpora ($SCALE times)"
    for _ in $(seq 1 "$SCALE"); do
        for f in $(ls "$data"/corpus/*.jsonl.zst | sort); do zstd -dc "$f"; done
    done | zstd -q -3 -o "$mix.jsonl.zst"
fi
if [ ! -x "$out/venv/bin/python" ]; then
    python3 -m venv "$out/venv"
    # shellcheck disable=SC2086
    "$out/venv/bin/python" -m pip install --quiet --disable-pip-version-check ${PIP_ARGS:-} pyarrow zstandard
fi
if [ ! -s "$mix.parquet" ]; then
    log "writing the mix as parquet"
    "$out/venv/bin/python" - "$mix.jsonl.zst" "$mix.parquet" <<'EOF'
import io, json, sys
import pyarrow as pa, pyarrow.parquet as pq, zstandard
with open(sys.argv[1], "rb") as f:
    lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
    rows = [json.loads(l) for l in lines if l.strip()]
table = pa.table({"text": [r["text"] for r in rows], "id": [str(r.get("id", "")) for r in rows]})
pq.write_table(table, sys.argv[2], compression="zstd", row_group_size=1000)
EOF
fi

tok="$data/tokenizers/qwen3/tokenizer.json"
results="$out/results.tsv"
: >"$results"
for rep in $(seq 1 "$REPEATS"); do
    for kind in jsonl parquet; do
        input="$mix.jsonl.zst"
        [ "$kind" = parquet ] && input="$mix.parquet"
        wait_quiet
        a=$(busy_jiffies)
        /usr/bin/time -v "$out/utk" augment "$input" -t "$tok" -L 128k -j 2 -o "$out/o-$kind" --force --quiet \
            2>"$out/logs/$kind-$rep.time"
        b=$(busy_jiffies)
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$out/logs/$kind-$rep.time")
        rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$out/logs/$kind-$rep.time")
        cpu=$(awk -F': ' '/User time|System time/{s+=$2} END{print s}' "$out/logs/$kind-$rep.time")
        others=$(awk -v d=$((b - a)) -v hz="$HZ" -v c="$cpu" -v w="$wall" 'BEGIN{printf "%.2f", (d/hz - c)/w}')
        printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$rep" "$wall" "$rss" "$others" >>"$results"
        log "$kind rep $rep: ${wall}s, peak RSS ${rss} KiB, others used $others cores"
    done
done
cmp -s "$out/o-jsonl/tokens.bin" "$out/o-parquet/tokens.bin" && cmp -s "$out/o-jsonl/loss_mask.bin" "$out/o-parquet/loss_mask.bin" \
    && same=yes || same=NO

echo "| input | size (MB) | best wall (s) | peak RSS (MiB) | others' CPU (cores, mean) |"
echo "|---|---|---|---|---|"
for kind in jsonl parquet; do
    f="$mix.jsonl.zst"
    [ "$kind" = parquet ] && f="$mix.parquet"
    size=$(awk -v b="$(stat -c %s "$f")" 'BEGIN{printf "%.1f", b/1e6}')
    awk -F'\t' -v k="$kind" -v s="$size" '$1==k{ if(!n||$3<best) best=$3; if($4>rss) rss=$4; o+=$5; n++ }
        END{printf "| %s | %s | %.2f | %.0f | %.2f |\n", k, s, best, rss/1024, o/n}' "$results"
done
echo
echo "Windows byte-identical (tokens.bin, loss_mask.bin): $same"
