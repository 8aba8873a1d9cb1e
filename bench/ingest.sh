#!/usr/bin/env bash
# ingest.sh - sealmail's ingest benchmark (make bench): Postfix's smtp-source
# against the daemon (full durability: 250 after the segment and the audit
# entry are fsync'd, post-quantum age encryption, zstd) and against Postfix's
# smtp-sink (stores nothing), in the same run, alternating, RUNS times per
# cell. Prints medians, the ratio, and each daemon's CPU per message (from
# /proc/PID/stat: the figure the two shared cores do not cap), the
# sealmail daemon's group commits and its peak RSS during each cell. Then,
# with bench/smtpload, the realistic mix of bench/gen_mail.py: stored bytes /
# original bytes, and the latency from the end of DATA to 250 at a moderate
# load (LAT_RATE msg/s).
#
#   bench/ingest.sh                 # 20000 x 10 KB and 5000 x 100 KB, 16 sessions, 3 runs
#   RUNS=5 CELLS="20000:10240:16" MIX=0 bench/ingest.sh
#
# Run it from the repository root; the archives go to a temp dir under
# ./var/bench on the repository's disk. The receiver keeps no index (the
# reader service indexes, and none runs here). Everything listens on
# 127.0.0.1 only and every run is bounded by a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CELLS=${CELLS:-"20000:10240:16 5000:102400:16"}
MIX=${MIX:-5000}            # messages of the realistic mix (0: skip it and the latency run)
LAT_RATE=${LAT_RATE:-1000}  # msg/s for the latency run
LAT_N=${LAT_N:-10000}
SINK_PORT=${SINK_PORT:-2526}
SM_PORT=${SM_PORT:-2625}
MIX_PORT=${MIX_PORT:-2626}
METRICS_PORT=${METRICS_PORT:-2627}
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
go build -o "$WORK/smtpload" ./bench/smtpload
SINK=""; SM=""; MIXD=""
cleanup() {
  for p in "$SINK" "$SM" "$MIXD"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

waitport() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }
smtp-sink -u nobody -m 64 127.0.0.1:"$SINK_PORT" 256 &
SINK=$!
./bin/sealmail init --data "$WORK/archive" >/dev/null 2>&1
./bin/sealmail serve --data "$WORK/archive" --smtp 127.0.0.1:"$SM_PORT" \
  --metrics 127.0.0.1:"$METRICS_PORT" --log-level warn 2>"$WORK/serve.log" &
SM=$!
waitport "$SINK_PORT"; waitport "$SM_PORT"

py() { python3 -c "$1"; }
median() { py "import statistics as s; print(f'{s.median([$(IFS=,; echo "$*")]):.1f}')"; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }   # utime+stime of a process, in clock ticks
HZ=$(getconf CLK_TCK)
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# run PORT PID N SIZE SESSIONS -> "msgs/s cpu_us_per_msg" (the server PID's CPU)
run() {
  local t0 t1 c0 c1
  c0=$(ticks "$2"); t0=$(date +%s.%N)
  timeout "$TLIMIT" smtp-source -d -s "$5" -m "$3" -l "$4" -M load.test -f bench@load.test -t user@bench.test 127.0.0.1:"$1" >/dev/null
  t1=$(date +%s.%N); c1=$(ticks "$2")
  py "print(f'{$3/($t1-$t0):.1f} {($c1-$c0)*1e6/$HZ/$3:.0f}')"
}

echo "# sealmail ingest vs smtp-sink, $(nproc) CPUs, $RUNS alternating runs per cell (median), $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| messages x size | sessions | smtp-sink msgs/s | sealmail msgs/s | sealmail MB/s | ratio | smtp-sink CPU µs/msg | sealmail CPU µs/msg | entries/commit | commit ms | sealmail peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for cell in $CELLS; do
  IFS=: read -r N SIZE SESS <<<"$cell"
  sink=(); sm=(); sinkc=(); smc=()
  echo 5 > "/proc/$SM/clear_refs"   # peak RSS from here
  b0=$(metric sealmail_commit_batch_entries_count); e0=$(metric sealmail_commit_batch_entries_sum); s0=$(metric sealmail_commit_seconds_sum)
  for ((r = 1; r <= RUNS; r++)); do
    read -r rate cpu <<<"$(run "$SINK_PORT" "$SINK" "$N" "$SIZE" "$SESS")"; sink+=("$rate"); sinkc+=("$cpu")
    read -r rate cpu <<<"$(run "$SM_PORT" "$SM" "$N" "$SIZE" "$SESS")"; sm+=("$rate"); smc+=("$cpu")
    echo "  run $r: smtp-sink ${sink[-1]} msgs/s (${sinkc[-1]} µs/msg), sealmail ${sm[-1]} msgs/s (${smc[-1]} µs/msg)" >&2
  done
  b1=$(metric sealmail_commit_batch_entries_count); e1=$(metric sealmail_commit_batch_entries_sum); s1=$(metric sealmail_commit_seconds_sum)
  rss=$(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' "/proc/$SM/status")
  ms=$(median "${sink[@]}"); mm=$(median "${sm[@]}")
  py "print(f'| $N x $((SIZE / 1024)) KB | $SESS | $ms | $mm | {$mm*$SIZE/1e6:.1f} | **{$mm/$ms:.2f}** | $(median "${sinkc[@]}") | $(median "${smc[@]}") | {($e1-$e0)/($b1-$b0):.1f} | {($s1-$s0)*1e3/($b1-$b0):.2f} | $rss |')"
done

if [ "$MIX" -gt 0 ]; then
  # The realistic mix, into an archive of its own (smtp-source's bodies
  # compress far better than mail does).
  python3 bench/gen_mail.py --out "$WORK/mix/Maildir" -n "$MIX" --seed 1 >/dev/null 2>&1
  python3 bench/gen_mail.py --out "$WORK/lat/Maildir" -n "$LAT_N" --seed 2 >/dev/null 2>&1  # other messages: no duplicates
  ./bin/sealmail init --data "$WORK/mixarchive" >/dev/null 2>&1
  ./bin/sealmail serve --data "$WORK/mixarchive" --smtp 127.0.0.1:"$MIX_PORT" --log-level warn 2>"$WORK/mix.log" &
  MIXD=$!
  waitport "$MIX_PORT"
  c0=$(ticks "$MIXD")
  mix=$("$WORK/smtpload" -addr 127.0.0.1:"$MIX_PORT" -dir "$WORK/mix/Maildir" -sessions 16)
  c1=$(ticks "$MIXD")
  st=$(./bin/sealmail status --data "$WORK/mixarchive" --json)
  c2=$(ticks "$MIXD")
  lat=$("$WORK/smtpload" -addr 127.0.0.1:"$MIX_PORT" -dir "$WORK/lat/Maildir" -sessions 16 -rate "$LAT_RATE")
  c3=$(ticks "$MIXD")
  st2=$(./bin/sealmail status --data "$WORK/mixarchive" --json)
  echo
  py "
import json
mix, lat = json.loads('''$mix'''), json.loads('''$lat''')
st, st2 = json.loads('''$st'''), json.loads('''$st2''')
d = lambda k: st2[k] - st[k]
print('| realistic mix (bench/gen_mail.py) | messages | mean size | msgs/s | sealmail CPU µs/msg | stored / original |')
print('|---|---|---|---|---|---|')
print(f\"| 16 sessions, as fast as it goes | {mix['messages']} | {mix['bytes']/mix['messages']/1024:.1f} KB | {mix['msgs_per_s']:.0f} | {($c1-$c0)*1e6/$HZ/mix['messages']:.0f} | **{st['stored_bytes']/st['original_bytes']:.2f}** |\")
print(f\"| 16 sessions at $LAT_RATE msgs/s | {lat['messages']} | {lat['bytes']/lat['messages']/1024:.1f} KB | {lat['msgs_per_s']:.0f} | {($c3-$c2)*1e6/$HZ/lat['messages']:.0f} | {d('stored_bytes')/d('original_bytes'):.2f} |\")
print()
print('| latency, end of DATA to 250 | target msgs/s | achieved msgs/s | p50 ms | p90 ms | p99 ms | max ms |')
print('|---|---|---|---|---|---|---|')
print(f\"| realistic mix, 16 sessions | $LAT_RATE | {lat['msgs_per_s']:.0f} | {lat['latency_p50_ms']:.2f} | {lat['latency_p90_ms']:.2f} | **{lat['latency_p99_ms']:.2f}** | {lat['latency_max_ms']:.2f} |\")
"
fi
echo
./bin/sealmail status --data "$WORK/archive" | sed 's/^/    /'
