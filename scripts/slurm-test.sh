#!/usr/bin/env bash
# A real Slurm on this machine: installs Slurm and munge from Debian's packages (needs root),
# writes a one-node slurm.conf, starts munged, slurmctld and slurmd, and runs
# examples/slurm/augment.sbatch on a fixture corpus in 4 parts:
#   1. the array job and its dependent merge (sbatch --wait): the merged output verifies against
#      the corpus, and the parts and the merge equal the same parts run by hand;
#   2. the array again into a fresh directory, with part 2's process killed mid-run (SIGKILL,
#      as by a node failure): parts 0, 1, 3 complete, part 2 incomplete;
#   3. the example resubmitted: parts 0, 1, 3 say "nothing to do", part 2 is redone, the merge
#      runs, and everything equals the parts run by hand.
# Stops every process it started. Ends with `N passed, M failed`; when Slurm cannot be set up
# or started it says exactly why and fails (it never passes without having run).
#
# Environment: UTK (the binary; default target/release/utk, built if missing), KEEP=1 to keep
# the work directory.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 && $passed -gt 0 ]]
    exit $?
}
cannot() {
    echo "FAIL: Slurm cannot run here: $*"
    failed=$((failed + 1))
    stop_all
    finish
}

WORK=$(mktemp -d /tmp/utk-slurm-test.XXXXXX)
chmod 755 "$WORK"
# The tokenizer tables utk caches go to the run's own directory, not the user's cache (the jobs
# inherit it: sbatch exports the environment).
export UTK_TOKENIZER_CACHE="${UTK_TOKENIZER_CACHE:-$WORK/tokenizer-cache}"
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    PIDS=()
    [[ "${KEEP:-0}" == 1 ]] || rm -rf "$WORK"
}
trap 'stop_all' EXIT

# --- install ---------------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || cannot "not root (installing packages and starting slurmd need root)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm and munge from Debian's packages…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends slurm-wlm munge >"$WORK/apt.log" 2>&1 ||
        { apt-get update -q >>"$WORK/apt.log" 2>&1 &&
            apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$WORK/apt.log" 2>&1; } ||
        cannot "apt-get install slurm-wlm munge failed: $(tail -3 "$WORK/apt.log" | tr '\n' ' ')"
fi
UTK=${UTK:-${CARGO_TARGET_DIR:-$ROOT/target}/release/utk}
if [[ ! -x "$UTK" ]]; then
    cargo build --release --locked -q || cannot "cannot build utk"
fi
UTK=$(realpath "$UTK")

# --- configure and start ---------------------------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
mkdir -p "$WORK"/{munge,spool,state,log}
chown munge:munge "$WORK/munge" 2>/dev/null
KEY=$WORK/munge/munge.key
if [[ -r /etc/munge/munge.key ]]; then cp /etc/munge/munge.key "$KEY"; else
    dd if=/dev/urandom of="$KEY" bs=1024 count=1 2>/dev/null
fi
chown munge:munge "$KEY" 2>/dev/null
chmod 400 "$KEY"
SOCKET=$WORK/munge/munge.socket
MUNGE_ARGS=(--key-file="$KEY" --socket="$SOCKET" --pid-file="$WORK/munge/munged.pid"
    --log-file="$WORK/munge/munged.log" --seed-file="$WORK/munge/seed")
if id munge >/dev/null 2>&1; then
    runuser -u munge -- munged "${MUNGE_ARGS[@]}" 2>"$WORK/log/munged.err"
else
    munged --force "${MUNGE_ARGS[@]}" 2>"$WORK/log/munged.err"
fi || cannot "munged did not start: $(cat "$WORK/log/munged.err" "$WORK/munge/munged.log" 2>/dev/null | tail -3 | tr '\n' ' ')"
PIDS+=("$(cat "$WORK/munge/munged.pid")")
munge -S "$SOCKET" -n </dev/null | unmunge -S "$SOCKET" >/dev/null 2>&1 ||
    cannot "munge cannot encode and decode a credential through $SOCKET"

# Ports away from a system Slurm's defaults (6817/6818), so a running one is not disturbed.
export SLURM_CONF=$WORK/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=utktest
SlurmctldHost=$HOST
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MaxArraySize=1001
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" 2>"$WORK/log/slurmctld.err" ||
    cannot "slurmctld did not start: $(tail -3 "$WORK/log/slurmctld.err" "$WORK/log/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 50); do [[ -s $WORK/slurmctld.pid ]] && break; sleep 0.1; done
[[ -s $WORK/slurmctld.pid ]] && PIDS+=("$(cat "$WORK/slurmctld.pid")")
slurmd -f "$SLURM_CONF" 2>"$WORK/log/slurmd.err" ||
    cannot "slurmd did not start: $(tail -3 "$WORK/log/slurmd.err" "$WORK/log/slurmd.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 50); do [[ -s $WORK/slurmd.pid ]] && break; sleep 0.1; done
[[ -s $WORK/slurmd.pid ]] && PIDS+=("$(cat "$WORK/slurmd.pid")")
state=
for _ in $(seq 100); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1)
    [[ $state == idle ]] && break
    sleep 0.2
done
[[ $state == idle ]] || cannot "node $HOST is '${state:-unknown}', not idle, after 20 s: \
$(tail -3 "$WORK/log/slurmctld.log" "$WORK/log/slurmd.log" 2>/dev/null | tr '\n' ' ')"
pass "munged, slurmctld and slurmd started; node $HOST ($CPUS CPUs) is idle"

# --- the corpus and the parts by hand --------------------------------------------------------
TOKENIZER=$ROOT/tests/fixtures/tokenizers/qwen3-mini/tokenizer.json
for _ in $(seq 20); do cat "$ROOT/tests/fixtures/docs.jsonl"; done >"$WORK/corpus.jsonl"
ARGS="-L 2048 --format megatron,olmo,npy"
for i in 0 1 2 3; do
    # shellcheck disable=SC2086
    "$UTK" augment "$WORK/corpus.jsonl" -t "$TOKENIZER" -o "$WORK/hand" -q $ARGS \
        --num-shards 4 --shard-index $i || fail "part $i by hand"
done
"$UTK" merge "$WORK/hand" -o "$WORK/hand-merged" -q || fail "merge of the parts by hand"

# Every file but the manifest of part directories (or merged outputs) $1 and $2 is the same.
same_parts() {
    local a=$1 b=$2 f
    for f in "$a"/part-*/* "$a"/merged/*; do
        [[ -e $f ]] || continue
        [[ $(basename "$f") == manifest.json ]] && continue
        local rel=${f#"$a"/}
        [[ $rel == merged/* ]] && rel=${rel#merged/} && {
            cmp -s "$f" "$b-merged/$rel" || { echo "  $f differs from $b-merged/$rel"; return 1; }
            continue
        }
        cmp -s "$f" "$b/$rel" || { echo "  $f differs from $b/$rel"; return 1; }
    done
}

export INPUT=$WORK/corpus.jsonl TOKENIZER UTK UTK_ARGS="$ARGS" SBATCH_ARGS="--cpus-per-task=1 --mem-per-cpu=500M"
cd "$WORK" || cannot "cannot enter $WORK"

# --- 1. the array and the dependent merge ----------------------------------------------------
if OUT=$WORK/out ARRAY=0-3%2 WAIT=1 bash "$ROOT/examples/slurm/augment.sbatch" >"$WORK/submit1.log" 2>&1; then
    pass "array job of 4 parts (%2 throttle) and dependent merge ran: $(tail -1 "$WORK/submit1.log")"
else
    fail "array job or merge failed: $(tail -3 "$WORK/submit1.log" | tr '\n' ' ') $(tail -5 "$WORK"/utk-*.log 2>/dev/null | tr '\n' ' ')"
fi
if "$UTK" verify "$WORK/out/merged" --input "$WORK/corpus.jsonl" -q; then
    pass "the merged output verifies against the corpus, token for token"
else
    fail "the merged output does not verify"
fi
if same_parts "$WORK/out" "$WORK/hand"; then
    pass "the parts and the merge made by Slurm equal those made by hand"
else
    fail "Slurm's parts or merge differ from those made by hand"
fi

# --- 2. a part killed mid-run ----------------------------------------------------------------
# The task of part 2 runs utk in steps of 2 ms (SIGSTOP/SIGCONT) until its temporary files
# exist, then kills it with SIGKILL: it dies mid-run, as on a node failure.
cat >"$WORK/kill-part-2.sh" <<EOF
#!/usr/bin/env bash
[[ \$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN)) -eq 2 ]] || exec "$UTK" "\$@"
"$UTK" "\$@" & pid=\$!
kill -STOP \$pid
dir=$WORK/out2/part-00002-of-00004
for _ in \$(seq 5000); do
    if compgen -G "\$dir/.*.partial" >/dev/null && [[ ! -e \$dir/manifest.json ]]; then
        kill -KILL \$pid; echo "killed part 2 (process \$pid) mid-run"; exit 137
    fi
    kill -CONT \$pid; sleep 0.002; kill -STOP \$pid 2>/dev/null || break
done
kill -CONT \$pid 2>/dev/null; wait \$pid; echo "part 2 finished before it could be killed"; exit 1
EOF
chmod +x "$WORK/kill-part-2.sh"
# shellcheck disable=SC2086
OUT=$WORK/out2 UTK=$WORK/kill-part-2.sh sbatch --wait $SBATCH_ARGS --array=0-3%2 --export=ALL \
    "$ROOT/examples/slurm/augment.sbatch" >"$WORK/submit2.log" 2>&1
status=$?
complete=$(ls "$WORK"/out2/part-*/manifest.json 2>/dev/null | wc -l)
if [[ $status -ne 0 && $complete -eq 3 && ! -e $WORK/out2/part-00002-of-00004/manifest.json ]] &&
    grep -q "killed part 2" "$WORK"/utk-*_2.log; then
    pass "part 2 killed mid-run: the array failed, parts 0, 1, 3 complete, part 2 incomplete"
else
    fail "killing part 2: sbatch status $status, $complete complete parts; $(cat "$WORK"/utk-*_2.log 2>/dev/null | tail -2 | tr '\n' ' ')"
fi

# --- 3. resubmitted: only part 2 is redone ---------------------------------------------------
rm -f "$WORK"/utk-*.log
if OUT=$WORK/out2 ARRAY=0-3%2 WAIT=1 bash "$ROOT/examples/slurm/augment.sbatch" >"$WORK/submit3.log" 2>&1; then
    pass "the resubmitted array and its merge ran"
else
    fail "the resubmitted array or merge failed: $(tail -3 "$WORK/submit3.log" | tr '\n' ' ')"
fi
nothing=$(grep -l "nothing to do" "$WORK"/utk-*_[013].log 2>/dev/null | wc -l)
if [[ $nothing -eq 3 ]] && grep -q "did not finish: redoing it" "$WORK"/utk-*_2.log &&
    ! grep -q "nothing to do" "$WORK"/utk-*_2.log; then
    pass "resubmitting redid part 2 only (parts 0, 1, 3: nothing to do)"
else
    fail "resubmission: $nothing of parts 0, 1, 3 said nothing to do; part 2 said: $(tail -2 "$WORK"/utk-*_2.log 2>/dev/null | tr '\n' ' ')"
fi
if "$UTK" verify "$WORK/out2/merged" -q && same_parts "$WORK/out2" "$WORK/hand"; then
    pass "after the resubmission, the parts and the merge equal those made by hand and verify"
else
    fail "after the resubmission the output differs from the parts made by hand"
fi

cd "$ROOT" || true
stop_all
trap - EXIT
finish
