# shellcheck shell=bash disable=SC2154
# Shared by the benchmark scripts: source it, do not run it.

# Stops the benchmark unless every program named is installed.
need() {
    local p
    for p in "$@"; do
        command -v "$p" >/dev/null || { echo "$0: needs $p" >&2; exit 1; }
    done
}

# The dstart binary measured: $D when set, else the release build of this checkout (built).
release_binary() {
    if [ -n "${D:-}" ]; then echo "$D"; return; fi
    cargo build --release --locked -q >&2
    echo "${CARGO_TARGET_DIR:-$PWD/target}/release/dstart"
}

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

# The benchmark volume of the backup scripts: VOL, mounted on /data of the created data
# container C, made with IMAGE; `work` must be set (a scratch directory on the disk measured).
clean_all() {
    docker ps -aq --filter "name=$C" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    docker volume rm -f "$VOL" >/dev/null 2>&1 || true
}

free_gib() { df -B1G --output=avail "$1" | tail -n 1 | tr -d ' '; }

# The volume: SIZE x (512 MiB random + 20,000 x 4 KiB text files + 433.875 MiB text) =
# SIZE GiB of file content. The text is cheap: a ~3.8 MB chunk of `seq` output with some base64
# of random bytes (gzip -1 makes it about 0.4 of its size, like prose), repeated into 16 files per
# GiB (gzip's and zstd -1's windows are far smaller than the chunk, so the repetition does not
# help them). Small files: 64 lines of 64 bytes each (a line number and base64 of random bytes).
make_volume() {
    local gib=$1 need
    need=$(( gib * 4 + 2 ))
    for d in / "$work"; do
        if [ "$(free_gib "$d")" -lt "$need" ]; then
            echo "$0: need ${need} GiB free on $d for a ${gib} GiB volume; df says:" >&2
            df -h "$d" >&2
            return 1
        fi
    done
    clean_all
    docker volume create "$VOL" >/dev/null
    docker run --rm -v "$VOL:/data" "$IMAGE" sh -euc '
        gib=$1
        mkdir -p /data/random /data/small /data/text /tmp
        i=0; while [ $i -lt $gib ]; do
            head -c 536870912 /dev/urandom > /data/random/random-$i.bin; i=$((i + 1)); done
        head -c $((gib * 75000000)) /dev/urandom | base64 | awk -v n=$((gib * 20000)) "
            { f = sprintf(\"/data/small/f%06d\", int((NR - 1) / 64))
              printf \"%07d %s\\n\", NR, substr(\$0, 1, 55) > f
              if (NR % 64 == 0) close(f)
              if (NR == n * 64) exit }"
        { seq 1 500000; head -c 300000 /dev/urandom | base64; } > /tmp/chunk
        i=0; while [ $i -lt $((gib * 16)) ]; do
            while cat /tmp/chunk; do :; done 2>/dev/null | head -c 28434432 > /data/text/text-$i.txt
            i=$((i + 1)); done
        ' sh "$gib"
    docker create --name "$C" -v "$VOL:/data" "$IMAGE" true >/dev/null
    local got
    got=$(docker run --rm -v "$VOL:/data:ro" "$IMAGE" sh -c 'find /data -type f | wc -l; find /data -type f -exec stat -c %s {} + | awk "{s += \$1} END {print s}"' | tr '\n' ' ')
    echo "volume: $gib GiB; files, bytes: $got" >&2
    if [ "$got" != "$(( gib * 20017 )) $(( gib * 1073741824 )) " ]; then
        echo "$0: the volume does not have the expected content" >&2
        return 1
    fi
}

