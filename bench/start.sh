#!/usr/bin/env bash
# Benchmarks of issue 3, side by side in one run: N busybox containers on one network with one
# named volume, started and torn down by
#   - the raw engine API (curl on the socket), one after another and P at a time,
#   - dstart (sequential orders, a `parallel:` block, a no-op second start, stop, cleanup),
#   - docker-compose 1.29 (up -d, a no-op up -d, down),
# plus `dstart list` and `dstart run --print-unit` on a configuration with 200 units.
#
# usage: bench/start.sh [N...]        (default: 10 30)
#   RUNS=10       hyperfine runs per command
# Writes hyperfine JSON under bench/results/ and prints Markdown tables: the medians, the
# issue's targets (met or not) and the CPU steal during the run.
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
RUNS=${RUNS:-10}
IMAGE=dstart-bench/busybox:latest
SOCK=/var/run/docker.sock
API=$(docker version --format '{{.Server.APIVersion}}')

# The base image, from the host's static busybox (no registry can be reached).
. bench/lib.sh
ensure_busybox_image "$IMAGE"

work=$(mktemp -d /tmp/dstart-bench.XXXXXX)
results=$root/bench/results
mkdir -p "$results"
trap 'clean_all; [ -n "${vmstat_pid:-}" ] && kill "$vmstat_pid" 2>/dev/null; rm -rf "$work"' EXIT

clean_all() {
    local n v
    docker ps -aq --filter name=bench- | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    docker ps -aq --filter label=com.docker.compose.project=bench | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    for n in dstart-seq dstart-par bench-raw bench_default; do docker network rm "$n" >/dev/null 2>&1 || true; done
    for v in bench-vol bench_vol; do docker volume rm -f "$v" >/dev/null 2>&1 || true; done
}
export -f clean_all

# The containers: `sleep` under the engine's init so that SIGTERM stops them at once (else
# docker-compose's `down` would wait its 10 s stop timeout on every container).
write_configs() {
    local n=$1 conf=$work/conf-$1
    mkdir -p "$conf/environments" "$conf/units/seq" "$conf/units/par"
    : > "$conf/environments/default.yaml"
    {
        for i in $(seq 1 "$n"); do
            printf 'bench-c%s:\n  image: %s\n  command: ["sleep", "3600"]\n  volumes: ["bench-vol:/data"]\n  startup: {init: true}\n' "$i" "$IMAGE"
        done
        echo '---'
        for i in $(seq 1 "$n"); do printf -- '- bench-c%s: {command: start}\n' "$i"; done
    } > "$conf/units/seq/start.yaml"
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
api() { curl -sf --unix-socket $SOCK -X "\$1" -H 'Content-Type: application/json' "http://localhost/v$API\$2" \${3:+-d "\$3"} >/dev/null; }
export -f api
api POST /networks/create '{"Name": "bench-raw", "Driver": "bridge"}'
api POST /volumes/create '{"Name": "bench-vol"}'
one() {
    api POST "/containers/create?name=bench-c\$1" '{"Image": "$IMAGE", "Cmd": ["sleep", "3600"], "HostConfig": {"Binds": ["bench-vol:/data"], "NetworkMode": "bench-raw", "Init": true}, "NetworkingConfig": {"EndpointsConfig": {"bench-raw": {"Aliases": ["bench-c'"\$1"'"]}}}}'
    api POST "/containers/bench-c\$1/start"
}
export -f one
seq 1 $n | xargs -P "\$1" -I{} bash -c 'one {}'
RAW
    chmod +x "$conf/raw.sh"
}

hf() { # name, then hyperfine arguments
    local name=$1; shift
    hyperfine --shell bash --runs "$RUNS" --style none --export-json "$results/$name.json" "$@" >/dev/null
}

median() { jq -r '.results[0].median' "$results/$1.json"; }

table=()
targets=()
# target label, value, "le"/"ge", bound: one row of the targets table.
target() {
    local ok
    if [ "$3" = le ]; then ok=$(echo "$2 <= $4" | bc -l); else ok=$(echo "$2 >= $4" | bc -l); fi
    targets+=("| $1 | $(printf '%.3f' "$2") | $([ "$3" = le ] && echo "≤" || echo "≥") $4 | $([ "$ok" = 1 ] && echo yes || echo NO) |")
}
ratio() { echo "$(median "$1") / $(median "$2")" | bc -l; }

# CPU steal over the whole run (a VM's neighbours take it; it makes every number slower).
vmstat 5 > "$work/vmstat" &
vmstat_pid=$!
row() { table+=("| $1 | $2 | $(printf '%.3f' "$(median "$3")") s |"); }

sizes=("$@")
[ "${#sizes[@]}" -eq 0 ] && sizes=(10 30)

for n in "${sizes[@]}"; do
    write_configs "$n"
    conf=$work/conf-$n
    cd "$conf"
    echo "== $n containers" >&2
    clean_all
    hf "raw-seq-$n" --prepare clean_all "./raw.sh 1"
    best=""
    for p in 2 3 4 5; do
        hf "raw-par$p-$n" --prepare clean_all "./raw.sh $p"
        if [ -z "$best" ] || (( $(echo "$(median "raw-par$p-$n") < $(median "$best")" | bc -l) )); then best="raw-par$p-$n"; fi
    done
    # dstart's parallel block gets the bound that was best for the raw API in this run.
    p_best=${best#raw-par}; p_best=${p_best%%-*}
    {
        echo 'import: seq/start'
        echo '---'
        echo '- parallel:'
        echo "    max: $p_best"
        echo '    orders:'
        for i in $(seq 1 "$n"); do printf -- '      - bench-c%s: {command: start}\n' "$i"; done
    } > "$conf/units/par/start.yaml"
    hf "dstart-seq-$n" --prepare clean_all "$D -c $conf -q run seq/start"
    hf "dstart-par-$n" --prepare clean_all "$D -c $conf -q run par/start"
    clean_all; $D -c "$conf" -q run seq/start
    hf "dstart-noop-$n" "$D -c $conf -q run seq/start"
    hf "dstart-stop-$n" --prepare "$D -c $conf -q run seq/start" "$D -c $conf -q run seq/stop"
    hf "dstart-cleanup-$n" --prepare "$D -c $conf -q run seq/start" "$D -c $conf -q run seq/cleanup"
    clean_all
    hf "compose-up-$n" --prepare clean_all "docker-compose -p bench -f $conf/docker-compose.yml up -d --quiet-pull"
    hf "compose-noop-$n" "docker-compose -p bench -f $conf/docker-compose.yml up -d"
    hf "compose-down-$n" --prepare "docker-compose -p bench -f $conf/docker-compose.yml up -d" "docker-compose -p bench -f $conf/docker-compose.yml down"
    clean_all
    cd "$root"
    row "raw API, one after another" "$n" "raw-seq-$n"
    row "raw API, best of 2–5 at a time ($p_best)" "$n" "$best"
    row "dstart start, sequential orders" "$n" "dstart-seq-$n"
    row "dstart start, parallel block (max $p_best)" "$n" "dstart-par-$n"
    row "docker-compose up -d" "$n" "compose-up-$n"
    row "dstart start, nothing to do" "$n" "dstart-noop-$n"
    row "docker-compose up -d, nothing to do" "$n" "compose-noop-$n"
    row "dstart stop (generated)" "$n" "dstart-stop-$n"
    row "dstart cleanup (generated)" "$n" "dstart-cleanup-$n"
    row "docker-compose down" "$n" "compose-down-$n"
    target "$n: dstart sequential / raw one after another" "$(ratio "dstart-seq-$n" "raw-seq-$n")" le 1.05
    target "$n: dstart parallel / best raw parallel" "$(ratio "dstart-par-$n" "$best")" le 1.1
    target "$n: docker-compose up -d / dstart parallel" "$(ratio "compose-up-$n" "dstart-par-$n")" ge 1.5
    target "$n: dstart no-op start, seconds" "$(median "dstart-noop-$n")" le 0.06
    target "$n: docker-compose down / dstart stop" "$(ratio "compose-down-$n" "dstart-stop-$n")" ge 2
    target "$n: docker-compose down / dstart cleanup" "$(ratio "compose-down-$n" "dstart-cleanup-$n")" ge 2
    jq -n --arg n "$n" --arg best "$best" '{n: $n, best_raw_parallel: $best}' > "$results/best-$n.json"
done

# 200 units: list and print-unit (no engine involved).
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
hf "dstart-list-200" --warmup 3 "$D -c $big list"
hf "dstart-print-200" --warmup 3 "$D -c $big run --print-unit unit-137/start"
hf "dstart-print-generated-200" --warmup 3 "$D -c $big run --print-unit unit-137/purge"
hf "compose-config-10" --warmup 1 "docker-compose -f $work/conf-${sizes[0]}/docker-compose.yml config"
table+=("| dstart list | 200 units | $(printf '%.4f' "$(median dstart-list-200)") s |")
table+=("| dstart run --print-unit unit-137/start | 200 units | $(printf '%.4f' "$(median dstart-print-200)") s |")
table+=("| dstart run --print-unit unit-137/purge | 200 units | $(printf '%.4f' "$(median dstart-print-generated-200)") s |")
table+=("| docker-compose config | ${sizes[0]} services | $(printf '%.4f' "$(median compose-config-10)") s |")

target "dstart list, 200 units, seconds" "$(median dstart-list-200)" le 0.02
target "dstart run --print-unit, 200 units, seconds" "$(median dstart-print-200)" le 0.02
kill "$vmstat_pid" 2>/dev/null || true

echo "| what | containers | median |"
echo "| --- | --- | --- |"
printf '%s\n' "${table[@]}"
echo
echo "| target | value | goal | met |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${targets[@]}"
echo
# vmstat's columns: ... us sy id wa st; the first line is the average since boot.
awk 'NR > 3 { st += $NF; n++ } END { if (n) printf "CPU steal during the run: %.1f %% on average (vmstat, %d samples)\n", st / n, n }' "$work/vmstat"
