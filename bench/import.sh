#!/usr/bin/env bash
# import.sh - sealmail's import benchmark (not in make test): the import
# rate (msg/s, MB/s) of `sealmail import --mbox` against mb2md on the same
# mbox, of `sealmail import --pst` against readpst on the same PST, and the
# peak RSS of importing a generated mbox of SIZE_MB (default 1024 MB).
#
#   bench/import.sh                      # 5000 generated messages, 1 GB mbox
#   N=2000 SIZE_MB=256 bench/import.sh
#
# Needs python3, mb2md (Debian mb2md), readpst (pst-utils) and GNU time.
# Work files go to a temp dir under ./var/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
SIZE_MB=${SIZE_MB:-1024}
WORKERS=${WORKERS:-16}
mkdir -p var/bench
WORK=$(mktemp -d var/bench/import.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
make build >/dev/null
SM=$PWD/bin/sealmail

echo "== generating $N messages"
python3 bench/gen_mail.py --out "$WORK/Maildir" -n "$N" >/dev/null
# mboxo the way Python's mailbox writes it (From lines quoted with >).
python3 - "$WORK/Maildir" "$WORK/mail.mbox" <<'EOF'
import mailbox, sys
src, dst = mailbox.Maildir(sys.argv[1], factory=None, create=False), mailbox.mbox(sys.argv[2])
dst.lock()
for key in sorted(src.keys()):
    dst.add(src.get_bytes(key))
dst.flush(); dst.unlock()
EOF
BYTES=$(stat -c %s "$WORK/mail.mbox")

# rate NAME SECONDS: msg/s and MB/s for N messages of BYTES.
rate() { python3 -c "import sys; s=float(sys.argv[2]); print(f'{sys.argv[1]:28s} {s:8.2f} s  {$N/s:8.0f} msg/s  {$BYTES/s/1e6:7.2f} MB/s')" "$1" "$2"; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }; t1=$(date +%s.%N); python3 -c "print($t1-$t0)"; }

echo "== mbox: $N messages, $((BYTES / 1000000)) MB"
"$SM" init --data "$WORK/a1" >/dev/null 2>&1
rate "sealmail import --mbox" "$(timed "$SM" import --data "$WORK/a1" --mbox "$WORK/mail.mbox" --workers "$WORKERS")"
rate "sealmail re-run (skips)" "$(timed "$SM" import --data "$WORK/a1" --mbox "$WORK/mail.mbox" --workers "$WORKERS")"
rate "mb2md (mbox -> Maildir)" "$(timed mb2md -s "$PWD/$WORK/mail.mbox" -d "$PWD/$WORK/mb2md")"

echo "== pst: the same $N messages"
"$SM" reindex --data "$WORK/a1" --identity "$WORK/a1/identity.txt" >/dev/null 2>&1
"$SM" export --data "$WORK/a1" --query '*' --format pst --out "$WORK/mail.pst" --identity "$WORK/a1/identity.txt" >/dev/null 2>&1
"$SM" init --data "$WORK/a2" >/dev/null 2>&1
rate "sealmail import --pst" "$(timed "$SM" import --data "$WORK/a2" --pst "$WORK/mail.pst" --workers "$WORKERS")"
mkdir -p "$WORK/readpst"
rate "readpst -e (PST -> .eml)" "$(timed readpst -q -e -o "$WORK/readpst" "$WORK/mail.pst")"

echo "== RSS: a generated mbox of $SIZE_MB MB (copies of the $N messages, each made unique)"
python3 - "$WORK/mail.mbox" "$WORK/big.mbox" "$SIZE_MB" <<'EOF'
import sys
src, dst, want = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'wb'), int(sys.argv[3]) * 1000000
n = 0
while dst.tell() < want:
    dst.write(src.replace(b'\nMessage-ID: <', b'\nMessage-ID: <copy%d.' % n))
    n += 1
EOF
BIG=$(stat -c %s "$WORK/big.mbox")
"$SM" init --data "$WORK/a3" >/dev/null 2>&1
/usr/bin/time -f "%e s elapsed, max RSS %M KB" "$SM" import --data "$WORK/a3" --mbox "$WORK/big.mbox" --workers "$WORKERS" 2>&1 >/dev/null | tail -1 |
  sed "s/^/sealmail import --mbox of $((BIG / 1000000)) MB: /"
