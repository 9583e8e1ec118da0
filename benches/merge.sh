#!/usr/bin/env bash
# benches/merge.sh — `utk merge` against copying the same bytes with `cp`, its memory as the
# number of parts grows, and where one process's CPU time goes (the manifest's cpu_seconds).
#
# Usage:   benches/merge.sh [DATA] [OUT]
#   DATA   the shared data folder (default ../shared/data): DATA/corpus/*.jsonl.zst,
#          DATA/tokenizers/qwen3/tokenizer.json
#   OUT    scratch folder (default: mktemp -d)
#
# 1. The corpus (every DATA/corpus file, COPIES=4 times) in PARTS=8 parts, -L 128k, all three
#    formats; then, best of REPEATS=3: `utk merge` of the parts, and `cp` of the same files
#    (every part's files into one directory, then `sync`, as utk makes its output durable).
# 2. Peak RSS of `utk merge` for MANY=1000 parts against 10 parts of the fixture corpus
#    (tests/fixtures/docs.jsonl, -L 256): flat when indexes are streamed.
# 3. A plain run of the corpus with -j THREADS=2: its cpu_seconds and scales_to_cores.
# Prints markdown for BENCHMARKS.md, with the load average of each run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${1:-$ROOT/../shared/data}
OUT=${2:-$(mktemp -d)}
COPIES=${COPIES:-4}
PARTS=${PARTS:-8}
REPEATS=${REPEATS:-3}
MANY=${MANY:-1000}
THREADS=${THREADS:-2}
TOK=$DATA/tokenizers/qwen3/tokenizer.json
mkdir -p "$OUT"
if [ "${BUILD:-1}" = 1 ]; then (cd "$ROOT" && cargo build --release -q); fi
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/utk" "$OUT/utk"
UTK=$OUT/utk
inputs=()
for _ in $(seq "$COPIES"); do inputs+=("$DATA"/corpus/*.jsonl.zst); done
now() { date +%s.%N; }
load() { cut -d' ' -f1 /proc/loadavg; }

for i in $(seq 0 $((PARTS - 1))); do
  "$UTK" augment "${inputs[@]}" -t "$TOK" -L 128k -o "$OUT/parts" -q --format megatron,olmo,npy \
    --num-shards "$PARTS" --shard-index "$i"
done
bytes=$(du -cb "$OUT"/parts/part-*/* | tail -1 | cut -f1)
best_merge="" best_cp="" loads=""
for _ in $(seq "$REPEATS"); do
  rm -rf "$OUT/merged" "$OUT/copy"; sync
  l=$(load); t0=$(now)
  "$UTK" merge "$OUT/parts" -o "$OUT/merged" -q
  t1=$(now)
  mkdir "$OUT/copy"
  for d in "$OUT"/parts/part-*; do
    for f in "$d"/*; do cp "$f" "$OUT/copy/$(basename "$d")-$(basename "$f")"; done
  done
  sync "$OUT"/copy/*
  t2=$(now)
  m=$(echo "$t1 - $t0" | bc); c=$(echo "$t2 - $t1" | bc)
  [ -z "$best_merge" ] || [ "$(echo "$m < $best_merge" | bc)" = 1 ] && best_merge=$m
  [ -z "$best_cp" ] || [ "$(echo "$c < $best_cp" | bc)" = 1 ] && best_cp=$c
  loads="$loads $l"
done
"$UTK" verify "$OUT/merged" -q

# Memory against the number of parts.
rss() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
small() {
  local n=$1 dir=$OUT/small$1
  for i in $(seq 0 $((n - 1))); do
    "$UTK" augment "$ROOT/tests/fixtures/docs.jsonl" -t "$ROOT/tests/fixtures/tokenizers/qwen3-mini/tokenizer.json" \
      -L 256 -o "$dir" -q -j 1 --num-shards "$n" --shard-index "$i" --format megatron,olmo,npy
  done
  rm -rf "$dir-merged"
  rss "$UTK" merge "$dir" -o "$dir-merged" -q
}
rss10=$(small 10)
rssmany=$(small "$MANY")
"$UTK" verify "$OUT/small$MANY-merged" -q

# Where a plain run's CPU time goes.
"$UTK" augment "${inputs[@]}" -t "$TOK" -L 128k -o "$OUT/plain" -q -j "$THREADS" --force
cpu=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['cpu_seconds'])" "$OUT/plain/manifest.json")

cat <<MD
### utk merge against cp ($(date -u +%F), commit $(cd "$ROOT" && git rev-parse --short HEAD))

$PARTS parts of the corpus (${#inputs[@]} inputs, -L 128k, megatron + olmo + npy), $bytes bytes:
best of $REPEATS, load averages:$loads.

| | seconds | MB/s |
|---|---|---|
| utk merge (check every part, join, fsync, manifest) | $best_merge | $(echo "$bytes / $best_merge / 1000000" | bc) |
| cp of the same files + sync | $best_cp | $(echo "$bytes / $best_cp / 1000000" | bc) |

Peak RSS of utk merge: $rss10 KB for 10 parts, $rssmany KB for $MANY parts (fixture corpus, -L 256).

A plain run of the corpus with -j $THREADS, cpu_seconds: $cpu
MD
