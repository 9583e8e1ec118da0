#!/usr/bin/env bash
# scripts/check-fast-tokenizer.sh — the fast encoder against the tokenizers crate, over whole corpora.
#
# Usage: scripts/check-fast-tokenizer.sh [DATA]
#   DATA  the shared data folder (default: ../shared/data relative to the repository root), with
#         DATA/corpus/*.jsonl.zst and DATA/tokenizers/*/tokenizer.json
#
# Every corpus × every tokenizer, document by document (examples/check_fast_tokenizer.rs), with
# special tokens encoded as text (utk's default) and, with PARSE_SPECIAL=1, also parsed. Prints a
# markdown table; exits 1 if any document differs. A tokenizer the fast encoder does not support
# is reported as "falls back" with the reason (utk uses the crate for it). EXTRA_TOKENIZERS (space
# separated tokenizer.json paths) adds more, e.g. real vocabularies with another pre-tokenizer or
# normalizer swapped in, to check shapes no file in DATA has.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=$(cd "${1:-$ROOT/../shared/data}" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --release --quiet --example check_fast_tokenizer) >&2
BIN=$CARGO_TARGET_DIR/release/examples/check_fast_tokenizer
MODES=("")
[[ ${PARSE_SPECIAL:-0} == 1 ]] && MODES+=("--parse-special")
status=0
echo "commit $(git -C "$ROOT" rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
echo
echo "| tokenizer | mode | corpus | documents | differing | tokens (crate) | tokens (fast) | crate wall s | fast wall s | crate CPU s | fast CPU s |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for tj in "$DATA"/tokenizers/*/tokenizer.json ${EXTRA_TOKENIZERS:-}; do
    name=$(basename "$(dirname "$tj")")
    [[ $(basename "$tj") != tokenizer.json ]] && name=$(basename "$tj" .json)
    for mode in "${MODES[@]}"; do
        label=${mode:-special-as-text}
        out=$("$BIN" "$tj" $mode "$DATA"/corpus/*.jsonl.zst) || status=1
        if [[ $(head -n1 <<<"$out") == fallback* ]]; then
            echo "| $name | $label | all | falls back: $(cut -f2- <<<"$(head -n1 <<<"$out")") | | | | | | | |"
            continue
        fi
        tail -n +3 <<<"$out" | while IFS=$'\t' read -r input docs diff ct ft cs fs cc fc; do
            echo "| $name | $label | $(basename "$input" .jsonl.zst) | $docs | $diff | $ct | $ft | $cs | $fs | $cc | $fc |"
        done
    done
done
exit $status
