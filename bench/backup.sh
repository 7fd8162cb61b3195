#!/usr/bin/env bash
# Benchmarks of issue 4, side by side in one run on the same volume: a SIZE GiB named volume
# (per GiB: 512 MiB random, 20,000 x 4 KiB text files, 433.875 MiB text) in the data container
# `bench-backup-data`, backed up and restored by
#   - the raw engine API: curl on the archive endpoint to a file, the same piped through
#     `gzip -1` and `zstd -1`, busybox `tar cf` in a `docker run` with a bind mount, and a PUT of
#     dstart's gzip archive on the archive endpoint; for information also curl, curl | zstd and
#     busybox tar followed by `sync FILE` (dstart fsyncs each archive before renaming it), and
#     the PUT of the same tar uncompressed (what dstart sends);
#   - dstart: backup orders with compression none, gzip and zstd, the same uncompressed through a
#     HELPER_IMAGE, and a restore of the gzip archive;
# then the peak RSS of a dstart gzip backup of a BIG_SIZE GiB volume (one run, RSS only).
#
# usage: bench/backup.sh
#   RUNS=5        rounds: every command runs once per round, the rounds interleave them
#   SIZE=1        GiB of the compared volume
#   BIG_SIZE=4    GiB of the RSS-only volume (0: skip)
#   RAW_ONLY=1    only the raw engine half (no dstart)
#   CASES=REGEX   only the cases whose name matches (e.g. 'raw-tar$|dstart-helper'); the
#                 restores then use an archive made once, untimed, when no gzip case ran
#   WORKDIR=/tmp  where archives are written (checked: 4 x SIZE + 2 GiB free there and on /)
#   BASELINE=BIN  also run the none/gzip/zstd/helper backups with this dstart binary (the
#                 previous release) in the same rounds, and print the ratios (issue 19: 1.03x)
# Issue 18 cases: zstd encrypted with age (vs zstd), and a backup with `source:` and
# before/after hooks of a running container (vs the same order without hooks).
# Writes the times under bench/results/backup-SIZE/ and prints Markdown tables.
# Note: bench/start.sh removes every container whose name contains `bench-`; do not run both
# at once (the timings would disturb each other anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup
export DEBIAN_FRONTEND=noninteractive
for p in hyperfine jq bc; do
    command -v "$p" >/dev/null || { apt-get install -y -qq "$p" >/dev/null; }
done
RUNS=${RUNS:-5}
SIZE=${SIZE:-1}
BIG_SIZE=${BIG_SIZE:-4}
RAW_ONLY=${RAW_ONLY:-0}
if [ "$RAW_ONLY" != 1 ]; then
    cargo build --release --locked -q
fi
D=${CARGO_TARGET_DIR:-$root/target}/release/dstart
BASELINE=${BASELINE:-}
IMAGE=dstart-bench/busybox:latest
SOCK=/var/run/docker.sock
API=$(docker version --format '{{.Server.APIVersion}}')
URL="http://localhost/v$API/containers/bench-backup-data/archive"
C=bench-backup-data
VOL=bench-backup-vol
TIME=/usr/bin/time

# The base image, from the host's static busybox (no registry can be reached).
. bench/lib.sh
ensure_busybox_image "$IMAGE"

work=$(mktemp -d "${WORKDIR:-/tmp}/dstart-bench-backup.XXXXXX")
out=$work/out
conf=$work/conf
results=$root/bench/results
mkdir -p "$results" "$out"/{raw,gzip,zstd,tar,none,dgzip,dzstd,helper,restore,age,hooks,nohooks}

trap 'clean_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# The dstart configuration: one unit `bench` with one command per variant.
write_conf() {
    mkdir -p "$conf/environments" "$conf/units/bench"
    : > "$conf/environments/default.yaml"
    printf 'HELPER_IMAGE: %s\n' "$IMAGE" > "$work/helper-env.yaml"
    local name comp dir
    for v in none:none:none gzip:gzip:dgzip zstd:zstd:dzstd helper:none:helper; do
        IFS=: read -r name comp dir <<< "$v"
        printf '%s:\n  image: %s\n  volumes: ["%s:/data"]\n---\n- %s: {command: backup, backup_dir: %s, backup_name: %s, compression: %s, overwrite: true}\n' \
            "$C" "$IMAGE" "$VOL" "$C" "$out/$dir" "$name" "$comp" > "$conf/units/bench/backup-$name.yaml"
    done
    printf '%s:\n  image: %s\n  volumes: ["%s:/data"]\n---\n- %s: {command: restore, restore_dir: %s, archive: gzip.tar.gz}\n' \
        "$C" "$IMAGE" "$VOL" "$C" "$out/restore" > "$conf/units/bench/restore.yaml"
    # Issue 18: zstd encrypted for an age recipient; a paths-restricted backup of a running
    # container with and without before/after hooks.
    age-keygen -o "$work/age-key.txt" 2>/dev/null
    printf '%s:\n  image: %s\n  volumes: ["%s:/data"]\n---\n- %s: {command: backup, backup_dir: %s, backup_name: age, compression: zstd, overwrite: true, encrypt: {recipients: ["%s"]}}\n' \
        "$C" "$IMAGE" "$VOL" "$C" "$out/age" "$(age-keygen -y "$work/age-key.txt")" > "$conf/units/bench/backup-age.yaml"
    local hooks
    for hooks in hooks nohooks; do
        printf '%s:\n  image: %s\n  volumes: ["%s:/data"]\n---\n- %s: {command: backup, backup_dir: %s, backup_name: %s, compression: none, overwrite: true, source: [/data/random, /data/text]%s}\n' \
            "$C-live" "$IMAGE" "$VOL" "$C-live" "$out/$hooks" "$hooks" \
            "$([ $hooks = hooks ] && echo ', before: "true", after: ["true"]')" > "$conf/units/bench/backup-$hooks.yaml"
    done
}

# Each command starts with every earlier output removed (but the gzip archive the restores
# need) and the page cache's dirty data written (`sync`), so that no run pays for the
# write-back of another. The volume itself stays in the page cache for all of them. A command
# records the size of what it wrote (a `stat` of a few microseconds inside the timing).
echo "== load: $(uptime)" >&2
make_volume "$SIZE"
bytes=$(( SIZE * 1073741824 ))
write_conf
# The running container the hooks run in (clean_all removes it with the data container).
docker run -d --name "$C-live" -v "$VOL:/data" "$IMAGE" sleep 86400 >/dev/null
prep="find $out -type f ! -path '$out/dgzip/*' ! -path '$out/restore/*' -delete; sync"
export out work
size() { echo "stat -c %s $2 >> $work/size-$1"; }
rss() { echo "$TIME -a -o $work/rss-$1 -f %M"; }
curl_get="curl -sSf --unix-socket $SOCK '$URL?path=/data'"
cases_clear
case_add raw-curl "$prep" "$(rss curl) $curl_get -o $out/raw/data.tar; $(size raw-curl "$out/raw/data.tar")"
# The same with the file fsynced at the end, as dstart does before it renames an archive into
# place (for information: the targets compare against the commands without sync).
case_add raw-curl-sync "$prep" "$curl_get -o $out/raw/data.tar && sync $out/raw/data.tar"
case_add raw-gzip "$prep" "set -o pipefail; $curl_get | gzip -1 > $out/gzip/data.tar.gz; $(size raw-gzip "$out/gzip/data.tar.gz")"
case_add raw-zstd "$prep" "set -o pipefail; $curl_get | zstd -q -1 > $out/zstd/data.tar.zst; $(size raw-zstd "$out/zstd/data.tar.zst")"
case_add raw-zstd-sync "$prep" "set -o pipefail; $curl_get | zstd -q -1 > $out/zstd/data.tar.zst && sync $out/zstd/data.tar.zst"
case_add raw-tar "$prep" "docker run --rm -v $VOL:/data:ro -v $out/tar:/backup $IMAGE tar cf /backup/x.tar -C / data; $(size raw-tar "$out/tar/x.tar")"
case_add raw-tar-sync "$prep" "docker run --rm -v $VOL:/data:ro -v $out/tar:/backup $IMAGE tar cf /backup/x.tar -C / data && sync $out/tar/x.tar"
if [ "$RAW_ONLY" != 1 ]; then
    dstart() { # name, then dstart arguments; records the peak RSS of each run
        local name=$1; shift
        echo "$(rss "$name") $D -q -c $conf $*"
    }
    case_add dstart-none "$prep" "$(dstart none run bench/backup-none); $(size dstart-none "$out/none/none.tar")"
    case_add dstart-gzip "rm -f $out/dgzip/*; $prep" "$(dstart gzip run bench/backup-gzip); $(size dstart-gzip "$out/dgzip/gzip.tar.gz")"
    case_add dstart-zstd "$prep" "$(dstart zstd run bench/backup-zstd); $(size dstart-zstd "$out/dzstd/zstd.tar.zst")"
    case_add dstart-helper "$prep" "$(dstart helper run -e "$work/helper-env.yaml" bench/backup-helper); $(size dstart-helper "$out/helper/helper.tar")"
    case_add dstart-zstd-age "$prep" "$(dstart zstdage run bench/backup-age); $(size dstart-zstd-age "$out/age/age.tar.zst.age")"
    case_add dstart-hooks "$prep" "$(dstart hooks run bench/backup-hooks)"
    case_add dstart-nohooks "$prep" "$(dstart nohooks run bench/backup-nohooks)"
    if [ -n "$BASELINE" ]; then
        base() { # name, then dstart arguments: the same with the baseline binary
            local name=$1; shift
            echo "$(rss "$name") $BASELINE -q -c $conf $*"
        }
        case_add base-none "$prep" "$(base bnone run bench/backup-none)"
        case_add base-gzip "$prep" "$(base bgzip run bench/backup-gzip)"
        case_add base-zstd "$prep" "$(base bzstd run bench/backup-zstd)"
        case_add base-helper "$prep" "$(base bhelper run -e "$work/helper-env.yaml" bench/backup-helper)"
    fi
else
    case_add raw-gzip-keep "rm -f $out/dgzip/*; $prep" "set -o pipefail; $curl_get | gzip -1 > $out/dgzip/gzip.tar.gz"
fi
echo "== backups, $RUNS rounds" >&2
rm -rf "$results/backup-$SIZE" # no times of an earlier run (CASES may leave cases out)
cases_run "$RUNS" "$results/backup-$SIZE"

# The restores unpack the last gzip archive of the backups (overlaying the same files each
# time): raw with curl, as the plain tar dstart sends after unpacking it (for information), and
# dstart.
rm -f "$out/restore/"*
if [ ! -f "$out/dgzip/gzip.tar.gz" ]; then
    # CASES left out the gzip backups: one archive (and its checksum) for the restores, untimed.
    bash -c "set -o pipefail; $curl_get | gzip -1 > $out/dgzip/gzip.tar.gz"
    (cd "$out/dgzip" && sha256sum gzip.tar.gz > gzip.tar.gz.sha256)
fi
ln "$out/dgzip/gzip.tar.gz" "$out/restore/"
[ -f "$out/dgzip/gzip.tar.gz.sha256" ] && ln "$out/dgzip/gzip.tar.gz.sha256" "$out/restore/"
restore_archive=$out/restore/gzip.tar.gz
zcat "$restore_archive" > "$work/plain.tar"
put="curl -sSf --unix-socket $SOCK -H 'Content-Type: application/x-tar' -X PUT '$URL?path=/'"
cases_clear
case_add raw-put sync "$put -T $restore_archive"
case_add raw-put-plain sync "$put -T $work/plain.tar"
if [ "$RAW_ONLY" != 1 ]; then
    case_add dstart-restore sync "$(dstart restore run bench/restore)"
fi
echo "== restores, $RUNS rounds" >&2
cases_run "$RUNS" "$results/backup-$SIZE"
rm -f "$work/plain.tar"
archive_mb=$(stat -c %s "$restore_archive")
median() { case_median "$results/backup-$SIZE/$1.times"; }
peak_kib() { sort -n "$work/rss-$1" | tail -n 1; }
declare -A archive
for f in "$work"/size-*; do
    [ -e "$f" ] && archive[${f#"$work"/size-}]=$(tail -n 1 "$f")
done

# The RSS-only run on a BIG_SIZE GiB volume.
big_rss=""
big_age_rss=""
if [ "$RAW_ONLY" != 1 ] && [ "$BIG_SIZE" -gt 0 ]; then
    find "$out" -type f -delete
    echo "== $BIG_SIZE GiB volume (RSS only, 1 run); load: $(uptime)" >&2
    make_volume "$BIG_SIZE"
    start=$(date +%s.%N)
    $TIME -o "$work/rss-big" -f %M "$D" -q -c "$conf" run bench/backup-gzip
    big_secs=$(echo "$(date +%s.%N) - $start" | bc -l)
    big_rss=$(cat "$work/rss-big")
    find "$out" -type f -delete
    $TIME -o "$work/rss-big-age" -f %M "$D" -q -c "$conf" run bench/backup-age
    big_age_rss=$(cat "$work/rss-big-age")
    jq -n --arg size "$BIG_SIZE" --arg rss_kib "$big_rss" --arg secs "$big_secs" \
        '{size_gib: $size, peak_rss_kib: $rss_kib, seconds: $secs}' > "$results/backup-dstart-gzip-big.json"
    clean_all
fi

# The tables.
mbs() { echo "$bytes / $(median "$1") / 1000000" | bc -l; }
row() { # label, name
    local size=${archive[$2]:-} m
    m=$(median "$2")
    [ -n "$m" ] || return 0 # left out by CASES
    if [ -n "$size" ]; then size=$(printf '%.0f MB' "$(echo "$size / 1000000" | bc -l)"); else size=–; fi
    printf '| %s | %.2f s | %.0f MB/s | %s | %s |\n' "$1" "$m" "$(mbs "$2")" "$(case_range "$results/backup-$SIZE/$2.times")" "$size"
}
echo
echo "Volume: $SIZE GiB ($bytes bytes of file content); $RUNS runs each; MB = 10^6 bytes."
echo
echo "| what | median | throughput | range (s) | archive |"
echo "| --- | --- | --- | --- | --- |"
row "curl archive endpoint → file" raw-curl
row "curl archive endpoint → file, then \`sync\` (fsync) the file" raw-curl-sync
row "curl … \| gzip -1 → file" raw-gzip
row "curl … \| zstd -1 → file" raw-zstd
row "curl … \| zstd -1 → file, then \`sync\` the file" raw-zstd-sync
row "docker run busybox tar cf into a bind mount" raw-tar
row "docker run busybox tar cf into a bind mount, then \`sync\` the file" raw-tar-sync
row "curl PUT of the gzip archive (restore)" raw-put
row "curl PUT of the same tar uncompressed (for information)" raw-put-plain
if [ "$RAW_ONLY" != 1 ]; then
    row "dstart backup, compression: none" dstart-none
    row "dstart backup, compression: gzip" dstart-gzip
    row "dstart backup, compression: zstd" dstart-zstd
    row "dstart backup, none, HELPER_IMAGE" dstart-helper
    row "dstart restore of the gzip archive" dstart-restore
    row "dstart backup, zstd encrypted with age" dstart-zstd-age
    row "dstart backup, source: 2 paths, before/after hooks, none" dstart-hooks
    row "dstart backup, the same without hooks" dstart-nohooks
    row "baseline: backup, none" base-none
    row "baseline: backup, gzip" base-gzip
    row "baseline: backup, zstd" base-zstd
    row "baseline: backup, none, HELPER_IMAGE" base-helper
    echo
    echo "| target | ratio | met | for information: ratio to the baseline with \`sync\` |"
    echo "| --- | --- | --- | --- |"
    ratio() { # label, dstart, baseline, minimum[, synced baseline]
        local r s=–
        [ -n "$(median "$2")" ] && [ -n "$(median "$3")" ] || return 0
        r=$(echo "$(median "$3") / $(median "$2")" | bc -l)
        if [ -n "${5:-}" ] && [ -n "$(median "$5")" ]; then s=$(printf '%.2fx' "$(echo "$(median "$5") / $(median "$2")" | bc -l)"); fi
        printf '| %s ≥ %sx | %.2fx | %s | %s |\n' "$1" "$4" "$r" "$( (( $(echo "$r >= $4" | bc -l) )) && echo yes || echo NO)" "$s"
    }
    ratio "none vs curl" dstart-none raw-curl 0.95 raw-curl-sync
    ratio "helper vs busybox tar" dstart-helper raw-tar 0.9 raw-tar-sync
    ratio "zstd vs curl \| zstd -1" dstart-zstd raw-zstd 0.95 raw-zstd-sync
    ratio "gzip vs curl \| gzip -1" dstart-gzip raw-gzip 1.5
    ratio "restore vs raw PUT" dstart-restore raw-put 0.9
    ratio "zstd encrypted vs zstd (issue 18)" dstart-zstd-age dstart-zstd 0.9
    # Time ratios where lower is better: dstart / reference ≤ limit.
    slower() { # label, dstart, reference, maximum
        local r
        [ -n "$(median "$2")" ] && [ -n "$(median "$3")" ] || return 0
        r=$(echo "$(median "$2") / $(median "$3")" | bc -l)
        printf '| %s ≤ %sx (time) | %.3fx | %s | – |\n' "$1" "$4" "$r" "$( (( $(echo "$r <= $4" | bc -l) )) && echo yes || echo NO)"
    }
    slower "hooks vs no hooks (issue 18)" dstart-hooks dstart-nohooks 1.05
    slower "none vs baseline (issue 19)" dstart-none base-none 1.03
    slower "gzip vs baseline (issue 19)" dstart-gzip base-gzip 1.03
    slower "zstd vs baseline (issue 19)" dstart-zstd base-zstd 1.03
    slower "helper vs baseline (issue 19)" dstart-helper base-helper 1.03
    echo
    echo "| peak RSS (max over runs) | KiB | under 32 MiB |"
    echo "| --- | --- | --- |"
    rss() { local k; [ -s "$work/rss-$2" ] || return 0; k=$(peak_kib "$2"); printf '| %s | %s | %s |\n' "$1" "$k" "$( [ "$k" -lt 32768 ] && echo yes || echo NO)"; }
    rss "curl → file (reference)" curl
    rss "dstart backup none, $SIZE GiB" none
    rss "dstart backup gzip, $SIZE GiB" gzip
    rss "dstart backup zstd, $SIZE GiB" zstd
    rss "dstart backup helper, $SIZE GiB" helper
    rss "dstart restore gzip, $SIZE GiB" restore
    rss "dstart backup zstd + age, $SIZE GiB" zstdage
    if [ -n "$big_rss" ]; then
        printf '| dstart backup gzip, %s GiB (1 run, %.0f s) | %s | %s |\n' "$BIG_SIZE" "$big_secs" "$big_rss" \
            "$( [ "$big_rss" -lt 32768 ] && echo yes || echo NO)"
        printf '| dstart backup zstd + age, %s GiB (1 run) | %s | %s |\n' "$BIG_SIZE" "$big_age_rss" \
            "$( [ "$big_age_rss" -lt 32768 ] && echo yes || echo NO)"
    fi
fi
echo
echo "gzip archive restored: $archive_mb bytes"
