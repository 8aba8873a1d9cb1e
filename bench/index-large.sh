#!/usr/bin/env bash
# index-large.sh - queries at scale (issue #15): N generated messages
# (bench/gen_mail.py) indexed in process by indexbench, REPEAT times under
# distinct ids (N×REPEAT documents with the vocabulary of N), then the 10
# typical queries of bench/index.sh and each narrowed to one user's
# messages (AND involved:ADDR, as the reader narrows a user's search), run
# as the reader runs a search (newest 50 hits and the total), RUNS times
# each, interleaved, in 3 separate processes: the figures are the median
# of the 3 processes' medians and p99s, with each process's peak RSS
# (VmHWM). notmuch is the yardstick on the same Maildir when REPEAT is 1
# (notmuch search --output=messages --limit=50, whole processes; notmuch
# would merge the repeated copies, so it is not run for REPEAT > 1).
#
#   bench/index-large.sh [N] [REPEAT] [RUNS]    (defaults 100000 1 20)
#   make bench-large                             (1,000,000: 100000 10 20)
#   WORK=DIR bench/index-large.sh ...            keep the Maildir and index in
#                                                DIR and reuse them if there
#
# Needs python3, go, notmuch, /usr/share/dict/words; about 1.2 GB of disk
# per 100,000 messages of mail. Work directory: WORK, or mktemp under the
# CURRENT directory (removed unless KEEP=1).
set -euo pipefail
N=${1:-100000}
REPEAT=${2:-1}
RUNS=${3:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${WORK:-}" ]; then
  mkdir -p "$WORK"; W=$(cd "$WORK" && pwd)
else
  W=$(mktemp -d -p . idxlarge.XXXXXX); W=$(cd "$W" && pwd)
  trap '[ -z "${KEEP:-}" ] && rm -rf "$W"' EXIT
fi
if [ ! -f "$W/terms.json" ]; then
  python3 "$ROOT/bench/gen_mail.py" --out "$W/Maildir" -n "$N" --terms "$W/terms.json"
fi
(cd "$ROOT" && go build -o "$W/indexbench" ./index/internal/indexbench)
j() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$W/terms.json" "$1"; }
TS=$(j top_sender); MS=$(j mid_sender); CW=$(j common_word); MW=$(j mid_word); RW=$(j rare_word)
WA=$(j word_a); WB=$(j word_b); SW=$(j subject_word)
SM=(
  "from:$TS" "to:$MS" "$MW" "$RW" "after:2024-03-01 before:2024-04-01" "subject:$SW"
  "from:$TS $CW" "$WA OR $WB" "from:$TS after:2023-06-01 before:2024-01-01"
  "$MW after:2024-01-01 before:2025-01-01"
)
NM=(
  "from:$TS" "to:$MS" "$MW" "$RW" "date:2024-03-01..2024-03-31" "subject:$SW"
  "from:$TS and $CW" "$WA or $WB" "from:$TS and date:2023-06-01..2023-12-31"
  "$MW and date:2024-01-01..2024-12-31"
)
IX="$W/index-$REPEAT"
echo "# $(j messages) generated messages ($(python3 -c "print(f'{$(j bytes)/1e6:.0f}')") MB) x $REPEAT = $(( $(j messages) * REPEAT )) documents; $(nproc) CPU(s); user scope involved:$MS"
"$W/indexbench" -mail "$W/Maildir" -index "$IX" -repeat "$REPEAT" -reuse
echo "index: $(du -sm "$IX" | cut -f1) MB"
for r in 1 2 3; do
  "$W/indexbench" -mail "$W/Maildir" -index "$IX" -reuse -scale -user "$MS" -runs "$RUNS" "${SM[@]}" | tail -n +2 >"$W/scale.$r"
done
echo
echo "| query | total | median ms (process 1) | max ms (process 1) |"
echo "|---|---|---|---|"
grep '^scale' "$W/scale.1" | while IFS=$'\t' read -r _ q total med mx; do echo "| \`$q\` | $total | $med | $mx |"; done
python3 - "$W"/scale.1 "$W"/scale.2 "$W"/scale.3 <<'PY'
import sys, statistics as s
meds, p99s, rss = [], [], []
for f in sys.argv[1:]:
    for l in open(f):
        p = l.split()
        if p[0] == "all": meds.append(float(p[2])); p99s.append(float(p[3]))
        if p[0] == "vmhwm": rss.append(int(p[1]))
print()
print(f"sealmail, 3 processes: median {s.median(meds):.2f} ms (each: {', '.join(f'{m:.2f}' for m in meds)}), "
      f"p99 {s.median(p99s):.2f} ms (each: {', '.join(f'{m:.2f}' for m in p99s)}), "
      f"VmHWM {max(rss)/1024:.0f} MB (max of {', '.join(f'{r/1024:.0f}' for r in rss)})")
PY
[ "$REPEAT" -eq 1 ] || exit 0
command -v notmuch >/dev/null || { echo "notmuch missing: no yardstick" >&2; exit 0; }
export NOTMUCH_CONFIG="$W/notmuch-config"
printf '[database]\npath=%s\n[user]\nname=Bench\nprimary_email=bench@load.test\n[new]\ntags=inbox;\nignore=\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=false\n' "$W/Maildir" >"$NOTMUCH_CONFIG"
if [ ! -d "$W/Maildir/.notmuch" ]; then
  n0=$(date +%s.%N); notmuch new --quiet; n1=$(date +%s.%N)
  echo "notmuch new: $(python3 -c "print(f'{$n1-$n0:.0f}')") s"
fi
python3 - "$RUNS" "$MS" "${NM[@]}" <<'PY'
import subprocess, sys, time, statistics as s
runs, user, qs = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
qs = [q for b in qs for q in (b, f"({b}) and (from:{user} or to:{user})")]
ts = {q: [] for q in qs}
for q in qs:  # warm-up
    subprocess.run(["notmuch", "search", "--output=messages", "--limit=50", "--sort=newest-first", q], capture_output=True, check=True)
for _ in range(runs):
    for q in qs:
        t = time.perf_counter()
        subprocess.run(["notmuch", "search", "--output=messages", "--limit=50", "--sort=newest-first", q], capture_output=True, check=True)
        ts[q].append(time.perf_counter() - t)
every = sorted(x for v in ts.values() for x in v)
print(f"notmuch search (whole process): median {s.median(every)*1e3:.2f} ms, p99 {every[min(len(every)-1, len(every)*99//100)]*1e3:.2f} ms over {len(every)} runs")
PY
