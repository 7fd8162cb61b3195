#!/usr/bin/env bash
# Benchmark of issue 16, in one run (the cases interleave, see bench/lib.sh):
#  (a) deciding "unchanged" for a build context of FILES files / MB megabytes (default 5,000 /
#      100): `dstart build` of the unit, beside `docker build` of the same unchanged context
#      (which sends the whole context to find its cache). Target: under 100 ms and at least
#      10x faster than `docker build`. Also measured without the remembered file digests
#      (an empty XDG_CACHE_HOME each time), i.e. reading and hashing every byte.
#  (b) `dstart build` with nothing to do on a configuration of 10 images, beside
#      `docker-compose build` (1.29) of the same 10. Target: at least 5x faster.
#
# usage: bench/build.sh
#   RUNS=11       rounds
#   FILES=5000 MB=100
#   D=PATH        the dstart binary (default: target/release/dstart, built here)
# Writes the times under bench/results/build/ and prints a Markdown table of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
RUNS=${RUNS:-11}
FILES=${FILES:-5000}
MB=${MB:-100}
. bench/lib.sh
need docker-compose bc
D=$(release_binary)
IMAGE=dstart-bench/busybox:latest
export D IMAGE
ensure_busybox_image "$IMAGE"

work=$(mktemp -d /tmp/dstart-bench-build.XXXXXX)
# dstart's remembered file digests stay in the scratch directory.
export XDG_CACHE_HOME=$work/cache
results=$root/bench/results/build
conf=$work/conf
# Every image of this benchmark (dstart's, docker build's, compose's) carries this label.
# An image that is another's parent goes in a later pass.
clean() {
    for _ in 1 2 3; do
        docker images -q --filter 'label=dstart.bench=build' | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
    done
}
trap 'clean; rm -rf "$work"' EXIT
clean

mkdir -p "$conf/environments" "$conf/units/benchctx" "$conf/units/benchten"
: > "$conf/environments/default.yaml"

# (a) FILES files of MB/FILES bytes each (random, so that nothing is cheaper than it looks), in
# 50 directories.
ctx=$conf/services/ctx
size=$(( MB * 1000000 / FILES ))
mkdir -p "$ctx"
head -c $(( MB * 1000000 )) /dev/urandom | split -a 4 -d -b "$size" - "$ctx/f"
i=0
for f in "$ctx"/f*; do
    d=$ctx/d$(( i % 50 )); mkdir -p "$d"; mv "$f" "$d/"; i=$((i + 1))
done
printf 'FROM %s\nLABEL dstart.bench=build\nCOPY . /ctx\n' "$IMAGE" > "$ctx/Dockerfile"
printf "ctx:\n  build: {path: services/ctx, tag: 'dstart-bench/b-ctx:1'}\n---\n- ctx: {command: build}\n" \
    > "$conf/units/benchctx/build.yaml"
echo "context: $(find "$ctx" -type f | wc -l) files, $(du -sb "$ctx" | cut -f1) bytes" >&2

# (b) ten small images in one unit; compose builds the same directories under other names.
{
    for i in $(seq 1 10); do
        mkdir -p "$conf/services/s$i"
        printf 'FROM %s\nLABEL dstart.bench=build\nCOPY app.txt /app.txt\n' "$IMAGE" > "$conf/services/s$i/Dockerfile"
        echo "app $i" > "$conf/services/s$i/app.txt"
        printf "s%s:\n  build: {path: services/s%s, tag: 'dstart-bench/b-s%s:1'}\n" "$i" "$i" "$i"
    done
    echo '---'
    for i in $(seq 1 10); do printf -- '- s%s: {command: build}\n' "$i"; done
} > "$conf/units/benchten/build.yaml"
{
    echo 'version: "2.4"'
    echo 'services:'
    for i in $(seq 1 10); do
        printf '  s%s:\n    build: %s\n    image: dstart-bench/b-compose-s%s:1\n' "$i" "$conf/services/s$i" "$i"
    done
} > "$work/docker-compose.yml"

# Everything built once, so that every case below has nothing to do.
"$D" -q -c "$conf" build
docker build -q -t dstart-bench/b-docker-ctx:1 "$ctx" >/dev/null
docker-compose -p benchbuild -f "$work/docker-compose.yml" build -q >/dev/null 2>&1

# Sanity: nothing to do means no image built.
"$D" -c "$conf" build benchctx | grep -q '^unchanged dstart-bench/b-ctx:1 ('
[ "$("$D" -c "$conf" build benchten | grep -c '^unchanged ')" = 10 ]

cases_clear
case_add dstart-unchanged-ctx true "'$D' -q -c '$conf' build benchctx"
# The same without the remembered digests (docs/units.md): every byte read and hashed.
case_add dstart-unchanged-ctx-cold "rm -rf '$work/cold'" "XDG_CACHE_HOME='$work/cold' '$D' -q -c '$conf' build benchctx"
case_add docker-build-ctx true "docker build -q -t dstart-bench/b-docker-ctx:1 '$ctx'"
case_add dstart-build-10 true "'$D' -q -c '$conf' build benchten"
case_add compose-build-10 true "docker-compose -p benchbuild -f '$work/docker-compose.yml' build -q"
cases_run "$RUNS" "$results"

echo "| case | median | range |"
echo "|---|---|---|"
for c in dstart-unchanged-ctx dstart-unchanged-ctx-cold docker-build-ctx dstart-build-10 compose-build-10; do
    m=$(case_median "$results/$c.times")
    printf '| %s | %.0f ms | %s s |\n' "$c" "$(echo "$m * 1000" | bc -l)" "$(case_range "$results/$c.times")"
done
ratio() { echo "scale=1; $(case_median "$results/$2.times") / $(case_median "$results/$1.times")" | bc -l; }
echo
echo "(a) docker build / dstart: $(ratio dstart-unchanged-ctx docker-build-ctx)x (without the remembered digests: $(ratio dstart-unchanged-ctx-cold docker-build-ctx)x)"
echo "(b) docker-compose build / dstart build: $(ratio dstart-build-10 compose-build-10)x"
