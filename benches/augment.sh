#!/usr/bin/env bash
# benches/augment.sh — end-to-end benchmark of `utk augment`, and of the Python baseline.
#
# Usage:   benches/augment.sh [DATA] [OUT]
#   DATA   the shared data folder (default: ../shared/data relative to the repository root);
#          uses DATA/corpus/*.jsonl.zst and DATA/tokenizers/qwen3/tokenizer.json
#   OUT    scratch folder for the binary, corpora, outputs, venv and logs (default: mktemp -d);
#          reusable: the concatenated corpora and the venv are kept and not rebuilt
#
# What it does:
#   1. cargo build --release, then copies target/release/utk to OUT/utk (so a concurrent
#      `cargo build`/`cargo test --release` by someone else cannot swap the binary mid-run).
#   2. Corpora: "1x" = the six DATA/corpus/*.jsonl.zst decompressed and concatenated in sorted
#      file order, recompressed into one .jsonl.zst; "4x" = that concatenation four times.
#   3. utk augment, Qwen3 tokenizer, --seq-len 128k, --threads 1 and 2, on 1x and 4x, under
#      `/usr/bin/time -v` (wall time, peak RSS). Each run is repeated; the best (lowest) wall time
#      is reported and the highest peak RSS. Runs are interleaved (rep, corpus, threads) so that a
#      burst of outside load does not hit all repetitions of one configuration.
#   4. Baseline (BASELINE=1): a venv in OUT with `tokenizers numpy zstandard`, then
#      benches/baseline_python.py (encode_batch_fast + EOD + numpy plain packing, 2 threads) and,
#      for an apples-to-apples comparison, `utk augment --method plain` (2 threads), both on 1x.
#      Checks that Python's token counts equal utk's input_tokens (in total and per document,
#      against provenance.docs) and that Python's packed ids equal utk --method plain's tokens.bin.
#   5. Hardware ceiling (CEILING=1): two independent `utk augment --threads 1` processes on 1x at
#      the same time; 2 x (1-thread time) / (time of the pair) bounds the 2-thread speedup when
#      a 1-thread run keeps one core busy (below 2 if the vCPUs share a physical core or memory
#      saturates; also below 2 when one "1-thread" run already uses more than a core, as with
#      the fast tokenizer backend, whose reader and writer threads run beside the worker).
#   6. Prints a markdown report (machine, commit, commands, tables, targets) on stdout;
#      progress goes to stderr. Raw numbers: OUT/results.tsv, logs in OUT/logs/.
#
# Before every timed run the script waits (up to QUIET_WAIT seconds) until the machine is idle
# (other processes use less than QUIET_CORES cores over 2 s), and it records how much CPU other
# processes used *during* each run ("others' CPU" column), since a concurrent compile skews timings.
#
# Environment knobs (defaults):
#   REPEATS=3        repetitions of each 1x run (utk, utk plain, python)
#   REPEATS_4X=2     repetitions of each 4x run
#   BASELINE=1       0 skips the Python / utk --method plain comparison
#   QUIET_CORES=0.25 idle threshold, in cores busy
#   QUIET_WAIT=180   longest wait for idleness before a run (seconds); then it runs anyway
#   PIP_ARGS=        extra arguments for pip install
#   DISTURBED_CORES=0.3  a run during which other processes used more CPU than this is
#                    "disturbed" and repeated ...
#   RETRY_DISTURBED=1    ... at most this many times (all attempts are kept in results.tsv)
#   CEILING=1        0 skips the hardware ceiling run
#   UTK_ARGS=        extra arguments for every `utk augment` run, e.g.
#                    UTK_ARGS="--tokenizer-backend tokenizers" (word-split)
#   RESUME=0         1: keep OUT/results.tsv and add repetitions REP_START..REPEATS to it (e.g.
#                    REP_START=4 REPEATS=5 REPEATS_4X=5 after a run disturbed by other load);
#                    the report then uses all rows
#   REP_START=1      first repetition number
#   ONLY=            a bash regex: run only the timed runs whose label matches (labels:
#                    utk-{1x,4x}-t{1,2}-rN, utkplain-1x-t2-rN, python-1x-t2-rN, pair-1x-t1-rN)
#
# Needs: cargo, python3 (with venv), zstd, /usr/bin/time (Debian package `time`; installed with
# apt-get when missing, as are zstd and python3-venv).
#
# `nice` does not shield the runs from other users' compiles here: with sched_autogroup each
# session gets a fair share of the CPUs whatever the nice value, so the script waits instead.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-$ROOT/../shared/data}
OUT=${2:-$(mktemp -d -t utk-bench.XXXXXX)}
REPEATS=${REPEATS:-3}
REPEATS_4X=${REPEATS_4X:-2}
BASELINE=${BASELINE:-1}
QUIET_CORES=${QUIET_CORES:-0.25}
QUIET_WAIT=${QUIET_WAIT:-180}
PIP_ARGS=${PIP_ARGS:-}
RESUME=${RESUME:-0}
DISTURBED_CORES=${DISTURBED_CORES:-0.3}
RETRY_DISTURBED=${RETRY_DISTURBED:-1}
CEILING=${CEILING:-1}
UTK_ARGS=${UTK_ARGS:-}
ONLY=${ONLY:-}
REP_START=${REP_START:-1}
SEQ_LEN=128k
SEQ_LEN_TOKENS=131072

DATA=$(cd "$DATA" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TOKENIZER=$DATA/tokenizers/qwen3/tokenizer.json
LOGS=$OUT/logs
RESULTS=$OUT/results.tsv
META=$OUT/meta.json
mkdir -p "$LOGS" "$OUT/corpus" "$OUT/runs"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -f $TOKENIZER ]] || die "no tokenizer at $TOKENIZER (give the data folder as the first argument)"
shopt -s nullglob
CORPORA=("$DATA"/corpus/*.jsonl.zst)
shopt -u nullglob
((${#CORPORA[@]} > 0)) || die "no $DATA/corpus/*.jsonl.zst"

# ---------------------------------------------------------------------------------------------
# Tools
apt_install() {
    local sudo=
    [[ $(id -u) == 0 ]] || sudo=sudo
    log "installing Debian package(s) $*"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}
[[ -x /usr/bin/time ]] && /usr/bin/time -v true 2>/dev/null || apt_install time
command -v zstd >/dev/null || apt_install zstd
command -v python3 >/dev/null || apt_install python3 python3-venv

# ---------------------------------------------------------------------------------------------
# Build
log "building release in $ROOT"
(cd "$ROOT" && cargo build --release --quiet) >&2
cp "$ROOT/target/release/utk" "$OUT/utk"
UTK=$OUT/utk
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
DIRTY=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock build.rs | tr '\n' ';')

# ---------------------------------------------------------------------------------------------
# Corpora
C1=$OUT/corpus/all1x.jsonl.zst
C4=$OUT/corpus/all4x.jsonl.zst
concat_plain() { # the six corpora in sorted order, each ending in a newline
    local f
    for f in "${CORPORA[@]}"; do zstd -dcqf "$f" | sed -e '$a\' || return 1; done
}
if [[ ! -s $C1 ]]; then
    log "concatenating ${#CORPORA[@]} corpora into $C1"
    concat_plain | zstd -qf -3 -T0 -o "$C1.tmp" || die "cannot build $C1"
    mv "$C1.tmp" "$C1"
fi
if [[ ! -s $C4 ]]; then
    log "repeating it 4 times into $C4"
    for _ in 1 2 3 4; do zstd -dcq "$C1" || exit 1; done | zstd -qf -3 -T0 -o "$C4.tmp" ||
        die "cannot build $C4"
    mv "$C4.tmp" "$C4"
fi

# ---------------------------------------------------------------------------------------------
# Measurement helpers

# shellcheck source=benches/quiet.sh
source "$(dirname "${BASH_SOURCE[0]}")/quiet.sh"

[[ $RESUME == 1 && -s $RESULTS ]] ||
    printf 'label\ttool\tcorpus\tthreads\trep\twall_s\tmax_rss_kb\tuser_s\tsys_s\tothers_cores\tload1\tinput_tokens\tinserted_tokens\tdocuments\twindows\toutput_sha256\tbackend\n' >"$RESULTS"

# time_run LABEL TOOL CORPUS THREADS REP -- CMD...: runs CMD under /usr/bin/time -v, appends a row
# to results.tsv. When other processes used more than DISTURBED_CORES cores during the run, the run
# is repeated (after waiting for quiet again), at most RETRY_DISTURBED times; every attempt is a
# row (LABEL, LABEL-retry1, ...). For utk runs the output directory is OUT/runs/LABEL; its manifest
# and a hash of tokens.bin + loss_mask.bin are kept, the (large) data files deleted unless
# KEEP_OUTPUT=1.
time_run() {
    local label=$1 tool=$2 corpus=$3 threads=$4 rep=$5
    shift 6
    [[ -z $ONLY || $label =~ $ONLY ]] || return 0
    local try run=$label
    for ((try = 0; try <= RETRY_DISTURBED; try++)); do
        ((try == 0)) || run=$label-retry$try
        time_once "$label" "$run" "$tool" "$corpus" "$threads" "$rep" "$@"
        if awk -v o="$LAST_OTHERS" -v d="$DISTURBED_CORES" 'BEGIN{exit !(o <= d)}'; then
            return 0
        fi
        ((try == RETRY_DISTURBED)) || log "  $run was disturbed (others used $LAST_OTHERS cores); again"
    done
}

time_once() {
    local label=$1 run=$2 tool=$3 corpus=$4 threads=$5 rep=$6
    shift 6
    wait_quiet
    local load1 a b tf=$LOGS/$run.time
    load1=$(cut -d' ' -f1 /proc/loadavg)
    log "run $run (load1 $load1)"
    LAST_OTHERS=0
    a=$(busy_jiffies)
    if ! /usr/bin/time -v -o "$tf" "$@" >"$LOGS/$run.stdout" 2>"$LOGS/$run.stderr"; then
        log "FAILED: $run (exit status in $tf; stderr $LOGS/$run.stderr):"
        tail -n 20 "$LOGS/$run.stderr" >&2
        printf '%s\t%s\t%s\t%s\t%s\tFAILED\t\t\t\t\t%s\t\t\t\t\t\t\n' "$run" "$tool" "$corpus" "$threads" "$rep" "$load1" >>"$RESULTS"
        return 0
    fi
    b=$(busy_jiffies)
    local wall rss user sys others
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tf")
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")
    user=$(awk -F': ' '/User time \(seconds\)/{print $2}' "$tf")
    sys=$(awk -F': ' '/System time \(seconds\)/{print $2}' "$tf")
    others=$(awk -v d=$((b - a)) -v hz="$HZ" -v u="$user" -v s="$sys" -v w="$wall" \
        'BEGIN{o=(d/hz-u-s)/w; if(o<0)o=0; printf "%.2f", o}')
    LAST_OTHERS=$others
    local input='' inserted='' docs='' windows='' sha='' backend=''
    if [[ $tool == utk* ]]; then
        local dir=$OUT/runs/$label
        cp "$dir/manifest.json" "$LOGS/$run.manifest.json"
        read -r input inserted docs windows backend < <(python3 -c '
import json,sys; m=json.load(open(sys.argv[1])); c=m["counts"]
print(c["input_tokens"], c["inserted_tokens"], c["documents"], m["windows"],
      m["tokenizer"].get("backend", "tokenizers"))' "$dir/manifest.json")
        sha=$(cat "$dir/tokens.bin" "$dir/loss_mask.bin" | sha256sum | cut -c1-16)
        [[ ${KEEP_OUTPUT:-0} == 1 ]] || rm -f "$dir"/*.bin "$dir"/provenance.*
    elif [[ $tool == pair ]]; then
        local dir=$OUT/runs/$label
        read -r input docs windows < <(python3 -c '
import json,sys; m=json.load(open(sys.argv[1])); c=m["counts"]
print(c["input_tokens"], c["documents"], m["windows"])' "$dir-a/manifest.json")
        rm -rf "$dir-a" "$dir-b"
    else
        read -r input docs windows < <(python3 -c '
import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(r["input_tokens"], r["documents"], r["windows"])' "$LOGS/$run.stdout")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$run" "$tool" "$corpus" "$threads" "$rep" "$wall" "$rss" "$user" "$sys" "$others" \
        "$load1" "$input" "$inserted" "$docs" "$windows" "$sha" "$backend" >>"$RESULTS"
    log "  $run: ${wall}s, $((rss / 1024)) MiB, others ${others} cores, input_tokens ${input}"
}

utk_cmd() { # CORPUS THREADS LABEL [extra args]: sets the array CMD
    local corpus=$1 threads=$2 label=$3
    shift 3
    CMD=("$UTK" augment "$corpus" --tokenizer "$TOKENIZER" --seq-len "$SEQ_LEN"
        -o "$OUT/runs/$label" --force --threads "$threads" "$@")
    # shellcheck disable=SC2206
    [[ -z $UTK_ARGS ]] || CMD+=($UTK_ARGS)
}

# ---------------------------------------------------------------------------------------------
# Python venv (before the timed runs, so pip's CPU use does not overlap them)
PY=$OUT/venv/bin/python
if [[ $BASELINE == 1 ]]; then
    if [[ ! -x $PY ]] || ! "$PY" -c 'import tokenizers, numpy, zstandard' 2>/dev/null; then
        log "creating venv $OUT/venv (pip install tokenizers numpy zstandard)"
        python3 -m venv "$OUT/venv" >&2 || { apt_install python3-venv && python3 -m venv "$OUT/venv" >&2; }
        # shellcheck disable=SC2086
        "$OUT/venv/bin/pip" install -q $PIP_ARGS tokenizers numpy zstandard >&2
    fi
    PY_VERSIONS=$("$PY" -c 'import sys,tokenizers,numpy,zstandard; print(f"Python {sys.version.split()[0]}, tokenizers {tokenizers.__version__}, numpy {numpy.__version__}, zstandard {zstandard.__version__}")')
else
    PY_VERSIONS=
fi

# ---------------------------------------------------------------------------------------------
# Timed runs
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
UPTIME_BEFORE=$(uptime)
if [[ $RESUME == 1 && -s $META ]]; then # keep the first session's start for the report
    STARTED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["started"])' "$META")
    UPTIME_BEFORE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uptime_before"])' "$META")
fi
for rep in $(seq "$REP_START" "$REPEATS"); do
    for c in 1x 4x; do
        [[ $c == 4x && $rep -gt $REPEATS_4X ]] && continue
        corpus=$OUT/corpus/all$c.jsonl.zst
        for t in 1 2; do
            label=utk-$c-t$t-r$rep
            utk_cmd "$corpus" "$t" "$label"
            time_run "$label" utk "$c" "$t" "$rep" -- "${CMD[@]}"
        done
    done
    if [[ $BASELINE == 1 ]]; then
        label=utkplain-1x-t2-r$rep
        KEEP_OUTPUT=$([[ $rep == 1 ]] && echo 1 || echo 0)
        utk_cmd "$C1" 2 "$label" --method plain
        KEEP_OUTPUT=$KEEP_OUTPUT time_run "$label" utk-plain 1x 2 "$rep" -- "${CMD[@]}"
        label=python-1x-t2-r$rep
        time_run "$label" python 1x 2 "$rep" -- "$PY" "$ROOT/benches/baseline_python.py" \
            --tokenizer "$TOKENIZER" --seq-len "$SEQ_LEN_TOKENS" --threads 2 \
            --out "$OUT/runs/$label.bin" --doc-tokens "$OUT/runs/$label.doctokens" "$C1"
        if [[ $rep != 1 ]]; then rm -f "$OUT/runs/$label.bin" "$OUT/runs/$label.doctokens"; fi
    fi
    if [[ $CEILING == 1 ]]; then
        label=pair-1x-t1-r$rep
        # shellcheck disable=SC2016
        time_run "$label" pair 1x 1 "$rep" -- bash -c '
            u=$1 c=$2 t=$3 l=$4 o=$5; shift 5
            "$u" augment "$c" --tokenizer "$t" --seq-len "$l" -o "$o-a" --force --threads 1 "$@" & p=$!
            "$u" augment "$c" --tokenizer "$t" --seq-len "$l" -o "$o-b" --force --threads 1 "$@"
            wait $p' pair "$UTK" "$C1" "$TOKENIZER" "$SEQ_LEN" "$OUT/runs/$label" $UTK_ARGS
    fi
done
UPTIME_AFTER=$(uptime)

# ---------------------------------------------------------------------------------------------
# Token-level comparison of the baseline with utk (first repetition's outputs)
CHECK=$OUT/check.json
if [[ $BASELINE == 1 ]]; then
    log "comparing Python's tokens with utk --method plain"
    "$PY" - "$OUT/runs/utkplain-1x-t2-r1" "$OUT/runs/python-1x-t2-r1.bin" \
        "$OUT/runs/python-1x-t2-r1.doctokens" >"$CHECK" <<'EOF' || echo '{}' >"$CHECK"
import json, sys
import numpy as np
udir, pybin, pydocs = sys.argv[1:4]
m = json.load(open(f"{udir}/manifest.json"))
n = m["counts"]["input_tokens"]
dt = np.dtype([("source", "<u4"), ("flags", "<u4"), ("line", "<u8"), ("tokens", "<u8")])
udocs = np.fromfile(f"{udir}/provenance.docs", dtype=dt)["tokens"]
pdocs = np.fromfile(pydocs, dtype="<u8")
res = {"utk_input_tokens": n, "python_input_tokens": int(pdocs.sum()),
       "utk_documents": len(udocs), "python_documents": len(pdocs)}
k = min(len(udocs), len(pdocs))
diff = np.nonzero(udocs[:k] != pdocs[:k])[0]
res["docs_with_different_counts"] = int(len(diff))
if len(diff):
    i = int(diff[0])
    res["first_different_doc"] = {"ordinal": i, "utk": int(udocs[i]), "python": int(pdocs[i])}
udt = {"int32": "<i4", "uint16": "<u2", "int16": "<i2", "uint32": "<u4"}.get(m["token_dtype"].lower(), "<i4")
u = np.memmap(f"{udir}/tokens.bin", dtype=udt, mode="r")[:n].astype(np.int64)
p = np.memmap(pybin, dtype="<i4", mode="r")[:n].astype(np.int64)
res["token_dtype"] = m["token_dtype"]
res["ids_compared"] = int(min(len(u), len(p)))
neq = np.nonzero(u[: len(p)] != p[: len(u)])[0]
res["ids_identical"] = bool(len(u) == len(p) == n and len(neq) == 0)
if len(neq):
    res["first_different_id_at"] = int(neq[0])
print(json.dumps(res))
EOF
    log "check: $(cat "$CHECK")"
else
    echo '{}' >"$CHECK"
fi

# ---------------------------------------------------------------------------------------------
# Metadata and report
python3 - "$META" <<EOF
import json, sys
json.dump({
    "commit": "$COMMIT",
    "dirty": "$DIRTY",
    "started": "$STARTED",
    "uptime_before": "$UPTIME_BEFORE",
    "uptime_after": "$UPTIME_AFTER",
    "nproc": "$(nproc)",
    "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')",
    "mem": "$(free -h | awk '/^Mem:/{print $2}') ($(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo))",
    "kernel": "$(uname -r)",
    "rustc": "$(rustc --version)",
    "py_versions": "$PY_VERSIONS",
    "utk": "$UTK",
    "utk_args": "$UTK_ARGS",
    "tokenizer": "$TOKENIZER",
    "data": "$DATA",
    "out": "$OUT",
    "corpora": "$(for f in "${CORPORA[@]}"; do basename "$f"; done | tr '\n' ' ')",
    "c1_bytes": $(stat -L -c %s "$C1"),
    "c4_bytes": $(stat -L -c %s "$C4"),
    "repeats": $REPEATS,
    "repeats_4x": $REPEATS_4X,
    "baseline": $BASELINE,
    "disturbed_cores": $DISTURBED_CORES,
}, open(sys.argv[1], "w"), indent=1)
EOF
python3 "$ROOT/benches/report.py" "$RESULTS" "$META" "$CHECK"
log "done; raw results in $RESULTS, logs in $LOGS"
