#!/usr/bin/env bash
# Benchmarks of issue 3, side by side in one run: N busybox containers on one network with one
# named volume, started and torn down by
#   - the raw engine API (curl on the socket), one after another and P at a time (P = 2..5),
#   - dstart (sequential orders, a `parallel:` block with max P, a no-op second start, the
#     generated stop and cleanup),
#   - the raw engine API's fastest teardown (force-remove 8 at a time, then the network),
#   - docker-compose 1.29 (up -d, a no-op up -d, down),
# plus `dstart list` and `dstart run --print-unit` on a configuration with 200 units.
#
# usage: bench/start.sh [N...]        (default: 10 30)
#   RUNS=5        rounds: every case runs once per round, the rounds interleave the cases
#   CASES=REGEX   only the cases whose name matches (e.g. 'raw-seq|dstart-seq')
#   BASELINE=BIN  also run every dstart case with this binary (the previous release) in the
#                 same rounds, as base-*, and print dstart / baseline (issue 14: within 1.05x)
# Writes the times under bench/results/start-N/ and prints Markdown tables: medians with their
# range, the issue's targets (met or not), and the CPU steal during the run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup
export DEBIAN_FRONTEND=noninteractive
for p in hyperfine docker-compose jq bc; do
    command -v "$p" >/dev/null || { apt-get install -y -qq "$p" >/dev/null; }
done
cargo build --release --locked -q
D=$root/target/release/dstart
RUNS=${RUNS:-5}
IMAGE=dstart-bench/busybox:latest
SOCK=/var/run/docker.sock
API=$(docker version --format '{{.Server.APIVersion}}')
export D IMAGE SOCK API

# The base image, from the host's static busybox (no registry can be reached).
. bench/lib.sh
ensure_busybox_image "$IMAGE"

work=$(mktemp -d /tmp/dstart-bench.XXXXXX)
results=$root/bench/results
mkdir -p "$results"
trap 'clean_all; kill "${vmstat_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

# Removes what any case made. Networks go by id: the engine (20.10) sometimes keeps a removed
# container's endpoint and then refuses to remove its network ("has active endpoints"); such a
# network stays behind under its name, so the raw API uses a new network name every run and
# dstart and compose simply reuse theirs.
clean_all() {
    local v
    docker ps -aq --filter name=bench-c | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    docker ps -aq --filter label=com.docker.compose.project=bench | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    docker network ls -q --filter name=bench-raw --filter name=dstart-seq --filter name=dstart-par \
        --filter name=bench_default | xargs -r -n1 docker network rm >/dev/null 2>&1 || true
    for v in bench-vol bench_vol; do docker volume rm -f "$v" >/dev/null 2>&1 || true; done
}
export -f clean_all

# The containers: `sleep` under the engine's init so that SIGTERM stops them at once (else
# docker-compose's `down` would wait its 10 s stop timeout on every container).
write_configs() {
    local n=$1 conf=$work/conf-$1 p
    mkdir -p "$conf/environments" "$conf/units/seq"
    : > "$conf/environments/default.yaml"
    {
        for i in $(seq 1 "$n"); do
            printf 'bench-c%s:\n  image: %s\n  command: ["sleep", "3600"]\n  volumes: ["bench-vol:/data"]\n  startup: {init: true}\n' "$i" "$IMAGE"
        done
        echo '---'
        for i in $(seq 1 "$n"); do printf -- '- bench-c%s: {command: start}\n' "$i"; done
    } > "$conf/units/seq/start.yaml"
    # The same containers and network, the start orders in one `parallel` block of max P.
    for p in 2 3 4 5; do
        mkdir -p "$conf/units/par$p"
        {
            echo 'import: seq/start'
            echo '---'
            echo '- parallel:'
            echo "    max: $p"
            echo '    orders:'
            for i in $(seq 1 "$n"); do printf -- '      - bench-c%s: {command: start}\n' "$i"; done
        } > "$conf/units/par$p/start.yaml"
    done
    {
        echo 'version: "2.4"'
        echo 'services:'
        for i in $(seq 1 "$n"); do
            printf '  bench-c%s:\n    image: %s\n    container_name: bench-c%s\n    command: ["sleep", "3600"]\n    init: true\n    volumes: ["vol:/data"]\n' "$i" "$IMAGE" "$i"
        done
        echo 'volumes:'
        echo '  vol: {}'
    } > "$conf/docker-compose.yml"
    # The raw engine API: the same network, volume, create and start calls as dstart makes.
    cat > "$conf/raw.sh" <<RAW
#!/usr/bin/env bash
# usage: raw.sh P   (P containers at a time; 1 = one after another)
set -euo pipefail
api() { curl -sSf --unix-socket $SOCK -X "\$1" -H 'Content-Type: application/json' "http://localhost/v$API\$2" \${3:+-d "\$3"} >/dev/null; }
export -f api
net=bench-raw-\$\$-\$RANDOM
export net
api POST /networks/create '{"Name": "'"\$net"'", "Driver": "bridge", "CheckDuplicate": true}'
api POST /volumes/create '{"Name": "bench-vol"}'
one() {
    api POST "/containers/create?name=bench-c\$1" '{"Image": "$IMAGE", "Cmd": ["sleep", "3600"], "HostConfig": {"Binds": ["bench-vol:/data"], "NetworkMode": "'"\$net"'", "Init": true}, "NetworkingConfig": {"EndpointsConfig": {"'"\$net"'": {"Aliases": ["bench-c'"\$1"'"]}}}}'
    api POST "/containers/bench-c\$1/start"
}
export -f one
seq 1 $n | xargs -P "\$1" -I{} bash -c 'one {}'
RAW
    chmod +x "$conf/raw.sh"
    # The raw engine API's teardowns of the containers dstart started, 8 at a time: `stop` (the
    # engine's floor for dstart stop) and `down`, one force-remove per container, then the
    # network (the engine's fastest teardown, the floor for stop and cleanup).
    cat > "$conf/raw-down.sh" <<RAW
#!/usr/bin/env bash
# usage: raw-down.sh stop|down
set -euo pipefail
api() { curl -sSf --unix-socket $SOCK -X "\$1" "http://localhost/v$API\$2" >/dev/null; }
export -f api
if [ "\$1" = stop ]; then
    seq 1 $n | xargs -P 8 -I{} bash -c 'api POST "/containers/bench-c{}/stop"'
else
    seq 1 $n | xargs -P 8 -I{} bash -c 'api DELETE "/containers/bench-c{}?force=1"'
    api DELETE /networks/dstart-seq || true
fi
RAW
    chmod +x "$conf/raw-down.sh"
}

# CPU steal over the whole run (a VM's neighbours take it; it makes every number slower).
vmstat 5 > "$work/vmstat" &
vmstat_pid=$!

table=()
targets=()
t() { echo "$results/start-$1/$2.times"; }
med() { case_median "$(t "$1" "$2")"; }
row() { # label, n, case
    local m
    m=$(med "$2" "$3")
    [ -n "$m" ] || return 0
    table+=("| $1 | $2 | $(printf '%.3f' "$m") s | $(case_range "$(t "$2" "$3")") |")
}
# target label, value, "le"/"ge", bound: one row of the targets table.
target() {
    local ok
    [ -n "$2" ] || return 0
    if [ "$3" = le ]; then ok=$(echo "$2 <= $4" | bc -l); else ok=$(echo "$2 >= $4" | bc -l); fi
    targets+=("| $1 | $(printf '%.3f' "$2") | $([ "$3" = le ] && echo "≤" || echo "≥") $4 | $([ "$ok" = 1 ] && echo yes || echo NO) |")
}
ratio() { # n, case a, case b: median a / median b
    local a b
    a=$(med "$1" "$2"); b=$(med "$1" "$3")
    [ -n "$a" ] && [ -n "$b" ] && echo "$a / $b" | bc -l
}
# The case among "$@" with the smallest median.
best_of() {
    local n=$1 best="" bm="" c m
    shift
    for c in "$@"; do
        m=$(med "$n" "$c")
        [ -n "$m" ] || continue
        if [ -z "$bm" ] || (($(echo "$m < $bm" | bc -l))); then best=$c; bm=$m; fi
    done
    echo "$best"
}

sizes=("$@")
[ "${#sizes[@]}" -eq 0 ] && sizes=(10 30)

for n in "${sizes[@]}"; do
    write_configs "$n"
    conf=$work/conf-$n
    compose="docker-compose -p bench -f $conf/docker-compose.yml"
    start="clean_all; $D -c $conf -q run seq/start"
    cases_clear
    case_add raw-seq clean_all "cd $conf && ./raw.sh 1"
    for p in 2 3 4 5; do case_add "raw-par$p" clean_all "cd $conf && ./raw.sh $p"; done
    case_add dstart-seq clean_all "$D -c $conf -q run seq/start"
    for p in 2 3 4 5; do case_add "dstart-par$p" clean_all "$D -c $conf -q run par$p/start"; done
    case_add compose-up clean_all "$compose up -d"
    case_add dstart-noop "$start" "$D -c $conf -q run seq/start"
    case_add compose-noop "clean_all; $compose up -d" "$compose up -d"
    case_add dstart-stop "$start" "$D -c $conf -q run seq/stop"
    case_add dstart-cleanup "$start" "$D -c $conf -q run seq/cleanup"
    if [ -n "${BASELINE:-}" ]; then
        # The same cases with the previous binary; containers it left are started by $D's
        # `start` where a case needs them running (both write the same labels).
        B=$BASELINE
        case_add base-seq clean_all "$B -c $conf -q run seq/start"
        for p in 2 3 4 5; do case_add "base-par$p" clean_all "$B -c $conf -q run par$p/start"; done
        case_add base-noop "clean_all; $B -c $conf -q run seq/start" "$B -c $conf -q run seq/start"
        case_add base-stop "clean_all; $B -c $conf -q run seq/start" "$B -c $conf -q run seq/stop"
        case_add base-cleanup "clean_all; $B -c $conf -q run seq/start" "$B -c $conf -q run seq/cleanup"
    fi
    # The 20.10 engine now and then refuses to remove a network whose containers are gone ("has
    # active endpoints"); compose down then exits 1 after doing all its work. That run's time
    # counts (dstart warns and carries on in the same case).
    case_add compose-down "clean_all; $compose up -d" "$compose down || true"
    case_add raw-down "$start" "$conf/raw-down.sh down"
    case_add raw-stop "$start" "$conf/raw-down.sh stop"
    echo "== $n containers, $RUNS rounds" >&2
    clean_all
    rm -rf "$results/start-$n" # no times of an earlier run (CASES may leave cases out)
    cases_run "$RUNS" "$results/start-$n"
    clean_all

    best_raw=$(best_of "$n" raw-par2 raw-par3 raw-par4 raw-par5)
    best_dstart=$(best_of "$n" dstart-par2 dstart-par3 dstart-par4 dstart-par5)
    row "raw API, one after another" "$n" raw-seq
    for p in 2 3 4 5; do row "raw API, $p at a time" "$n" "raw-par$p"; done
    row "dstart start, sequential orders" "$n" dstart-seq
    for p in 2 3 4 5; do row "dstart start, parallel block (max $p)" "$n" "dstart-par$p"; done
    row "docker-compose up -d" "$n" compose-up
    row "dstart start, nothing to do" "$n" dstart-noop
    row "docker-compose up -d, nothing to do" "$n" compose-noop
    row "dstart stop (generated)" "$n" dstart-stop
    row "dstart cleanup (generated)" "$n" dstart-cleanup
    row "docker-compose down" "$n" compose-down
    row "raw API teardown: force-remove 8 at a time, then the network" "$n" raw-down
    row "raw API stop, 8 at a time" "$n" raw-stop
    target "$n: dstart sequential / raw one after another" "$(ratio "$n" dstart-seq raw-seq)" le 1.05
    if [ -n "$best_raw" ] && [ -n "$best_dstart" ]; then
        target "$n: dstart parallel (best, ${best_dstart#dstart-}) / raw parallel (best, ${best_raw#raw-})" \
            "$(ratio "$n" "$best_dstart" "$best_raw")" le 1.1
        target "$n: docker-compose up -d / dstart parallel (best, ${best_dstart#dstart-})" \
            "$(ratio "$n" compose-up "$best_dstart")" ge 1.5
    fi
    target "$n: dstart no-op start, seconds" "$(med "$n" dstart-noop)" le 0.06
    target "$n: docker-compose down / dstart stop" "$(ratio "$n" compose-down dstart-stop)" ge 2
    target "$n: docker-compose down / dstart cleanup" "$(ratio "$n" compose-down dstart-cleanup)" ge 2
    target "$n: (for information) docker-compose down / raw API teardown" "$(ratio "$n" compose-down raw-down)" ge 2
    target "$n: (for information) docker-compose down / raw API stop" "$(ratio "$n" compose-down raw-stop)" ge 2
    target "$n: (for information) dstart stop / raw API stop" "$(ratio "$n" dstart-stop raw-stop)" le 1.1
    target "$n: (for information) docker-compose up -d / raw parallel (best)" "$(ratio "$n" compose-up "$best_raw")" ge 1.5
    if [ -n "${BASELINE:-}" ]; then
        for c in seq par2 par3 par4 par5 noop stop cleanup; do
            row "baseline ($BASELINE): $c" "$n" "base-$c"
            target "$n: dstart $c / baseline $c" "$(ratio "$n" "dstart-$c" "base-$c")" le 1.05
        done
    fi
done

# 200 units: list and print-unit (no engine involved; hyperfine's warm-up and statistics).
if [ -z "${CASES:-}" ] || [[ list =~ $CASES ]]; then
    big=$work/conf-200
    mkdir -p "$big/environments"
    printf 'PREFIX: bench\nTAG: "1.0"\n' > "$big/environments/default.yaml"
    for u in $(seq 1 200); do
        mkdir -p "$big/units/unit-$u"
        {
            for c in 1 2 3; do
                printf 'u%s-c%s:\n  image: "{{ PREFIX }}/img:{{ TAG }}"\n  command: ["sleep", "3600"]\n  ports: ["80"]\n  volumes: ["u%s-vol:/data"]\n' "$u" "$c" "$u"
            done
            echo '---'
            for c in 1 2 3; do printf -- '- u%s-c%s: {command: start}\n' "$u" "$c"; done
        } > "$big/units/unit-$u/start.yaml"
    done
    hf() { # name, then hyperfine arguments
        local name=$1
        shift
        hyperfine --shell none --runs 30 --warmup 3 --style none --export-json "$results/$name.json" "$@" >/dev/null
    }
    hmed() { jq -r '.results[0].median' "$results/$1.json"; }
    hf dstart-list-200 "$D -c $big list"
    hf dstart-print-200 "$D -c $big run --print-unit unit-137/start"
    hf dstart-print-generated-200 "$D -c $big run --print-unit unit-137/purge"
    write_configs 10
    hf compose-config-10 "docker-compose -f $work/conf-10/docker-compose.yml config"
    table+=("| dstart list | 200 units | $(printf '%.4f' "$(hmed dstart-list-200)") s | |")
    table+=("| dstart run --print-unit unit-137/start | 200 units | $(printf '%.4f' "$(hmed dstart-print-200)") s | |")
    table+=("| dstart run --print-unit unit-137/purge | 200 units | $(printf '%.4f' "$(hmed dstart-print-generated-200)") s | |")
    table+=("| docker-compose config | 10 services | $(printf '%.4f' "$(hmed compose-config-10)") s | |")
    target "dstart list, 200 units, seconds" "$(hmed dstart-list-200)" le 0.02
    target "dstart run --print-unit, 200 units, seconds" "$(hmed dstart-print-200)" le 0.02
fi
kill "$vmstat_pid" 2>/dev/null || true

echo "| what | containers | median | range |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${table[@]}"
echo
echo "| target | value | goal | met |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${targets[@]}"
echo
# vmstat's columns: ... us sy id wa st; the first line is the average since boot.
awk 'NR > 3 { st += $NF; n++ } END { if (n) printf "CPU steal during the run: %.1f %% on average (vmstat, %d samples)\n", st / n, n }' "$work/vmstat"
