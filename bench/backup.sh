#!/usr/bin/env bash
# backup.sh - how long sealmail's backup, verify --backup and restore take,
# against the yardstick of a plain copy (cp -a, then sync -f) of the same
# bytes in the same run, RUNS times each (median). The figures are what a
# restore drill measures (docs/operations.md, "RPO and RTO").
#
#   bench/backup.sh                  # 2000 messages of 50 KB, 3 runs
#   RUNS=5 N=4000 SIZE=100000 bench/backup.sh
#
# Run it from the repository root; everything goes to a temp dir under
# ./var/bench on the repository's disk. The page cache is not dropped (the
# machine may be shared): the figures are for data read from memory, the
# writes are fsync'd.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-2000}
SIZE=${SIZE:-50000}
[ -x bin/sealmail ] || make build >/dev/null
mkdir -p var/bench
WORK=$(mktemp -d var/bench/backup.XXXXXX)
trap 'chmod -R u+w "$WORK"; rm -rf "$WORK"' EXIT
SM=./bin/sealmail

# An mbox of incompressible messages, imported (import is deterministic
# and needs no daemon).
mbox() {
  python3 - "$1" "$2" "$3" <<'PY'
import base64, os, sys
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    for i in range(n):
        body = base64.encodebytes(os.urandom(size * 3 // 4)).decode()
        f.write(f"From bench@example.com Mon Jan  2 15:04:05 2023\nSubject: bench {i}\nMessage-ID: <{i}.{os.getpid()}@bench>\n\n{body}\n")
PY
}
mbox "$WORK/all.mbox" "$N" "$SIZE"
$SM init --data "$WORK/a" >/dev/null 2>&1
$SM import --data "$WORK/a" --mbox "$WORK/all.mbox" --owner bench@example.com --log-level error >/dev/null
BYTES=$(du -sb "$WORK/a/segments" | cut -f1)

now() { date +%s.%N; }
median() { python3 -c 'import sys,statistics as s; print(f"{s.median(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }
elapsed() { python3 -c "print($2-$1)"; }

declare -a cp_a bk inc vf cp_t rs
for r in $(seq "$RUNS"); do
  rm -rf "$WORK/copy" "$WORK/t" "$WORK/r" "$WORK/tcopy"; mkdir "$WORK/t"
  t0=$(now); cp -a "$WORK/a" "$WORK/copy"; sync -f "$WORK/copy"; t1=$(now); cp_a+=("$(elapsed "$t0" "$t1")")
  t0=$(now); $SM backup --data "$WORK/a" --to "$WORK/t" >/dev/null; t1=$(now); bk+=("$(elapsed "$t0" "$t1")")
  mbox "$WORK/more.mbox" 20 "$SIZE"
  $SM import --data "$WORK/a" --mbox "$WORK/more.mbox" --owner bench@example.com --log-level error >/dev/null
  t0=$(now); $SM backup --data "$WORK/a" --to "$WORK/t" >/dev/null; t1=$(now); inc+=("$(elapsed "$t0" "$t1")")
  t0=$(now); $SM verify --backup "$WORK/t" >/dev/null; t1=$(now); vf+=("$(elapsed "$t0" "$t1")")
  t0=$(now); cp -a "$WORK/t" "$WORK/tcopy"; sync -f "$WORK/tcopy"; t1=$(now); cp_t+=("$(elapsed "$t0" "$t1")")
  t0=$(now); $SM restore --from "$WORK/t" --data "$WORK/r" --identity "$WORK/a/identity.txt" --log-level error >/dev/null; t1=$(now); rs+=("$(elapsed "$t0" "$t1")")
  $SM verify --data "$WORK/r" --log-level error >/dev/null
done

echo "# sealmail backup and restore vs cp -a + sync, $(nproc) CPUs, $RUNS runs (median), $(date -u +%FT%TZ)"
echo "# archive: $N messages of $SIZE bytes, segments $((BYTES / 1048576)) MiB"
m_cp=$(median "${cp_a[@]}"); m_bk=$(median "${bk[@]}"); m_inc=$(median "${inc[@]}")
m_vf=$(median "${vf[@]}"); m_ct=$(median "${cp_t[@]}"); m_rs=$(median "${rs[@]}")
printf "cp -a archive      %6ss\n" "$m_cp"
printf "full backup        %6ss  %5.2f x cp\n" "$m_bk" "$(python3 -c "print($m_bk/$m_cp)")"
printf "incremental (+20)  %6ss\n" "$m_inc"
printf "verify --backup    %6ss\n" "$m_vf"
printf "cp -a target       %6ss\n" "$m_ct"
printf "restore            %6ss  %5.2f x cp\n" "$m_rs" "$(python3 -c "print($m_rs/$m_ct)")"
