# Shared by the benchmark scripts: source it, do not run it.

# Builds IMAGE from the host's static busybox (no registry can be reached) unless it exists.
ensure_busybox_image() {
    local image=$1 ctx
    docker image inspect "$image" >/dev/null 2>&1 && return 0
    ctx=$(mktemp -d)
    cp "$(command -v busybox)" "$ctx/busybox"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n' > "$ctx/Dockerfile"
    docker build -q -t "$image" "$ctx" >/dev/null
    rm -rf "$ctx"
}

# Interleaved measurements. Register cases with `case_add NAME PREPARE COMMAND`, then
# `cases_run ROUNDS DIR`: every round runs every case once (PREPARE untimed, then COMMAND
# timed), forward in odd rounds and backward in even ones, so that a machine that gets slower
# or faster during the run (a VM's neighbours, page cache, the engine's own state) weighs on
# every case alike; a side-by-side comparison of medians then means something. A failing
# command stops the benchmark with its output. Times (seconds, one per line) go to
# DIR/NAME.times. CASES (a regular expression) keeps only the cases whose name matches.
CASE_NAMES=()
CASE_PREP=()
CASE_CMD=()
case_add() {
    if [ -n "${CASES:-}" ] && ! [[ $1 =~ $CASES ]]; then return 0; fi
    CASE_NAMES+=("$1")
    CASE_PREP+=("$2")
    CASE_CMD+=("$3")
}

cases_clear() { CASE_NAMES=(); CASE_PREP=(); CASE_CMD=(); }

cases_run() {
    local rounds=$1 dir=$2 n=${#CASE_NAMES[@]} r i k t0 t1 log
    log=$(mktemp)
    mkdir -p "$dir"
    for ((k = 0; k < n; k++)); do : > "$dir/${CASE_NAMES[k]}.times"; done
    for ((r = 1; r <= rounds; r++)); do
        echo "   round $r of $rounds" >&2
        for ((i = 0; i < n; i++)); do
            if ((r % 2)); then k=$i; else k=$((n - 1 - i)); fi
            if ! bash -c "${CASE_PREP[k]}" > "$log" 2>&1; then
                echo "benchmark: preparing ${CASE_NAMES[k]} failed:" >&2
                cat "$log" >&2
                rm -f "$log"
                return 1
            fi
            t0=$EPOCHREALTIME
            if ! bash -c "${CASE_CMD[k]}" > "$log" 2>&1; then
                echo "benchmark: ${CASE_NAMES[k]} failed: ${CASE_CMD[k]}" >&2
                cat "$log" >&2
                rm -f "$log"
                return 1
            fi
            t1=$EPOCHREALTIME
            echo "$t1 - $t0" | bc -l >> "$dir/${CASE_NAMES[k]}.times"
        done
    done
    rm -f "$log"
}

# The median of a case's times (empty when it was not run).
case_median() {
    [ -s "$1" ] || return 0
    sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# The times of a case, sorted, for the tables: "min … max".
case_range() {
    [ -s "$1" ] || return 0
    sort -g "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f … %.3f", lo, hi }'
}
