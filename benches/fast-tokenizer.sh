#!/usr/bin/env bash
# benches/fast-tokenizer.sh — end-to-end `utk augment` with the fast encoder vs the tokenizers
# crate, and the Python `tokenizers` baseline, on the same corpus and threads.
#
# Usage:   benches/fast-tokenizer.sh [DATA] [OUT]
#   DATA   the shared data folder (default: ../shared/data); uses DATA/corpus/*.jsonl.zst (the six
#          corpora decompressed and concatenated in sorted order, recompressed once into OUT) and
#          DATA/tokenizers/qwen3/tokenizer.json
#   OUT    scratch folder (default: mktemp -d); the corpus and the venv are reused
#
# Runs, interleaved per repetition so outside load spreads over all of them: utk augment
# --seq-len 128k with --tokenizer-backend fast and tokenizers, --threads 2 and 1; the Python
# baseline benches/baseline_python.py (encode_batch_fast + numpy packing) with 2 and 1 threads.
# Each under /usr/bin/time -v. Reported per configuration: best wall time, utk's own run time (the
# summary's, which excludes loading the tokenizer), tokens/s on both, peak RSS, CPU seconds, and
# the CPU other processes used during the run. Checks that both backends wrote identical bytes.
#
# Knobs: REPEATS=3 (fast and Python runs), REPEATS_SLOW=1 (the crate backend, much slower),
#        QUIET_CORES=0.3, QUIET_WAIT=120 (wait for an idle machine before each run, as
#        benches/augment.sh does), PIP_ARGS= (extra pip arguments).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=$(cd "${1:-$ROOT/../shared/data}" && pwd)
OUT=${2:-$(mktemp -d -t utk-fastbench.XXXXXX)}
mkdir -p "$OUT/logs" "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
REPEATS=${REPEATS:-3}
REPEATS_SLOW=${REPEATS_SLOW:-1}
QUIET_CORES=${QUIET_CORES:-0.3}
QUIET_WAIT=${QUIET_WAIT:-120}
TOKENIZER=$DATA/tokenizers/qwen3/tokenizer.json
log() { printf '[fastbench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time; } >&2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && cargo build --release --quiet) >&2
cp "$CARGO_TARGET_DIR/release/utk" "$OUT/utk"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)

C1=$OUT/all1x.jsonl.zst
if [[ ! -s $C1 ]]; then
    for f in "$DATA"/corpus/*.jsonl.zst; do zstd -dcq "$f" | sed -e '$a\'; done | zstd -q -3 -T0 -o "$C1.tmp"
    mv "$C1.tmp" "$C1"
fi
PY=$OUT/venv/bin/python
if ! "$PY" -c 'import tokenizers, numpy, zstandard' 2>/dev/null; then
    log "creating venv (pip install tokenizers numpy zstandard)"
    python3 -m venv "$OUT/venv" >&2
    # shellcheck disable=SC2086
    "$OUT/venv/bin/pip" install -q ${PIP_ARGS:-} tokenizers numpy zstandard >&2
fi
PYV=$("$PY" -c 'import tokenizers; print(tokenizers.__version__)')

# shellcheck source=benches/quiet.sh
source "$(dirname "${BASH_SOURCE[0]}")/quiet.sh"

RES=$OUT/results.tsv
printf 'config\trep\twall_s\trun_s\trss_kb\tcpu_s\tothers_cores\ttokens\n' >"$RES"
# run CONFIG REP CMD...: one timed run; appends to RES.
run() {
    local cfg=$1 rep=$2 tf=$OUT/logs/$1-$2.time
    shift 2
    wait_quiet
    local a b
    a=$(busy_jiffies)
    "/usr/bin/time" -v -o "$tf" "$@" >"$OUT/logs/$cfg-$rep.out" 2>"$OUT/logs/$cfg-$rep.err" ||
        { log "FAILED $cfg: $(tail -3 "$OUT/logs/$cfg-$rep.err")"; return 0; }
    b=$(busy_jiffies)
    local wall rss cpu others run_s tokens
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")
    cpu=$(awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{print u+s}' "$tf")
    others=$(awk -v d=$((b - a)) -v hz="$HZ" -v c="$cpu" -v w="$wall" 'BEGIN{o=(d/hz-c)/w; if(o<0)o=0; printf "%.2f", o}')
    if [[ $cfg == utk-* ]]; then
        run_s=$(awk '/throughput/{print $2}' "$OUT/logs/$cfg-$rep.out")
        tokens=$(awk '/^  tokens in/{print $3}' "$OUT/logs/$cfg-$rep.out")
    else
        run_s=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["seconds"])' "$OUT/logs/$cfg-$rep.out" 2>/dev/null || echo)
        tokens=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["input_tokens"])' "$OUT/logs/$cfg-$rep.out")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cfg" "$rep" "$wall" "$run_s" "$rss" "$cpu" "$others" "$tokens" >>"$RES"
    log "$cfg #$rep: ${wall}s wall, run ${run_s}s, $((rss / 1024)) MiB, others ${others} cores"
}
utk() { # BACKEND THREADS REP
    run "utk-$1-t$2" "$3" "$OUT/utk" augment "$C1" -t "$TOKENIZER" --seq-len 128k --threads "$2" \
        --tokenizer-backend "$1" -o "$OUT/runs/utk-$1-t$2" --force
}
py() { # THREADS REP
    run "python-t$1" "$2" "$PY" "$ROOT/benches/baseline_python.py" --tokenizer "$TOKENIZER" \
        --seq-len 131072 --threads "$1" --out "$OUT/runs/python-t$1.bin" "$C1"
}
UPTIME_BEFORE=$(uptime)
for rep in $(seq 1 "$REPEATS"); do
    utk fast 2 "$rep"
    utk fast 1 "$rep"
    py 2 "$rep"
    py 1 "$rep"
    if ((rep <= REPEATS_SLOW)); then
        utk tokenizers 2 "$rep"
        utk tokenizers 1 "$rep"
    fi
done
SAME=$(cmp -s "$OUT/runs/utk-fast-t2/tokens.bin" "$OUT/runs/utk-tokenizers-t2/tokens.bin" &&
    cmp -s "$OUT/runs/utk-fast-t1/tokens.bin" "$OUT/runs/utk-tokenizers-t2/tokens.bin" && echo yes || echo NO)

echo "Commit \`$COMMIT\`, $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), Python tokenizers $PYV."
echo "Corpus: the six corpora concatenated ($(basename "$C1"), $(zstd -dcq "$C1" | wc -c) bytes of JSONL), Qwen3 tokenizer, --seq-len 128k."
echo "Load before: \`$UPTIME_BEFORE\`; after: \`$(uptime)\`."
echo "Both utk backends wrote identical tokens.bin: $SAME."
echo
echo "| configuration | threads | best wall s | M tokens/s (wall) | run s | M tokens/s (run) | peak RSS MiB | CPU s | others' cores | runs |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
python3 - "$RES" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
order = ["utk-fast-t2", "utk-fast-t1", "utk-tokenizers-t2", "utk-tokenizers-t1", "python-t2", "python-t1"]
names = {"utk-fast": "utk augment, fast-bpe backend", "utk-tokenizers": "utk augment, tokenizers backend",
         "python": "Python tokenizers encode_batch_fast + numpy packing"}
for cfg in order:
    rs = [r for r in rows if r["config"] == cfg and r["wall_s"]]
    if not rs:
        continue
    best = min(rs, key=lambda r: float(r["wall_s"]))
    runs = [float(r["run_s"]) for r in rs if r["run_s"]]
    tok = int(best["tokens"])
    wall = float(best["wall_s"])
    run = min(runs) if runs else None
    base, t = cfg.rsplit("-t", 1)
    print(f"| {names[base]} | {t} | {wall:.2f} | {tok / wall / 1e6:.2f} | "
          f"{'' if run is None else f'{run:.2f}'} | {'' if run is None else f'{tok / run / 1e6:.2f}'} | "
          f"{max(int(r['rss_kb']) for r in rs) / 1024:.0f} | {float(best['cpu_s']):.2f} | {best['others_cores']} | {len(rs)} |")
PY
log "raw results: $RES"
