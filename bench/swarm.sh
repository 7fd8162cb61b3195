#!/usr/bin/env bash
# Benchmark of issue 20, side by side in one run on a one-node swarm: N services (busybox
# `sleep`, one replica each) deployed and waited for until every task runs, by
#   - dstart in swarm mode (`run sw/start`: N start orders, no `ready:`), then the wait below,
#   - `docker stack deploy` of the Compose file `dstart export sw/start` writes of the same unit,
#     then the same wait,
# and a no-op `dstart run sw/start` on the deployed services (target: under 100 ms).
# The wait polls `docker service ls` every 50 ms until every service of the case shows 1/1.
# No registry is asked (none can be reached here): dstart runs the local image by its ID, the
# stack by its tag with `--resolve-image never`.
#
# usage: bench/swarm.sh [N]            (default: 10)
#   RUNS=5        rounds: every case runs once per round, the rounds interleave the cases
#   D=BIN         the dstart binary (default: the release build, built when missing)
# Takes the machine's swarm lock (/tmp/dstart-test-swarm.lock, as the tests do), makes the
# engine a one-node swarm when it is not in one, and leaves it again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
for p in jq bc flock; do
    command -v "$p" >/dev/null || { echo "$0: needs $p" >&2; exit 2; }
done
D=${D:-${CARGO_TARGET_DIR:-$root/target}/release/dstart}
[ -x "$D" ] || cargo build --release --locked -q
N=${1:-10}
RUNS=${RUNS:-5}
IMAGE=dstart-bench/busybox:latest
. bench/lib.sh
ensure_busybox_image "$IMAGE"

exec 9>/tmp/dstart-test-swarm.lock
flock 9
initialized=0
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    initialized=1
fi
work=$(mktemp -d /tmp/dstart-bench-swarm.XXXXXX)
results=$root/bench/results/swarm-$N
mkdir -p "$results"
export D N work

# Removes both cases' services, waits until their containers are gone, then the unit network
# (both use `dstart-sw`: the export declares the unit network under its name).
clean_all() {
    local i
    docker service ls -q --filter name=benchsw- | xargs -r docker service rm >/dev/null
    docker service ls -q --filter name=benchstack_ | xargs -r docker service rm >/dev/null
    for i in $(seq 1 600); do
        [ -z "$(docker ps -aq --filter name=benchsw- --filter name=benchstack_)" ] && break
        sleep 0.1
    done
    for i in $(seq 1 100); do
        docker network rm dstart-sw >/dev/null 2>&1 || true
        docker network inspect dstart-sw >/dev/null 2>&1 || break
        sleep 0.1
    done
}
cleanup() {
    clean_all || true
    rm -rf "$work"
    if [ "$initialized" = 1 ]; then docker swarm leave --force >/dev/null || true; fi
}
trap cleanup EXIT
export -f clean_all

# Waits until the N services whose names start with $1 each run their one task.
wait_all() {
    while :; do
        local ok
        ok=$(docker service ls --filter "name=$1" --format '{{.Replicas}}' | grep -c '^1/1' || true)
        [ "$ok" -ge "$N" ] && return 0
        sleep 0.05
    done
}
export -f wait_all

conf=$work/conf
mkdir -p "$conf/environments" "$conf/units/sw"
echo 'DSTART_ORCHESTRATOR: swarm' > "$conf/environments/default.yaml"
{
    for i in $(seq 1 "$N"); do
        printf 'benchsw-s%s:\n  image: %s\n  command: ["sleep", "3600"]\n  stop_timeout: 1\n' "$i" "$IMAGE"
    done
    echo '---'
    for i in $(seq 1 "$N"); do printf -- '- benchsw-s%s: {command: start}\n' "$i"; done
} > "$conf/units/sw/start.yaml"
# The same services as the Compose file dstart writes of them.
"$D" -q -c "$conf" export -o "$work/compose.yml" sw/start
export conf

clean_all
case_add dstart-deploy 'clean_all' \
    '"$D" -q -c "$conf" run sw/start && wait_all benchsw-'
case_add stack-deploy 'clean_all' \
    'docker stack deploy --resolve-image never -c "$work/compose.yml" benchstack >/dev/null && wait_all benchstack_'
case_add dstart-noop \
    'docker service ls -q --filter name=benchsw- | grep -q . || { clean_all; "$D" -q -c "$conf" run sw/start; }; wait_all benchsw-' \
    '"$D" -q -c "$conf" run sw/start'
echo "bench/swarm.sh: $N services, $RUNS rounds" >&2
cases_run "$RUNS" "$results"

m() { case_median "$results/$1.times"; }
dstart=$(m dstart-deploy)
stack=$(m stack-deploy)
noop=$(m dstart-noop)
ratio=$(echo "$dstart / $stack" | bc -l)
echo
echo "| case ($N services, $RUNS rounds) | median (s) | range (s) |"
echo "|---|---|---|"
for c in dstart-deploy stack-deploy dstart-noop; do
    printf '| %s | %.3f | %s |\n' "$c" "$(m "$c")" "$(case_range "$results/$c.times")"
done
echo
printf 'dstart / docker stack deploy: %.2fx (target: within 1.10x) — %s\n' "$ratio" \
    "$(if (( $(echo "$ratio <= 1.10" | bc -l) )); then echo met; else echo NOT met; fi)"
printf 'no-op start: %.0f ms (target: under 100 ms) — %s\n' "$(echo "$noop * 1000" | bc -l)" \
    "$(if (( $(echo "$noop < 0.1" | bc -l) )); then echo met; else echo NOT met; fi)"
