#!/usr/bin/env bash
# benches/long_doc.sh — peak memory of `utk augment` on one very long single-line document.
#
# Usage:   benches/long_doc.sh [DATA] [OUT] [OTHER_UTK]
#   DATA       the shared data folder (default: ../shared/data relative to the repository root);
#              uses DATA/corpus/{linux_docs_en,janeausten}.jsonl.zst and the qwen3 tokenizer
#   OUT        scratch folder (default: mktemp -d); needs about 3 × SIZE of disk
#   OTHER_UTK  another utk binary (e.g. a build of an older commit) run side by side; its output
#              must be byte for byte the same
#
# 1. Builds the release binary once (BUILD=0 skips it) and copies it to OUT/utk.
# 2. Writes OUT/doc.jsonl: one JSON line {"text": …, "id": "big"} of SIZE bytes of text (default
#    1 GiB: the two corpora's texts joined by blank lines and repeated; JSON escapes included).
# 3. Runs `utk augment OUT/doc.jsonl -L 128k` under /usr/bin/time -v (and OTHER_UTK if given),
#    prints wall time, CPU and peak RSS, the token count, and whether the outputs are identical.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${1:-$ROOT/../shared/data}
OUT=${2:-$(mktemp -d)}
OTHER=${3:-}
SIZE=${SIZE:-1073741824}
TOK=$DATA/tokenizers/qwen3/tokenizer.json
mkdir -p "$OUT"
if [ "${BUILD:-1}" = 1 ]; then (cd "$ROOT" && cargo build --release -q); fi
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/utk" "$OUT/utk"
if [ ! -s "$OUT/doc.jsonl" ]; then
    python3 - "$DATA" "$OUT/doc.jsonl" "$SIZE" <<'PY'
import json, subprocess, sys
data, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = subprocess.run(["zstd", "-dc", f"{data}/corpus/linux_docs_en.jsonl.zst",
                      f"{data}/corpus/janeausten.jsonl.zst"], capture_output=True, check=True).stdout
base = "\n\n".join(json.loads(l)["text"] for l in raw.splitlines() if l.strip()) + "\n"
text = (base * (size // len(base.encode()) + 1))[:size]
with open(out, "w") as f:
    f.write(json.dumps({"text": text, "id": "big"}) + "\n")
PY
fi
run() { # label binary outdir
    /usr/bin/time -v "$2" augment "$OUT/doc.jsonl" -t "$TOK" -L 128k -o "$3" --force -q 2> "$OUT/$1.time"
    local wall rss user sys
    wall=$(grep "Elapsed (wall" "$OUT/$1.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident" "$OUT/$1.time" | awk '{print $NF}')
    user=$(grep "User time" "$OUT/$1.time" | awk '{print $NF}')
    sys=$(grep "System time" "$OUT/$1.time" | awk '{print $NF}')
    echo "| $1 | $wall | $user + $sys | $((rss / 1024)) MiB | $(uptime | sed 's/.*average: //') |"
}
echo "document: $(stat -c %s "$OUT/doc.jsonl") bytes of JSONL"
echo "| binary | wall | CPU s (user + sys) | peak RSS | load average |"
echo "|---|---|---|---|---|"
run utk "$OUT/utk" "$OUT/out"
grep -o '"input_tokens": [0-9]*' "$OUT/out/manifest.json"
if [ -n "$OTHER" ]; then
    run other "$OTHER" "$OUT/other"
    for f in tokens.bin tokens.idx loss_mask.bin loss_mask.idx provenance.spans provenance.docs; do
        cmp -s "$OUT/out/$f" "$OUT/other/$f" && echo "$f identical" || echo "$f DIFFERS"
    done
    rm -rf "$OUT/other"
fi
