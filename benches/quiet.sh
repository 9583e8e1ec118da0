# benches/quiet.sh — sourced by the benchmark scripts: how busy the machine is, and waiting for
# it to be idle before a timed run. The caller defines `log`, QUIET_CORES and QUIET_WAIT.

# CPU jiffies spent by every process so far (user, nice, system, irq, softirq, steal).
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
HZ=$(getconf CLK_TCK)

# Until other processes use < QUIET_CORES cores, or QUIET_WAIT seconds passed.
wait_quiet() {
    local t0=$SECONDS a b cores
    while :; do
        a=$(busy_jiffies); sleep 2; b=$(busy_jiffies)
        cores=$(awk -v d=$((b - a)) -v hz="$HZ" 'BEGIN{printf "%.2f", d/hz/2}')
        if awk -v c="$cores" -v q="$QUIET_CORES" 'BEGIN{exit !(c < q)}'; then
            return 0
        fi
        if ((SECONDS - t0 >= QUIET_WAIT)); then
            log "machine still busy ($cores cores used by others; $(uptime | sed 's/.*load/load/')); running anyway"
            return 0
        fi
        log "waiting: $cores cores busy ($(uptime | sed 's/.*load/load/'))"
        sleep 5
    done
}
