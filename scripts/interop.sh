#!/usr/bin/env bash
# scripts/interop.sh — do the readers trainers use read `utk augment`'s output as utk wrote it?
#
# Usage:   scripts/interop.sh [--megatron] [--olmo-core] [--datasets] [--keep]
#
# 1. Builds the release binary and runs `utk augment` on tests/fixtures/docs.jsonl with the
#    qwen3-mini tokenizer, --format megatron,olmo,npy,parquet, at several window lengths and settings,
#    including --special-base 70000 (32-bit token files) and a run without Megatron output.
#    Runs `utk tokenize` on the same documents and tokenizer: with the tokenizer's EOD (uint16),
#    with --eod-id 70000 (int32), with --tokenizer-backend tokenizers, and on
#    tests/fixtures/tricky-strings.jsonl followed by the documents.
# 2. Creates a Python virtual environment (UTK_INTEROP_VENV, default .venv-interop in the
#    repository; reused if present) and installs numpy, tokenizers and pyarrow.
# 3. Runs scripts/interop_check.py: every window, token by token, of the OLMo files (as OLMo-core
#    lays them out) and of the .npy files (np.load, mmap) against utk's Megatron dataset read by an
#    independent reader; the manifest's file list; provenance spans against the mask; and the
#    numpy-only example loaders (examples/torch_npy_dataset.py, examples/olmo_core_config.py);
#    windows.parquet read with pyarrow against the same reference, and the labels of
#    examples/hf_trainer_parquet.py.
#    Every tokenized prefix, read by the same independent reader: against its PREFIX.json, the
#    Python tokenizers library's ids for each document plus the EOD, and `utk augment PREFIX`
#    against `utk augment` on the text (byte-identical windows).
#
# --megatron   also installs megatron-core and torch, reads both Megatron datasets with
#              megatron.core.datasets.indexed_dataset.IndexedDataset, builds the example
#              examples/megatron_utk_dataset.py through megatron-core's
#              BlendedMegatronDatasetBuilder, checks every sample and that Megatron's loss formula
#              counts exactly utk's targets, runs the npy example through a torch DataLoader, and
#              reads every tokenized prefix with IndexedDataset, sequence by sequence.
#              PyPI's torch is the CUDA build: about 4 GB with its nvidia-* packages, which it needs
#              even to import on a CPU. Expect several minutes and that much disk.
# --olmo-core  also installs ai2-olmo-core (and torch) and reads every instance through
#              OLMo-core's NumpyFSLDatasetConfig built by the example.
# --datasets   also installs Hugging Face datasets and reads every parquet output through
#              examples/hf_trainer_parquet.py's load_windows (datasets.load_dataset("parquet")).
# --keep       keeps the temporary directory with the outputs (its path is printed).
#
# Prints one line per check and ends with `N passed, M failed`; exits non-zero on any failure.
# Environment: PIP_ARGS (extra pip install arguments), CARGO_TARGET_DIR (as cargo uses it).
set -euo pipefail

megatron=0
olmo_core=0
datasets=0
keep=0
for arg in "$@"; do
    case "$arg" in
        --megatron) megatron=1 ;;
        --olmo-core) olmo_core=1 ;;
        --datasets) datasets=1 ;;
        --keep) keep=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "interop.sh: unknown argument $arg (see --help)" >&2
            exit 2
            ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${UTK_INTEROP_VENV:-$repo/.venv-interop}"
work="$(mktemp -d "${TMPDIR:-/tmp}/utk-interop.XXXXXX")"
if [ "$keep" = 1 ]; then
    echo "interop: outputs kept in $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi
# The tokenizer tables utk caches go to the run's own directory, not the user's cache.
export UTK_TOKENIZER_CACHE="${UTK_TOKENIZER_CACHE:-$work/tokenizer-cache}"

echo "interop: building utk (release)" >&2
(cd "$repo" && cargo build --release --locked --quiet)
target="${CARGO_TARGET_DIR:-$repo/target}"
cp "$target/release/utk" "$work/utk"

docs="$repo/tests/fixtures/docs.jsonl"
tok="$repo/tests/fixtures/tokenizers/qwen3-mini/tokenizer.json"
all=(--format megatron,olmo,npy,parquet)
run() {
    local name="$1"
    shift
    "$work/utk" augment "$docs" -t "$tok" -o "$work/$name" --quiet "$@"
}
echo "interop: augmenting the fixtures" >&2
run L2048 -L 2048 "${all[@]}"
run L1000-shuffle -L 1000 --order shuffle --seed 7 "${all[@]}"
run L512-drop -L 512 --tail drop --chunks 2:0.5,5:0.5 --min-chunk-tokens 8 "${all[@]}"
run L4096-wide -L 4096 --special-base 70000 "${all[@]}"
# The same run as L2048 without Megatron: checked against L2048's Megatron dataset.
run L2048-no-megatron -L 2048 --format npy --format olmo
outputs=(L2048 L1000-shuffle L512-drop L4096-wide L2048-no-megatron)

tokenize() {
    local name="$1"
    shift
    "$work/utk" tokenize "$docs" -t "$tok" -o "$work/$name" --quiet "$@"
}
echo "interop: tokenizing the fixtures" >&2
tokenize tok-qwen3
# An EOD past 65,500 makes Megatron's dtype int32.
tokenize tok-qwen3-eod70000 --eod-id 70000
tokenize tok-qwen3-crate --tokenizer-backend tokenizers
# Two sources; the first holds the fast-tokenizer tests' hand-picked strings (empty text,
# whitespace only, scripts, emoji, text that spells special tokens).
"$work/utk" tokenize "$repo/tests/fixtures/tricky-strings.jsonl" "$docs" -t "$tok" -o "$work/tok-qwen3-tricky" --quiet
tokenized=(tok-qwen3 tok-qwen3-eod70000 tok-qwen3-crate tok-qwen3-tricky)

if [ ! -x "$venv/bin/python" ]; then
    echo "interop: creating the virtual environment $venv" >&2
    python3 -m venv "$venv"
fi
packages=(numpy tokenizers pyarrow)
check_args=()
for name in "${tokenized[@]}"; do
    check_args+=(--tokenized "$work/$name")
done
if [ "$megatron" = 1 ]; then
    packages+=(torch megatron-core)
    check_args+=(--megatron)
fi
if [ "$datasets" = 1 ]; then
    packages+=(datasets)
    check_args+=(--datasets)
fi
if [ "$olmo_core" = 1 ]; then
    packages+=(torch ai2-olmo-core)
    check_args+=(--olmo-core)
fi
echo "interop: pip install ${packages[*]}" >&2
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ${PIP_ARGS:-} "${packages[@]}" >&2

cd "$work"
UTK_BIN="$work/utk" "$venv/bin/python" "$repo/scripts/interop_check.py" "${check_args[@]}" "${outputs[@]/#/$work/}"
