#!/usr/bin/env bash
# Benchmark of issue 15, side by side in one run: pull and push of a SIZE MB image (the base
# busybox plus LAYERS layers of random bytes) to and from a local registry (Debian's
# `docker-registry` on 127.0.0.1 with htpasswd auth, logged in with `docker login` into a
# Docker CLI directory of the benchmark's own) by
#   - the Docker CLI: `docker pull`, `docker push`;
#   - dstart: a unit whose `build` order pulls the image (its container has no build spec),
#     and one whose `push` order pushes it; both send the credentials of that directory.
# Every pull starts with the image removed from the engine (the busybox layer stays, shared
# with the base image); every push starts with an empty registry (restarted on a new storage
# directory), so that every layer is uploaded.
#
# usage: bench/registry.sh
#   RUNS=5        rounds: every case runs once per round, the rounds interleave the cases
#   SIZE=200      MB of random layers
#   LAYERS=4      how many layers they are split into
#   CASES=REGEX   only the cases whose name matches (e.g. 'pull')
# Writes the times under bench/results/registry-SIZE/ and prints Markdown tables: medians,
# the ratio of the medians and the median of the per-round ratios (each round runs both
# commands back to back, so the latter cancels the machine's drift), and the CPU time of the
# client processes themselves (GNU time's user + system), which is all a client adds: the
# engine does the pulling and pushing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup
export DEBIAN_FRONTEND=noninteractive
for p in jq bc; do
    command -v "$p" >/dev/null || { apt-get install -y -qq "$p" >/dev/null; }
done
cargo build --release --locked -q
D=${CARGO_TARGET_DIR:-$root/target}/release/dstart
RUNS=${RUNS:-5}
SIZE=${SIZE:-200}
LAYERS=${LAYERS:-4}
BASE=dstart-bench/busybox:latest
USER_NAME=bench
PASSWORD=bench-$$-$RANDOM

. bench/lib.sh
ensure_busybox_image "$BASE"

work=$(mktemp -d /tmp/dstart-bench-registry.XXXXXX)
results=$root/bench/results/registry-$SIZE
rm -rf "$results"
mkdir -p "$results"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
IMAGE=$REG/bench/random:1
export DOCKER_CONFIG=$work/docker-config
mkdir -p "$DOCKER_CONFIG"
export D REG IMAGE work

# The registry: a new storage directory each time it starts.
htpasswd -B -b -c "$work/htpasswd" "$USER_NAME" "$PASSWORD" 2>/dev/null
registry_start() {
    rm -rf "$work/data"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\nauth:\n  htpasswd:\n    realm: bench\n    path: %s\n' \
        "$work/data" "$REG" "$work/htpasswd" > "$work/registry.yml"
    docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
    echo $! > "$work/registry.pid"
    for _ in $(seq 1 100); do
        (echo > "/dev/tcp/127.0.0.1/${REG#*:}") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the registry did not listen" >&2
    return 1
}
registry_stop() {
    [ -f "$work/registry.pid" ] || return 0
    kill "$(cat "$work/registry.pid")" 2>/dev/null || true
    while kill -0 "$(cat "$work/registry.pid")" 2>/dev/null; do sleep 0.05; done
    rm -f "$work/registry.pid"
}
export -f registry_start registry_stop
export USER_NAME PASSWORD

clean_all() {
    registry_stop
    docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap clean_all EXIT
trap 'exit 130' INT TERM

registry_start
echo "$PASSWORD" | docker login --username "$USER_NAME" --password-stdin "$REG" >/dev/null

# The image: LAYERS layers of SIZE/LAYERS MB of random bytes on the base image.
ctx=$work/ctx
mkdir -p "$ctx"
{
    echo "FROM $BASE"
    for i in $(seq 1 "$LAYERS"); do
        echo "RUN head -c $(( SIZE * 1000000 / LAYERS )) /dev/urandom > /layer-$i"
    done
} > "$ctx/Dockerfile"
docker build -q -t "$IMAGE" "$ctx" >/dev/null
docker push -q "$IMAGE" >/dev/null

# dstart's units: pull (a `build` order of a container without a build spec) and push.
conf=$work/conf
mkdir -p "$conf/environments" "$conf/units/bench"
: > "$conf/environments/default.yaml"
printf 'bench-registry:\n  image: %s\n---\n- bench-registry: {command: build}\n' "$IMAGE" > "$conf/units/bench/pull.yaml"
printf 'bench-registry:\n  image: %s\n---\n- bench-registry: {command: push}\n' "$IMAGE" > "$conf/units/bench/push.yaml"
export conf

# Before a pull: the image is not on the engine (but in the registry). Before a push: the image
# is on the engine (pulled back if a pull case removed it), the registry is empty.
# (Single quotes: the variables are expanded by the `bash -c` that runs each case.)
# shellcheck disable=SC2016
prep_pull='docker rmi -f "$IMAGE" >/dev/null; sync'
# shellcheck disable=SC2016
prep_push='docker image inspect "$IMAGE" >/dev/null 2>&1 || docker pull -q "$IMAGE" >/dev/null; registry_stop; registry_start; sync'
cpu() { echo "/usr/bin/time -a -o $work/cpu-$1 -f '%U %S'"; }
cases_clear
case_add docker-pull "$prep_pull" "$(cpu docker-pull) docker pull -q \"\$IMAGE\""
case_add dstart-pull "$prep_pull" "$(cpu dstart-pull) \"\$D\" -q -c \"\$conf\" run bench/pull"
case_add docker-push "$prep_push" "$(cpu docker-push) docker push -q \"\$IMAGE\""
case_add dstart-push "$prep_push" "$(cpu dstart-push) \"\$D\" -q -c \"\$conf\" run bench/push"
echo "== load: $(uptime)" >&2
echo "== $SIZE MB in $LAYERS layers, $RUNS rounds" >&2
cases_run "$RUNS" "$results"

median() { case_median "$results/$1.times"; }
# The median CPU seconds (user + system) of a case's client process.
cpu_median() {
    [ -s "$work/cpu-$1" ] || return 0
    awk '{ print $1 + $2 }' "$work/cpu-$1" > "$work/cpu-$1.sum"
    case_median "$work/cpu-$1.sum"
}
row() { # label, name
    local m
    m=$(median "$2")
    [ -n "$m" ] || return 0
    printf '| %s | %.2f s | %.0f MB/s | %s | %.3f s |\n' "$1" "$m" "$(echo "$SIZE / $m" | bc -l)" \
        "$(case_range "$results/$2.times")" "$(cpu_median "$2")"
}
echo
echo "Image: $SIZE MB of random bytes in $LAYERS layers on the busybox base; registry on $REG with htpasswd auth; $RUNS rounds; MB = 10^6 bytes."
echo
echo "| what | median | throughput | range (s) | client CPU (median) |"
echo "| --- | --- | --- | --- | --- |"
row "docker pull" docker-pull
row "dstart pull (\`build\` order of an image-only container)" dstart-pull
row "docker push" docker-push
row "dstart push (\`push\` order)" dstart-push
echo
echo "| target | ratio of medians | met | median of per-round ratios |"
echo "| --- | --- | --- | --- |"
ratio() { # label, dstart, baseline
    local r p
    [ -n "$(median "$2")" ] && [ -n "$(median "$3")" ] || return 0
    r=$(echo "$(median "$2") / $(median "$3")" | bc -l)
    paste "$results/$2.times" "$results/$3.times" | awk '{ print $1 / $2 }' > "$work/ratio-$2"
    p=$(case_median "$work/ratio-$2")
    printf '| %s ≤ 1.05x | %.3fx | %s | %.3fx |\n' "$1" "$r" "$( (( $(echo "$r <= 1.05" | bc -l) )) && echo yes || echo NO)" "$p"
}
ratio "dstart pull / docker pull" dstart-pull docker-pull
ratio "dstart push / docker push" dstart-push docker-push
