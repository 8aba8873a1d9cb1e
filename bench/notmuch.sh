# notmuch.sh - sourced by the benchmarks that use notmuch as their yardstick.
#
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
