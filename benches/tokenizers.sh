#!/usr/bin/env bash
# benches/tokenizers.sh — every tokenizer family against the anchor, gigatoken (issue 10 item 4).
#
# Usage:   benches/tokenizers.sh [DATA] [OUT]
#   DATA   the shared data folder (default: ../shared/data): every DATA/tokenizers/*/tokenizer.json
#          on DATA/corpus/*.jsonl.zst, decompressed and concatenated once (sorted order) into
#          OUT/corpus.jsonl (plain JSONL, so that gigatoken can read it itself)
#   OUT    scratch folder (default: mktemp -d); the corpus and the venv are reused
#
# For every tokenizer, interleaved per repetition (so outside load spreads over all of them), each
# in a fresh process under /usr/bin/time -v:
#   utk-augment-j2    `utk augment CORPUS -t TOK -L 128k -j 2` (default backend), end to end; rate
#                     = manifest counts.input_tokens (one EOD per document included) / wall time
#   utk-tokenize-j1/2 `utk tokenize CORPUS -t TOK -o PREFIX -j 1|2` (text -> Megatron .bin/.idx),
#                     utk's encoder alone; rate = PREFIX.json tokens / wall time
#   gigatoken-1/par   benches/tokenizers_bench.py gigatoken: gigatoken's own API,
#                     Tokenizer(path).encode_files(JsonlFileSource([CORPUS]), parallel=False|True),
#                     tokenize only, its own token count / seconds of that call (tokenizer loading
#                     excluded; first pass of a fresh process, see the helper's docstring)
# and once (after the last repetition):
#   python            Python `tokenizers` encode_batch(add_special_tokens=False), RAYON_NUM_THREADS
#                     = nproc; rate = its tokens / seconds inside encode_batch; then utk's ids (the
#                     utk-tokenize-j1 output, EOD stripped) against Python's for EVERY document.
# Prints a markdown table (also written to OUT/table.md); raw rows in OUT/results.tsv, logs in
# OUT/logs/. Ratios: utk augment / gigatoken best, utk encoder 1 thread / gigatoken 1 thread.
#
# Knobs (environment):
#   UTK=target/release/utk   the binary (copied to OUT/utk first); built with
#                            `cargo build --release` only if absent
#   REPEATS=2                repetitions of every timed utk and gigatoken run (best is reported)
#   CORPUS_MB=               cap the corpus at about this many MB (each corpus contributes the
#                            same fraction of its lines); default: all (~46 MB)
#   TOKENIZERS=              space-separated names under DATA/tokenizers (default: all)
#   GT_THREADS=$(nproc)      RAYON_NUM_THREADS for gigatoken's parallel mode
#   PY_THREADS=$(nproc)      RAYON_NUM_THREADS for Python tokenizers
#   QUIET_CORES=0.3, QUIET_WAIT=60   wait (at most QUIET_WAIT s) before each run until other
#                            processes use fewer than QUIET_CORES cores, as benches/augment.sh does
#   PIP_ARGS=                extra pip arguments (venv: gigatoken tokenizers numpy)
# Needs: python3 with venv, zstd, /usr/bin/time (Debian `time`, installed when missing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=$(cd "${1:-$ROOT/../shared/data}" && pwd)
OUT=${2:-$(mktemp -d -t utk-tokbench.XXXXXX)}
mkdir -p "$OUT/logs" "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
UTK=${UTK:-$ROOT/target/release/utk}
REPEATS=${REPEATS:-2}
CORPUS_MB=${CORPUS_MB:-}
TOKENIZERS=${TOKENIZERS:-}
GT_THREADS=${GT_THREADS:-$(nproc)}
PY_THREADS=${PY_THREADS:-$(nproc)}
QUIET_CORES=${QUIET_CORES:-0.3}
QUIET_WAIT=${QUIET_WAIT:-60}
HELPER=$ROOT/benches/tokenizers_bench.py
log() { printf '[tokbench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time; } >&2
command -v zstd >/dev/null || die "zstd is needed"

# The binary: copied, so that a concurrent build cannot swap it mid-run.
if [[ ! -x $UTK ]]; then
    log "no $UTK: cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) >&2
    UTK=$ROOT/target/release/utk
fi
cp "$UTK" "$OUT/utk"
UTK_VERSION=$("$OUT/utk" --version)

# The corpus, once.
CORPUS=$OUT/corpus${CORPUS_MB:+-${CORPUS_MB}MB}.jsonl
if [[ ! -s $CORPUS ]]; then
    log "preparing $CORPUS"
    python3 "$HELPER" prepare --data "$DATA" --out "$CORPUS" ${CORPUS_MB:+--mb "$CORPUS_MB"} >"$CORPUS.info.json"
fi
CORPUS_BYTES=$(stat -c %s "$CORPUS")
CORPUS_DOCS=$(grep -c . "$CORPUS" || true)

# The venv, once.
PY=$OUT/venv/bin/python
if ! "$PY" -c 'import gigatoken, tokenizers, numpy' 2>/dev/null; then
    log "creating venv $OUT/venv (pip install gigatoken tokenizers numpy)"
    python3 -m venv "$OUT/venv" >&2
    # shellcheck disable=SC2086
    "$OUT/venv/bin/pip" install -q ${PIP_ARGS:-} gigatoken tokenizers numpy >&2
fi
PYV=$("$PY" -c 'from importlib.metadata import version as v; print(", ".join(f"{p} {v(p)}" for p in ("gigatoken", "tokenizers", "numpy")))')

if [[ -n $TOKENIZERS ]]; then
    read -r -a NAMES <<<"$TOKENIZERS"
else
    NAMES=()
    for d in "$DATA"/tokenizers/*/tokenizer.json; do NAMES+=("$(basename "$(dirname "$d")")"); done
fi
((${#NAMES[@]})) || die "no tokenizers"

# shellcheck source=benches/quiet.sh
source "$(dirname "${BASH_SOURCE[0]}")/quiet.sh"

RES=$OUT/results.tsv
printf 'tokenizer\tconfig\trep\tstatus\tseconds\twall_s\trun_s\ttokens\trss_kb\tcpu_s\tothers_cores\tbackend\tnote\n' >"$RES"
# run TOK CONFIG REP CMD...: one timed run; parses its output by CONFIG; appends a row to RES.
run() {
    local tok=$1 cfg=$2 rep=$3 id=$1-$2-$3
    shift 3
    local tf=$OUT/logs/$id.time o=$OUT/logs/$id.out e=$OUT/logs/$id.err
    wait_quiet
    local a b status=ok
    a=$(busy_jiffies)
    "/usr/bin/time" -v -o "$tf" "$@" >"$o" 2>"$e" || status=failed
    b=$(busy_jiffies)
    local wall rss cpu others seconds='' run_s='' tokens='' backend='' note=''
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")
    cpu=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{print u+s}' "$tf")
    others=$(awk -v d=$((b - a)) -v hz="$HZ" -v c="$cpu" -v w="$wall" 'BEGIN{o=w>0?(d/hz-c)/w:0; if(o<0)o=0; printf "%.2f", o}')
    if [[ $status == failed ]]; then
        note=$(grep -v '^\s*$' "$e" | grep -vi 'command exited' | tail -1 | tr '\t' ' ' | cut -c1-300)
    else
        case $cfg in
        utk-*)
            seconds=$wall
            run_s=$(awk '/^  throughput/{print $2}' "$o")
            ;;&
        utk-augment-*)
            read -r tokens backend < <(python3 -c '
import json,sys; m=json.load(open(sys.argv[1]))
print(m["counts"]["input_tokens"], m["tokenizer"].get("backend", "?"))' "$OUT/runs/$tok-augment/manifest.json")
            rm -rf "$OUT/runs/$tok-augment"
            ;;
        utk-tokenize-*)
            read -r tokens backend < <(python3 -c '
import json,sys; m=json.load(open(sys.argv[1])); print(m["tokens"], m.get("backend", "?"))' \
                "$OUT/runs/$tok-${cfg#utk-tokenize-}.json")
            ;;
        gigatoken-* | python)
            note=$(tail -1 "$o")
            read -r seconds tokens < <(python3 -c '
import json,sys; r=json.loads(sys.argv[1]); print(r.get("seconds", ""), r.get("tokens", ""))' "$note")
            if [[ -z $seconds ]]; then
                status=refused
                note=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("error",""))' "$note")
            fi
            ;;
        esac
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tok" "$cfg" "$rep" "$status" \
        "$seconds" "$wall" "$run_s" "$tokens" "$rss" "$cpu" "$others" "$backend" "$note" >>"$RES"
    local rate=''
    [[ -n $seconds && -n $tokens ]] && rate=$(awk -v t="$tokens" -v s="$seconds" 'BEGIN{if(s>0) printf "%.2f M tok/s", t/s/1e6}')
    log "$id: $status ${seconds:+${seconds}s} $rate (wall ${wall}s, $((rss / 1024)) MiB, others ${others} cores)${note:+ ${note:0:160}}"
}

# utk's tokenizer cache, empty at the start: each tokenizer's first utk run reads the
# tokenizer.json and writes the entry, later runs read the entry; `utk-augment-j2-cold` runs
# without it every time (a first run).
CACHE_DIR=$OUT/tokenizer-cache
rm -rf "$CACHE_DIR"

UPTIME_BEFORE=$(uptime)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "corpus $CORPUS ($CORPUS_BYTES bytes, $CORPUS_DOCS documents); tokenizers: ${NAMES[*]}; $UPTIME_BEFORE"
for name in "${NAMES[@]}"; do
    TOK=$DATA/tokenizers/$name/tokenizer.json
    for rep in $(seq 1 "$REPEATS"); do
        run "$name" utk-augment-j2-cold "$rep" "$OUT/utk" augment "$CORPUS" -t "$TOK" -L 128k -j 2 \
            -o "$OUT/runs/$name-augment" --force --tokenizer-cache off
        run "$name" utk-augment-j2 "$rep" "$OUT/utk" augment "$CORPUS" -t "$TOK" -L 128k -j 2 \
            -o "$OUT/runs/$name-augment" --force --tokenizer-cache "$CACHE_DIR"
        for j in 1 2; do
            run "$name" "utk-tokenize-j$j" "$rep" "$OUT/utk" tokenize "$CORPUS" -t "$TOK" -j "$j" \
                -o "$OUT/runs/$name-j$j" --force --tokenizer-cache "$CACHE_DIR"
        done
        RAYON_NUM_THREADS=1 run "$name" gigatoken-1 "$rep" "$PY" "$HELPER" gigatoken --tokenizer "$TOK" \
            --corpus "$CORPUS" --mode 1
        RAYON_NUM_THREADS=$GT_THREADS run "$name" gigatoken-par "$rep" "$PY" "$HELPER" gigatoken \
            --tokenizer "$TOK" --corpus "$CORPUS" --mode par
    done
    if [[ -s $OUT/runs/$name-j1.bin ]]; then
        cmp -s "$OUT/runs/$name-j1.bin" "$OUT/runs/$name-j2.bin" ||
            log "WARNING: $name: utk tokenize -j 1 and -j 2 wrote different .bin files"
        run "$name" python 1 "$PY" "$HELPER" python --tokenizer "$TOK" --corpus "$CORPUS" \
            --utk-prefix "$OUT/runs/$name-j1" --threads "$PY_THREADS"
    else
        log "$name: no utk tokenize output, no exactness check"
    fi
    rm -f "$OUT/runs/$name"-j[12].{bin,idx}
done
UPTIME_AFTER=$(uptime)

python3 - "$OUT/meta.json" "${NAMES[@]}" <<EOF
import json, sys
json.dump({"tokenizers": sys.argv[2:], "started": "$STARTED", "uptime_before": "$UPTIME_BEFORE",
           "uptime_after": "$UPTIME_AFTER", "utk": "$UTK", "utk_version": "$UTK_VERSION",
           "corpus": "$CORPUS", "corpus_bytes": $CORPUS_BYTES, "corpus_docs": $CORPUS_DOCS,
           "repeats": $REPEATS, "py": "$PYV"}, open(sys.argv[1], "w"), indent=1)
EOF
{
    echo "$(date -u +%Y-%m-%d), $UTK_VERSION ($UTK), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $PYV."
    echo "Corpus: $(basename "$CORPUS"), $CORPUS_BYTES bytes of JSONL, $CORPUS_DOCS documents; best of $REPEATS runs (Python tokenizers: 1 run)."
    echo "Load before: \`$UPTIME_BEFORE\`; after: \`$UPTIME_AFTER\`."
    echo
    python3 "$HELPER" report "$RES" "$OUT/meta.json"
} | tee "$OUT/table.md"
log "table: $OUT/table.md; raw results: $RES; logs: $OUT/logs"
