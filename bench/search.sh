#!/usr/bin/env bash
# search.sh - time to searchable and the rebuild rate (make bench), against
# notmuch in the same run (docs/benchmarks.md, "Time to searchable and
# rebuild"). Real processes: `sealmail serve` and `sealmail access` (the
# reader, unlocked with the development identity as `make run` makes it),
# the realistic mix of bench/gen_mail.py sent over SMTP by bench/smtpload.
#
#   bench/search.sh                       # 5000 messages to searchable, 20000 rebuilt, 3 runs
#   RUNS=5 N=5000 REBUILD_N=20000 LAG_RATE=200 bench/search.sh
#
# 1. Time to searchable, RUNS times on a fresh archive and reader each: from
#    the start of the SMTP load (8 sessions) until `sealmail search --count`
#    through the reader finds all N, against `notmuch new` indexing the same
#    Maildir into a fresh database, alternating. The Maildir is in the page
#    cache for both (it was just generated and is read by the load).
# 2. Rebuild, RUNS times: `sealmail reindex --all` (every record decrypted
#    and hashed against its audit entry, the chain checked) of REBUILD_N
#    messages until the reader's search finds them all, against `notmuch
#    new` of the same Maildir, alternating; the reader's CPU (utime+stime
#    from /proc) over the wall time says how many cores it used.
# 3. The tail's lag at a moderate ingest rate (LAG_RATE msg/s): the messages
#    archived but not yet indexed, sampled every 100 ms, and the time from
#    the last 250 to all searchable (run last, after 4).
# 4. The attachment-extraction share of the rebuild: RUNS more rebuilds
#    with the reader's attachment sandbox off.
#
# Run it from the repository root; work files go to a temp dir under
# ./var/bench. Needs python3, notmuch and /usr/share/dict/words (Debian:
# notmuch, wamerican). Everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/notmuch.sh
RUNS=${RUNS:-3}
N=${N:-5000}
REBUILD_N=${REBUILD_N:-20000}
LAG_RATE=${LAG_RATE:-200}
LAG_N=${LAG_N:-3000}
SMTP_PORT=${SMTP_PORT:-2731}
HTTPS_PORT=${HTTPS_PORT:-8731}

notmuch_need
[ -x bin/sealmail ] || make build >/dev/null

mkdir -p var/bench
W=$(mktemp -d var/bench/search.XXXXXX); W=$(cd "$W" && pwd)
cp bin/sealmail "$W/sealmail"   # a build meanwhile does not change the run's
SM=$W/sealmail
go build -o "$W/smtpload" ./bench/smtpload
SERVE=""; ACCESS=""
stopall() {
  for p in "$ACCESS" "$SERVE"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "$ACCESS" "$SERVE"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  SERVE=""; ACCESS=""
}
trap 'stopall; [ -z "${KEEP:-}" ] && rm -rf "$W"' EXIT

py() { python3 -c "$1"; }
now() { date +%s.%N; }
ticks() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat"; }  # utime+stime, with its waited children's (the attachment sandbox)
HZ=$(getconf CLK_TCK)
waitport() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 not up" >&2; exit 1; }

# start DIR: a fresh archive in DIR and its receiver and reader.
start() {
  "$SM" init --data "$1/archive" >/dev/null 2>&1
  "$SM" serve --data "$1/archive" --smtp 127.0.0.1:"$SMTP_PORT" --log-level warn 2>"$1/serve.log" &
  SERVE=$!
  waitport "$SMTP_PORT"
  reader "$1"
}
# reader DIR [ARGS]: (re)start the reader of the archive in DIR.
reader() {
  local d=$1; shift
  "$SM" access --data "$d/archive" --state "$d/access" --listen 127.0.0.1:"$HTTPS_PORT" \
    --identity "$d/archive/identity.txt" --log-level warn "$@" 2>>"$d/access.log" &
  ACCESS=$!
  waitport "$HTTPS_PORT"
  export SEALMAIL_DATA="$d/archive" SEALMAIL_READER="$d/access/reader.sock"
}
count() { "$SM" search --count "*" 2>/dev/null || echo 0; }
# until N: poll the reader's search until it finds $1 messages.
until_n() { while [ "$(count)" -lt "$1" ]; do sleep 0.05; done; }
notmuch_new() { # MAILDIR -> wall seconds of `notmuch new` into a fresh database
  rm -rf "$1/.notmuch"
  notmuch_config "$W/notmuch-config" "$1"
  local t0 t1
  t0=$(now); NOTMUCH_CONFIG="$W/notmuch-config" notmuch new --quiet; t1=$(now)
  local got; got=$(NOTMUCH_CONFIG="$W/notmuch-config" notmuch count '*')
  [ "$got" -eq "$2" ] || { echo "notmuch indexed $got of $2" >&2; exit 1; }
  py "print(f'{$t1-$t0:.3f}')"
}
median() { py "import statistics as s; print(f'{s.median([$(IFS=,; echo "$*")]):.3f}')"; }

python3 bench/gen_mail.py --out "$W/mail$N/Maildir" -n "$N" --seed 11 >/dev/null 2>&1
python3 bench/gen_mail.py --out "$W/mail$REBUILD_N/Maildir" -n "$REBUILD_N" --seed 12 >/dev/null 2>&1
python3 bench/gen_mail.py --out "$W/lag/Maildir" -n "$LAG_N" --seed 13 >/dev/null 2>&1
MB=$(du -sm "$W/mail$N/Maildir" | cut -f1); MB2=$(du -sm "$W/mail$REBUILD_N/Maildir" | cut -f1)
echo "# time to searchable and rebuild, $(nproc) CPUs, $RUNS alternating runs (median), $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg); $(notmuch --version)"
echo "# corpora (bench/gen_mail.py): $N messages, $MB MB; $REBUILD_N messages, $MB2 MB; page cache warm for both sides"

# 1. Time to searchable.
ts=(); nm=()
for ((r = 1; r <= RUNS; r++)); do
  D="$W/tts$r"; mkdir -p "$D"; start "$D"
  t0=$(now)
  "$W/smtpload" -addr 127.0.0.1:"$SMTP_PORT" -dir "$W/mail$N/Maildir" -sessions 8 >"$D/load.json"
  t1=$(now)
  until_n "$N"
  t2=$(now)
  stopall
  ts+=("$(py "print(f'{$t2-$t0:.3f}')")")
  nm+=("$(notmuch_new "$W/mail$N/Maildir" "$N")")
  echo "  run $r: sealmail ${ts[-1]} s to searchable (load done after $(py "print(f'{$t1-$t0:.2f}')") s), notmuch new ${nm[-1]} s" >&2
  rm -rf "$D"
done
mt=$(median "${ts[@]}"); mn=$(median "${nm[@]}")
echo
echo "| $N messages, 8 SMTP sessions | median s | runs |"
echo "|---|---|---|"
echo "| sealmail: first SMTP connection to all found by search | $mt | ${ts[*]} |"
echo "| notmuch new of the same Maildir | $mn | ${nm[*]} |"
echo
echo "time to searchable / notmuch new: **$(py "print(f'{$mt/$mn:.2f}')")** (goal ≤ 1)"

# 2. Rebuild.
D="$W/rebuild"; mkdir -p "$D"; start "$D"
"$W/smtpload" -addr 127.0.0.1:"$SMTP_PORT" -dir "$W/mail$REBUILD_N/Maildir" -sessions 16 >/dev/null
until_n "$REBUILD_N"
rb=(); cpu=(); nm=()
for ((r = 1; r <= RUNS; r++)); do
  c0=$(ticks "$ACCESS"); t0=$(now)
  "$SM" reindex --all >/dev/null
  until_n "$REBUILD_N"
  t1=$(now); c1=$(ticks "$ACCESS")
  rb+=("$(py "print(f'{$REBUILD_N/($t1-$t0):.0f}')")")
  cpu+=("$(py "print(f'{($c1-$c0)/$HZ/($t1-$t0):.2f}')")")
  s=$(notmuch_new "$W/mail$REBUILD_N/Maildir" "$REBUILD_N")
  nm+=("$(py "print(f'{$REBUILD_N/$s:.0f}')")")
  echo "  run $r: reindex --all ${rb[-1]} msgs/s (${cpu[-1]} cores busy), notmuch new ${nm[-1]} msgs/s" >&2
done
mr=$(median "${rb[@]}"); mn=$(median "${nm[@]}")
echo
echo "| rebuild of $REBUILD_N messages | median msgs/s | runs | cores busy (CPU s / wall s) |"
echo "|---|---|---|---|"
echo "| sealmail reindex --all | $mr | ${rb[*]} | $(median "${cpu[@]}") |"
echo "| notmuch new | $mn | ${nm[*]} | |"
echo
echo "rebuild rate / notmuch: **$(py "print(f'{$mr/$mn:.2f}')")x** (goal ≥ 5)"

# 4. The attachment-extraction share: the same rebuilds with the reader
#    started with [reader.extract] off = true (attachments by name only).
kill "$ACCESS"; wait "$ACCESS" 2>/dev/null || true
printf '[reader.extract]\noff = true\n' >"$W/noextract.toml"
reader "$D" --config "$W/noextract.toml"
off=()
for ((r = 1; r <= RUNS; r++)); do
  t0=$(now); "$SM" reindex --all >/dev/null; until_n "$REBUILD_N"; t1=$(now)
  off+=("$(py "print(f'{$REBUILD_N/($t1-$t0):.0f}')")")
  echo "  run $r: reindex --all without extraction ${off[-1]} msgs/s" >&2
done
mo=$(median "${off[@]}")
echo
echo "| rebuild of $REBUILD_N messages | median msgs/s | runs | ratio |"
echo "|---|---|---|---|"
echo "| attachments by name only | $mo | ${off[*]} | 1 |"
echo "| attachments extracted in the sandbox (above) | $mr | ${rb[*]} | **$(py "print(f'{$mr/$mo:.2f}')")** |"
kill "$ACCESS"; wait "$ACCESS" 2>/dev/null || true
reader "$D"

# 3. The tail's lag at a moderate rate, on the same archive (REBUILD_N in it).
base=$(count)
"$W/smtpload" -addr 127.0.0.1:"$SMTP_PORT" -dir "$W/lag/Maildir" -sessions 8 -rate "$LAG_RATE" >"$D/lag.json" &
LOAD=$!
: >"$D/lag.txt"
while kill -0 "$LOAD" 2>/dev/null; do
  "$SM" access status --json 2>/dev/null | py "import json,sys; print(json.load(sys.stdin)['coverage']['not_indexed'])" >>"$D/lag.txt" || true
  sleep 0.1
done
wait "$LOAD"
t0=$(now); until_n $((base + LAG_N)); t1=$(now)
stopall
echo
py "
import json, statistics as s
lag = [int(x) for x in open('$D/lag.txt').read().split()]
ld = json.load(open('$D/lag.json'))
print('| tail lag, $LAG_N messages at $LAG_RATE msgs/s, 8 sessions | achieved msgs/s | samples | median not indexed | p90 | max | last 250 to all searchable |')
print('|---|---|---|---|---|---|---|')
lag.sort()
print(f\"| on an archive of $REBUILD_N | {ld['msgs_per_s']:.0f} | {len(lag)} | {s.median(lag):.0f} ({s.median(lag)/$LAG_RATE*1e3:.0f} ms of mail) | {lag[int(len(lag)*0.9)]} | {lag[-1]} | {$t1-$t0:.2f} s |\")
"
