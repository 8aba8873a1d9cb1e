#!/usr/bin/env bash
# ingest.sh - sealmail's ingest benchmark (make bench): Postfix's smtp-source
# against the daemon (full durability: fsync before 250, post-quantum age
# encryption, zstd) and against Postfix's smtp-sink (stores nothing), in the
# same run, alternating, RUNS times per cell. Prints medians and the ratio.
#
#   bench/ingest.sh                 # 20000 x 10 KB and 5000 x 100 KB, 16 sessions, 3 runs
#   RUNS=5 CELLS="20000:10240:16" bench/ingest.sh
#
# Run it from the repository root; the archive goes to a temp dir under
# ./var/bench on the repository's disk. Everything listens on 127.0.0.1 only
# and every run is bounded by a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CELLS=${CELLS:-"20000:10240:16 5000:102400:16"}
SINK_PORT=${SINK_PORT:-2526}
SM_PORT=${SM_PORT:-2625}
TLIMIT=${TLIMIT:-300}
export PATH=$PATH:/usr/sbin

if ! [ -x /usr/sbin/smtp-source ]; then
  apt-get update -q >/dev/null
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix >/dev/null
fi
[ -x bin/sealmail ] || make build >/dev/null

mkdir -p var/bench
WORK=$(mktemp -d var/bench/run.XXXXXX)
SINK=""; SM=""
cleanup() {
  [ -n "$SINK" ] && kill "$SINK" 2>/dev/null || true
  [ -n "$SM" ] && kill "$SM" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

smtp-sink -u nobody -m 64 127.0.0.1:"$SINK_PORT" 256 &
SINK=$!
./bin/sealmail init --data "$WORK/archive" >/dev/null 2>&1
./bin/sealmail serve --data "$WORK/archive" --smtp 127.0.0.1:"$SM_PORT" --log-level warn 2>"$WORK/serve.log" &
SM=$!
for p in "$SINK_PORT" "$SM_PORT"; do
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$p") 2>/dev/null && break; sleep 0.1; done
done

median() { python3 -c 'import sys,statistics as s; print(f"{s.median(float(x) for x in sys.argv[1:]):.1f}")' "$@"; }

# run PORT N SIZE SESSIONS -> msgs/s
run() {
  local t0 t1
  t0=$(date +%s.%N)
  timeout "$TLIMIT" smtp-source -d -s "$3" -m "$2" -l "$4" -M load.test -f bench@load.test -t user@bench.test 127.0.0.1:"$1" >/dev/null
  t1=$(date +%s.%N)
  python3 -c "print($2/($t1-$t0))"
}

echo "# sealmail ingest vs smtp-sink, $(nproc) CPUs, $RUNS runs per cell (median), $(date -u +%FT%TZ)"
echo "| messages x size | sessions | smtp-sink msgs/s | sealmail msgs/s | sealmail MB/s | ratio |"
echo "|---|---|---|---|---|---|"
for cell in $CELLS; do
  IFS=: read -r N SIZE SESS <<<"$cell"
  sink=(); sm=()
  for ((r = 1; r <= RUNS; r++)); do
    sink+=("$(run "$SINK_PORT" "$N" "$SESS" "$SIZE")")
    sm+=("$(run "$SM_PORT" "$N" "$SESS" "$SIZE")")
  done
  ms=$(median "${sink[@]}"); mm=$(median "${sm[@]}")
  mb=$(python3 -c "print(f'{$mm*$SIZE/1e6:.1f}')")
  ratio=$(python3 -c "print(f'{$mm/$ms:.2f}')")
  echo "| $N x $((SIZE / 1024)) KB | $SESS | $ms | $mm | $mb | $ratio |"
done
echo
./bin/sealmail status --data "$WORK/archive" | sed 's/^/    /'
