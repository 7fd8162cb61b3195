#!/usr/bin/env bash
# Benchmark of issue 14: `dstart run --plan` and `dstart status` of a unit of N running
# containers (default 30), beside `docker-compose ps` (1.29) on the same containers, in the same
# run (the cases interleave, see bench/lib.sh). Target: under 150 ms each.
#
# usage: bench/plan.sh [N]
#   RUNS=15       rounds
#   D=PATH        the dstart binary (default: target/release/dstart, built here)
# Writes the times under bench/results/plan-N/ and prints a Markdown table of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${1:-30}
RUNS=${RUNS:-15}
for p in docker-compose bc; do
    command -v "$p" >/dev/null || { echo "$0: needs $p" >&2; exit 1; }
done
if [ -z "${D:-}" ]; then
    cargo build --release --locked -q
    D=${CARGO_TARGET_DIR:-$root/target}/release/dstart
fi
IMAGE=dstart-bench/busybox:latest
export D IMAGE

. bench/lib.sh
ensure_busybox_image "$IMAGE"

work=$(mktemp -d /tmp/dstart-bench-plan.XXXXXX)
results=$root/bench/results/plan-$n
conf=$work/conf
clean() {
    docker ps -aq --filter label=dstart.unit=benchplan | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    docker network rm dstart-benchplan >/dev/null 2>&1 || true
}
trap 'clean; rm -rf "$work"' EXIT

# N containers with an env, a label and a published port each, started by dstart; compose
# describes the same containers (container_name), so `docker-compose ps` lists them.
mkdir -p "$conf/environments" "$conf/units/benchplan"
: > "$conf/environments/default.yaml"
{
    for i in $(seq 1 "$n"); do
        printf 'bench-p%s:\n  image: %s\n  command: ["sleep", "3600"]\n  env: {GREETING: hello-%s}\n  ports: ["127.0.0.1::80"]\n  startup: {init: true}\n' "$i" "$IMAGE" "$i"
    done
    echo '---'
    for i in $(seq 1 "$n"); do printf -- '- bench-p%s: {command: start}\n' "$i"; done
} > "$conf/units/benchplan/start.yaml"
{
    echo 'version: "2.4"'
    echo 'services:'
    for i in $(seq 1 "$n"); do
        printf '  bench-p%s:\n    image: %s\n    container_name: bench-p%s\n    command: ["sleep", "3600"]\n    init: true\n' "$i" "$IMAGE" "$i"
    done
} > "$work/docker-compose.yml"

clean
"$D" -q -c "$conf" run benchplan/start
# Compose finds its containers by its labels; dstart's carry none, so `ps` would list nothing.
# It is measured on its own containers: the same N, made by `up -d` under another name.
sed 's/bench-p/bench-cp/g' "$work/docker-compose.yml" > "$work/compose.yml"
docker-compose -p benchplan -f "$work/compose.yml" up -d >/dev/null 2>&1
trap 'clean; docker-compose -p benchplan -f "$work/compose.yml" down -t 0 >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# Sanity: the plan keeps every container, status lists them all.
[ "$("$D" -c "$conf" run --plan benchplan/start | grep -c '^keep ')" = "$n" ]
[ "$("$D" -c "$conf" status benchplan | tail -n +2 | grep -c running)" = "$n" ]
[ "$(docker-compose -p benchplan -f "$work/compose.yml" ps -q | wc -l)" = "$n" ]

cases_clear
case_add plan true "'$D' -c '$conf' run --plan benchplan/start"
case_add plan-json true "'$D' -c '$conf' run --plan --format json benchplan/start"
case_add status true "'$D' -c '$conf' status benchplan"
case_add compose-ps true "docker-compose -p benchplan -f '$work/compose.yml' ps"
cases_run "$RUNS" "$results"

echo "| case ($n containers) | median | range |"
echo "|---|---|---|"
for c in plan plan-json status compose-ps; do
    m=$(case_median "$results/$c.times")
    printf '| %s | %.0f ms | %s s |\n' "$c" "$(echo "$m * 1000" | bc -l)" "$(case_range "$results/$c.times")"
done
