#!/usr/bin/env bash
# Hashes of every output byte utk writes, over the shared corpora, in every augment mode and
# format, from text and from token shards, plus `utk tokenize` prefixes: run it before and after a
# change that must not change output (a refactor) and diff the two lists.
#
# Usage: scripts/output-hashes.sh UTK_BINARY [DATA_DIR]   (DATA_DIR defaults to ../shared/data)
# Prints `sha256  case/file` lines on stdout. Manifests and PREFIX.json records are hashed with
# their `command` field removed (it holds the binary's path) and their paths left as they are.
set -euo pipefail
bin=$(realpath "$1")
data=$(realpath "${2:-$(dirname "$0")/../../shared/data}")
work=${WORK:-/tmp/utk-output-hashes}
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
corpora=("$data"/corpus/*.jsonl.zst)
qwen=$data/tokenizers/qwen3/tokenizer.json
minilm=$data/tokenizers/all-minilm-l6-v2/tokenizer.json

hash_dir() { # case dir
    local case=$1 dir=$2 f
    for f in $(cd "$dir" && find . -type f | sort); do
        case $f in
            *manifest.json | *.json)
                python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("command",None); print(json.dumps(d,sort_keys=True))' "$dir/$f" |
                    sha256sum | sed "s|-\$|$case/${f#./}|"
                ;;
            *) (cd "$dir" && sha256sum "$f") | sed "s|\./|$case/|" ;;
        esac
    done
}

augment() { # case tokenizer inputs... -- flags...
    local case=$1 tok=$2
    shift 2
    local inputs=()
    while [ "$1" != -- ]; do inputs+=("$1"); shift; done
    shift
    "$bin" -q augment "${inputs[@]}" -t "$tok" -o "$work/$case" -L 8k --format megatron,olmo,npy "$@"
    hash_dir "$case" "$work/$case"
}

modes=(
    "utk:"
    "plain:--method plain"
    "nobt:--no-backtrace"
    "shuffle:--order shuffle"
    "fixed:--chunking fixed --chunk-tokens 512"
    "equal:--chunking equal --split-prob 0.3 --chunks 2:1,4:1"
    "drop:--tail drop --seed 7"
)
for m in "${modes[@]}"; do
    name=${m%%:*} flags=${m#*:}
    # shellcheck disable=SC2086
    augment "qwen-$name" "$qwen" "${corpora[@]}" -- $flags
done
augment "minilm-utk" "$minilm" "$data/corpus/brown.jsonl.zst" "$data/corpus/kjv_bible.jsonl.zst" --
# Token shards: tokenize once, augment from the prefix (fast and crate backends).
"$bin" -q tokenize "${corpora[@]}" -t "$qwen" -o "$work/tok/qwen"
hash_dir tokenize-qwen "$work/tok"
augment "shard-qwen-utk" "$qwen" "$work/tok/qwen" --
augment "shard-qwen-plain" "$qwen" "$work/tok/qwen" -- --method plain
"$bin" -q tokenize "$data/corpus/brown.jsonl.zst" -t "$minilm" -o "$work/tok2/minilm"
hash_dir tokenize-minilm "$work/tok2"
augment "shard-minilm-utk" "$minilm" "$work/tok2/minilm" --
