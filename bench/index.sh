#!/usr/bin/env bash
# index.sh - sealmail's index (Bluge) against notmuch (Xapian) on the same
# generated Maildir: indexing rate, index size (and what each field costs),
# 10 typical queries (the queries of the notmuch yardstick in
# docs/benchmarks.md, "How the yardsticks were measured") and exact against
# stemmed counts.
#
#   bench/index.sh [N] [query_runs]        (defaults 20000, 5)
#   KEEP=1 bench/index.sh ...               keep the work directory
#
# Needs python3, go, notmuch and /usr/share/dict/words (Debian: notmuch,
# wamerican). Work directory: mktemp under the CURRENT directory.
# sealmail query latency is measured two ways: warm, in process on an open
# index, and "open+query" (open the index and run the query once), which is
# what a CLI invocation pays besides process start. notmuch's times are whole
# `notmuch count` processes (process start + database open + query), as in
# the baseline.
set -euo pipefail
N=${1:-20000}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GEN="$ROOT/bench/gen_mail.py"
. "$ROOT/bench/notmuch.sh"

notmuch_need

W=$(mktemp -d -p . idxbench.XXXXXX); W=$(cd "$W" && pwd)
trap '[ -z "${KEEP:-}" ] && rm -rf "$W"' EXIT

t0=$(date +%s.%N)
python3 "$GEN" --out "$W/Maildir" -n "$N" --terms "$W/terms.json"
t1=$(date +%s.%N)
(cd "$ROOT" && go build -o "$W/indexbench" ./index/internal/indexbench)
sync
j() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$W/terms.json" "$1"; }
MB=$(python3 -c "print(f'{$(j bytes)/1e6:.1f}')")
echo "# corpus: $N messages, $MB MB, generated in $(python3 -c "print(f'{$t1-$t0:.1f}')") s; $(notmuch --version), $(nproc) CPU(s)"

TS=$(j top_sender); MS=$(j mid_sender); CW=$(j common_word); MW=$(j mid_word); RW=$(j rare_word)
WA=$(j word_a); WB=$(j word_b); SW=$(j subject_word)
# notmuch query | sealmail query ("search:" = newest 50 hits, else a count)
NM=(
  "from:$TS"
  "to:$MS"
  "$MW"
  "$RW"
  "date:2024-03-01..2024-03-31"
  "subject:$SW"
  "from:$TS and $CW"
  "$WA or $WB"
  "from:$TS and date:2023-06-01..2023-12-31"
  "$MW and date:2024-01-01..2024-12-31"
)
SM=(
  "from:$TS"
  "to:$MS"
  "$MW"
  "$RW"
  "after:2024-03-01 before:2024-04-01"
  "subject:$SW"
  "from:$TS $CW"
  "$WA OR $WB"
  "from:$TS after:2023-06-01 before:2024-01-01"
  "search:$MW after:2024-01-01 before:2025-01-01"
)
# Exact against stemmed (rows 11-14): notmuch stems an unquoted lower-case
# word and not a quoted one; sealmail matches the word unless stem: asks.
NM+=("\"$MW\"" "$MW" "\"$RW\"" "$RW")
SM+=("$MW" "stem:$MW" "$RW" "stem:$RW")

# sealmail: index, then queries.
"$W/indexbench" -mail "$W/Maildir" -index "$W/sealmail-index" -runs "$RUNS" "${SM[@]}" >"$W/sealmail.out"
read -r _ scount _ sbytes _ _ sel _ < <(head -1 "$W/sealmail.out")
ssize=$(du -sm "$W/sealmail-index" | cut -f1)

# notmuch: index, then queries.
export NOTMUCH_CONFIG="$W/notmuch-config"
notmuch_config "$NOTMUCH_CONFIG" "$W/Maildir"
n0=$(date +%s.%N)
notmuch new --quiet
n1=$(date +%s.%N)
nel=$(python3 -c "print(f'{$n1-$n0:.2f}')")
ncount=$(notmuch count '*')
nsize=$(du -sm "$W/Maildir/.notmuch" | cut -f1)

echo
echo "| indexer | messages | wall s | msgs/s | MB/s | index MB |"
echo "|---|---|---|---|---|---|"
srate=$(python3 -c "print(f'{$scount/$sel:.0f}')")
nrate=$(python3 -c "print(f'{$ncount/$nel:.0f}')")
echo "| sealmail index (Bluge) | $scount | $sel | $srate | $(python3 -c "print(f'{$sbytes/1e6/$sel:.1f}')") | $ssize |"
echo "| notmuch new (Xapian) | $ncount | $nel | $nrate | $(python3 -c "print(f'{$(j bytes)/1e6/$nel:.1f}')") | $nsize |"
echo
echo "indexing rate ratio sealmail/notmuch: $(python3 -c "print(f'{$srate/$nrate:.1f}x')")"
sbytes_idx=$(du -sb "$W/sealmail-index" | cut -f1); nbytes_idx=$(du -sb "$W/Maildir/.notmuch" | cut -f1)
echo "index size: sealmail $(python3 -c "print(f'{$sbytes_idx/1e6:.1f} MB = {100*$sbytes_idx/$(j bytes):.1f} %')") of the mail, notmuch $(python3 -c "print(f'{$nbytes_idx/1e6:.1f} MB = {100*$nbytes_idx/$(j bytes):.1f} %')")"

# Time a notmuch query: 1 warm-up and RUNS runs of the whole process.
nmtime() {
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, statistics
runs = int(sys.argv[1]); args = sys.argv[2:]
out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
ts = []
for _ in range(runs):
    t = time.perf_counter(); subprocess.run(args, capture_output=True, check=True); ts.append(time.perf_counter() - t)
hits = out.strip() if args[1] == "count" else str(len(out.splitlines()))
print(hits, f"{statistics.median(ts)*1e3:.2f}")
PY
}

echo
echo "| # | notmuch query | hits | notmuch median ms | sealmail query | hits | warm median ms | open+query ms |"
echo "|---|---|---|---|---|---|---|---|"
i=0
nmeds=(); swarm=(); scold=()
while IFS=$'\t' read -r sq shits smed _smin scld; do
  nq=${NM[$i]}
  if [ "$i" -eq 9 ]; then
    read -r nhits nmed < <(nmtime notmuch search --output=files --limit=50 "$nq")
  else
    read -r nhits nmed < <(nmtime notmuch count "$nq")
  fi
  i=$((i + 1))
  nmeds+=("$nmed"); swarm+=("$smed"); scold+=("$scld")
  echo "| $i | \`$nq\` | $nhits | $nmed | \`$sq\` | $shits | $smed | $scld |"
done < <(tail -n +2 "$W/sealmail.out")

python3 - "${nmeds[*]}" "${swarm[*]}" "${scold[*]}" <<'PY'
import sys, statistics as s
n, w, c = ([float(x) for x in a.split()][:10] for a in sys.argv[1:4])  # the 10 typical queries
mn, mw, mc = s.median(n), s.median(w), s.median(c)
print()
print(f"median query latency: notmuch {mn:.2f} ms (whole process); sealmail warm {mw:.2f} ms, open+query {mc:.2f} ms")
print(f"ratio notmuch/sealmail: warm {mn/mw:.1f}x, open+query {mn/mc:.1f}x")
PY

# What each field costs: the index built from the first FIELDS_N messages
# (default 5000) once with every field and once without each
# (index.TestFieldShares).
FN=${FIELDS_N:-5000}
echo
echo "## index size per field (first $FN messages)"
echo
(cd "$ROOT" && SEALMAIL_FIELD_SHARES="$W/Maildir" SEALMAIL_FIELD_SHARES_N="$FN" SEALMAIL_FIELD_SHARES_OUT="$W/fields.md" \
  go test -count=1 -timeout 60m -run '^TestFieldShares$' ./index/ >/dev/null)
cat "$W/fields.md"
