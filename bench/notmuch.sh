# notmuch.sh - sourced by the benchmarks that use notmuch as their yardstick.
#
# notmuch_need stops the benchmark if notmuch or the word list the mail
# generator uses is missing.
notmuch_need() {
  local need=()
  command -v notmuch >/dev/null || need+=(notmuch)
  [ -f /usr/share/dict/words ] || need+=(wamerican)
  if [ ${#need[@]} -gt 0 ]; then
    echo "missing: apt-get install ${need[*]}" >&2
    exit 1
  fi
}

# notmuch_config FILE MAILDIR writes the notmuch configuration the
# yardstick runs with (docs/benchmarks.md, "How the yardsticks are
# measured"): the database in MAILDIR/.notmuch, nothing ignored or excluded.
notmuch_config() {
  cat >"$1" <<EOF
[database]
path=$2
[user]
name=Bench
primary_email=bench@load.test
[new]
tags=inbox;
ignore=
[search]
exclude_tags=
[maildir]
synchronize_flags=false
EOF
}
