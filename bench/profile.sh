#!/usr/bin/env bash
# Where the CPU goes in the cases whose targets are not met (docs/performance.md), measured
# system-wide with `perf record -a` and /proc/stat, so that the limit can be checked rather than
# taken on trust.
#
# usage: bench/profile.sh start [N] [P]   N busybox containers (default 10) as in bench/start.sh
#                                         (sleep under the engine's init, one user-defined
#                                         network, one named volume) created, then started P at
#                                         a time (default 5), stopped and removed 8 at a time,
#                                         and force-removed 8 at a time (the raw API's fastest
#                                         teardown), with curl on the engine's socket
#        bench/profile.sh helper [ROUNDS] the 1 GiB volume of bench/backup.sh backed up by
#                                         busybox `tar` in `docker run` into a bind mount and by
#                                         dstart with HELPER_IMAGE, interleaved ROUNDS times
#                                         (default 5), then one dstart run under perf
# Prints wall time, CPU time of all processes (user + system + irq, from /proc/stat) and the
# share of perf samples per command; removes everything it creates. `helper` uses (and
# removes) bench/backup.sh's volume and data container: do not run the two at once.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-}
case "$mode" in
    start | helper) ;;
    *)
        echo "usage: bench/profile.sh start [N] [P] | helper [ROUNDS]" >&2
        exit 2
        ;;
esac

scripts/setup
export DEBIAN_FRONTEND=noninteractive
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
. bench/lib.sh
IMAGE=dstart-bench/busybox:latest
ensure_busybox_image "$IMAGE"
SOCK=/var/run/docker.sock
API=$(docker version --format '{{.Server.APIVersion}}')
work=$(mktemp -d /tmp/dstart-profile.XXXXXX)

# CPU seconds spent by everything (user, nice, system, irq, softirq) since boot.
busy() { awk '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / 100 }' /proc/stat; }
# `measure LABEL COMMAND...`: runs the command, prints its wall and the machine's CPU time.
measure() {
    local label=$1 t0 t1 c0 c1
    shift
    c0=$(busy)
    t0=$EPOCHREALTIME
    "$@" >/dev/null
    t1=$EPOCHREALTIME
    c1=$(busy)
    printf '%s %.3f %.2f\n' "$label" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$c1 - $c0" | bc -l)"
}
# Share of samples per command in a perf recording (the first LINES).
by_command() {
    perf report -i "$1" --no-children --sort comm --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -n "${2:-12}"
}

if [ "$mode" = start ]; then
    N=${2:-10}
    P=${3:-5}
    tag=bench-profile-$$
    net=$tag
    vol=$tag-vol
    export tag
    cleanup() {
        seq 1 "$N" | xargs -P 8 -I{} docker rm -f "$tag-{}" >/dev/null 2>&1 || true
        docker network rm "$net" >/dev/null 2>&1 || true
        docker volume rm -f "$vol" >/dev/null 2>&1 || true
        rm -rf "$work"
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    api() {
        curl -sSf --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' \
            "http://localhost/v$API$2" ${3:+-d "$3"} >/dev/null
    }
    export -f api
    export SOCK API
    api POST /networks/create '{"Name": "'"$net"'", "Driver": "bridge", "CheckDuplicate": true}'
    api POST /volumes/create '{"Name": "'"$vol"'"}'
    start_all() { seq 1 "$N" | xargs -P "$P" -I{} bash -c 'api POST "/containers/$tag-{}/start"'; }
    stop_all() { seq 1 "$N" | xargs -P 8 -I{} bash -c 'api POST "/containers/$tag-{}/stop"'; }
    remove_all() { seq 1 "$N" | xargs -P 8 -I{} bash -c 'api DELETE "/containers/$tag-{}?force=1"'; }
    create_all() {
        for i in $(seq 1 "$N"); do
            api POST "/containers/create?name=$tag-$i" '{"Image": "'"$IMAGE"'", "Cmd": ["sleep", "3600"], "HostConfig": {"Binds": ["'"$vol"':/data"], "NetworkMode": "'"$net"'", "Init": true}}'
        done
    }
    create_all
    echo "== $N containers created; starting them $P at a time under perf" >&2
    perf record -a -g -F 999 -o "$work/start.data" -- bash -c "$(declare -f start_all); N=$N P=$P; start_all" 2>/dev/null
    echo "== stopping them 8 at a time under perf" >&2
    perf record -a -g -F 999 -o "$work/stop.data" -- bash -c "$(declare -f stop_all); N=$N; stop_all" 2>/dev/null
    echo "== the same again (after a removal), without perf:" >&2
    remove_all
    create_all
    read -r _ wall cpu < <(measure start start_all)
    echo "start of $N, $P at a time: ${wall} s wall, ${cpu} s CPU on $(nproc) cores"
    read -r _ wall cpu < <(measure stop stop_all)
    echo "stop of $N, 8 at a time: ${wall} s wall, ${cpu} s CPU on $(nproc) cores"
    read -r _ wall cpu < <(measure remove remove_all)
    echo "remove of the $N stopped containers, 8 at a time: ${wall} s wall, ${cpu} s CPU on $(nproc) cores"
    create_all
    start_all
    read -r _ wall cpu < <(measure teardown remove_all)
    echo "force-remove of $N running, 8 at a time: ${wall} s wall, ${cpu} s CPU on $(nproc) cores"
    echo
    echo "share of CPU samples per command during the start (perf record -a):"
    by_command "$work/start.data"
    echo
    echo "share of CPU samples per command during the stop (perf record -a):"
    by_command "$work/stop.data"
    echo
    echo "inside the engine's re-executions of its own binary (command \`exe\`), with children:"
    perf report -i "$work/start.data" --children --comm exe --sort sym --stdio -g none 2>/dev/null |
        grep -E 'runtime\.doInit|main\.main|reexec|setkey|SetKey|Resolver' | head -n 8
    exit 0
fi

# helper
ROUNDS=${2:-5}
C=bench-backup-data
VOL=bench-backup-vol
cargo build --release --locked -q
D=$root/target/release/dstart
trap 'clean_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
make_volume 1
conf=$work/conf
mkdir -p "$conf/environments" "$conf/units/bench" "$work/tar" "$work/helper"
: > "$conf/environments/default.yaml"
printf 'HELPER_IMAGE: %s\n' "$IMAGE" > "$work/helper-env.yaml"
printf '%s:\n  image: %s\n  volumes: ["%s:/data"]\n---\n- %s: {command: backup, backup_dir: %s, backup_name: helper, compression: none, overwrite: true}\n' \
    "$C" "$IMAGE" "$VOL" "$C" "$work/helper" > "$conf/units/bench/backup-helper.yaml"
fresh() { rm -f "$work"/tar/* "$work"/helper/*; sync; }
tar_run() { docker run --rm -v "$VOL:/data:ro" -v "$work/tar:/backup" "$IMAGE" tar cf /backup/x.tar -C / data; }
helper_run() { "$D" -q -c "$conf" run -e "$work/helper-env.yaml" bench/backup-helper; }
for r in $(seq 1 "$ROUNDS"); do
    echo "   round $r of $ROUNDS" >&2
    fresh
    measure tar tar_run >> "$work/times"
    fresh
    measure dstart helper_run >> "$work/times"
done
for l in tar dstart; do
    awk -v l=$l '$1 == l { print $2 }' "$work/times" > "$work/$l.wall"
    awk -v l=$l '$1 == l { print $3 }' "$work/times" > "$work/$l.cpu"
    printf '%-7s median wall %.3f s, median CPU %.2f s (all processes, %s cores)\n' "$l" \
        "$(case_median "$work/$l.wall")" "$(case_median "$work/$l.cpu")" "$(nproc)"
done
fresh
perf record -a -F 999 -o "$work/helper.data" -- "$D" -q -c "$conf" run -e "$work/helper-env.yaml" bench/backup-helper 2>/dev/null
echo
echo "share of CPU samples per command during one dstart run (perf record -a):"
by_command "$work/helper.data"
echo
echo "dstart's own threads (tokio-rt-worker), by symbol:"
perf report -i "$work/helper.data" --no-children --comm tokio-rt-worker --sort sym --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -n 5
