#!/usr/bin/env bash
# benches/shards.sh — `utk augment` from Megatron token shards vs from text, and vs `cp`.
#
# Usage:   benches/shards.sh [DATA] [OUT]
#   DATA   the shared data folder (default: ../shared/data relative to the repository root);
#          uses DATA/corpus/*.jsonl.zst and DATA/tokenizers/qwen3/tokenizer.json
#   OUT    scratch folder (default: mktemp -d)
#
# 1. Builds the release binary once (BUILD=0 skips it) and copies it to OUT/utk.
# 2. The corpus is every DATA/corpus/*.jsonl.zst, listed COPIES times (default 4) so that fixed
#    costs (loading the tokenizer) do not dominate; `utk tokenize` turns it into OUT/corpus.bin/.idx.
# 3. Times, best of REPEATS (default 3), same THREADS (default 2), -L 128k:
#      text:   utk augment CORPUS… ; shards: utk augment OUT/corpus ; cp: cp OUT/corpus.bin ;
#      cp+sync: the copy made durable (`sync FILE`), as utk makes its output durable (fsync) ;
#      start-up: utk augment on a one-document shard (tokenizer load, output set-up, fsync)
#    and checks that text and shard runs wrote identical tokens.bin and loss_mask.bin.
# 4. Prints a markdown section for BENCHMARKS.md on stdout, with the load average of each run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${1:-$ROOT/../shared/data}
OUT=${2:-$(mktemp -d)}
THREADS=${THREADS:-2}
COPIES=${COPIES:-4}
REPEATS=${REPEATS:-3}
TOK=$DATA/tokenizers/qwen3/tokenizer.json
mkdir -p "$OUT"
if [ "${BUILD:-1}" = 1 ]; then (cd "$ROOT" && cargo build --release -q); fi
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/utk" "$OUT/utk"
UTK=$OUT/utk

inputs=()
for _ in $(seq "$COPIES"); do inputs+=("$DATA"/corpus/*.jsonl.zst); done

now() { date +%s.%N; }
load() { cut -d' ' -f1 /proc/loadavg; }
# best NAME CMD…: runs CMD REPEATS times; prints "best_seconds loads"
best() {
  local b="" loads=""
  for _ in $(seq "$REPEATS"); do
    local l; l=$(load)
    local t0; t0=$(now)
    "$@" >/dev/null
    local t; t=$(printf '%.2f' "$(echo "$(now) - $t0" | bc)")
    loads="$loads $l"
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
  done
  echo "$b$loads"
}

t0=$(now)
"$UTK" -q tokenize "${inputs[@]}" -o "$OUT/corpus" -t "$TOK" -j "$THREADS" --force
tok_s=$(printf '%.2f' "$(echo "$(now) - $t0" | bc)")

text=$(best "$UTK" -q augment "${inputs[@]}" -o "$OUT/text" -t "$TOK" -L 128k -j "$THREADS" --force)
shard=$(best "$UTK" -q augment "$OUT/corpus" -o "$OUT/shard" -t "$TOK" -L 128k -j "$THREADS" --force)
copy=$(best cp "$OUT/corpus.bin" "$OUT/copy.bin")
copy_sync=$(best sh -c 'cp "$1" "$2" && sync "$2"' sh "$OUT/corpus.bin" "$OUT/copy.bin")
echo '{"text":"one document"}' >"$OUT/one.jsonl"
"$UTK" -q tokenize "$OUT/one.jsonl" -o "$OUT/one" -t "$TOK" --force
startup=$(best "$UTK" -q augment "$OUT/one" -o "$OUT/one-out" -t "$TOK" -L 128k -j "$THREADS" --force)
for f in tokens.bin loss_mask.bin; do cmp "$OUT/text/$f" "$OUT/shard/$f"; done

bin_bytes=$(stat -c %s "$OUT/corpus.bin")
tokens=$(python3 -c "import json;print(json.load(open('$OUT/corpus.json'))['tokens'])")
set -- $text; text_s=$1; shift; text_load="$*"
set -- $shard; shard_s=$1; shift; shard_load="$*"
set -- $copy; copy_s=$1; shift; copy_load="$*"
set -- $copy_sync; copy_sync_s=$1; shift; copy_sync_load="$*"
set -- $startup; startup_s=$1; shift; startup_load="$*"
ratio() { echo "scale=2; $1 / $2" | bc; }
mtok() { printf '%.3f' "$(echo "scale=6; $tokens / $1 / 1000000" | bc)"; }

cat <<MD
## Token shards

\`benches/shards.sh\` on $(date -u +%Y-%m-%d), commit $(cd "$ROOT" && git rev-parse --short HEAD),
$(nproc) vCPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average (1 min) per run below.
Corpus: the six \`corpus/*.jsonl.zst\` listed $COPIES times, Qwen3 tokenizer; $tokens tokens,
\`corpus.bin\` $bin_bytes bytes ($(python3 -c "import json;print(json.load(open('$OUT/corpus.json'))['dtype'])")).
\`-L 128k\`, \`--threads $THREADS\`, best of $REPEATS; load average (1 min) at the start of each run in brackets.

| run | seconds | M tokens/s | vs \`cp\` | vs \`cp\` + sync | load |
|---|---|---|---|---|---|
| \`utk tokenize\` (text → shards, once) | $tok_s | $(mtok "$tok_s") | | | |
| \`utk augment\` from text | $text_s | $(mtok "$text_s") | $(ratio "$text_s" "$copy_s")× | $(ratio "$text_s" "$copy_sync_s")× | $text_load |
| \`utk augment\` from Megatron shards | $shard_s | $(mtok "$shard_s") | $(ratio "$shard_s" "$copy_s")× | $(ratio "$shard_s" "$copy_sync_s")× | $shard_load |
| \`utk augment\` of a one-document shard (start-up) | $startup_s | | | | $startup_load |
| \`cp corpus.bin\` (physical limit) | $copy_s | $(mtok "$copy_s") | 1× | | $copy_load |
| \`cp corpus.bin\` + \`sync\` (durable copy) | $copy_sync_s | $(mtok "$copy_sync_s") | | 1× | $copy_sync_load |

Shard input is $(ratio "$text_s" "$shard_s")× faster than text; text and shard runs wrote identical
\`tokens.bin\` and \`loss_mask.bin\` (checked with \`cmp\`). Target: augmenting shards at most 3× the
time of copying them.
MD
