#!/bin/sh
# make run: a DEVELOPMENT archive and reader under ./var, NOT for production:
# the identity that decrypts the archive lies next to it, and the users'
# passwords are printed (and kept in ./var/users.txt).
#
# The receiver (`sealmail serve`) takes SMTP on $SMTP; the reader (`sealmail
# access`) serves HTTPS on $HTTPS with a self-signed certificate. Both run as
# you, so the reader reaches the receiver's control socket as its own user.
# Ctrl-C stops both.
set -eu

BIN=${BIN:-./bin/sealmail}
VAR=${VAR:-./var}
DATA=${DATA:-$VAR/archive}
STATE=${STATE:-$VAR/access}
SMTP=${SMTP:-127.0.0.1:2525}
HTTPS=${HTTPS:-127.0.0.1:8443}

mkdir -p "$VAR"
chmod 700 "$VAR"
if [ ! -f "$DATA/archive.json" ]; then
	echo "make run: creating a DEVELOPMENT archive in $DATA (identity in $DATA/identity.txt; not for production)"
	"$BIN" init --data "$DATA"
fi
if [ "$("$BIN" user list --state "$STATE" --json)" = "[]" ]; then
	echo "make run: creating the first users (their passwords are kept in $VAR/users.txt; not for production)"
	umask 077
	{
		"$BIN" user add admin --state "$STATE" --role admin
		"$BIN" user add officer --state "$STATE" --role officer
	} | tee "$VAR/users.txt"
else
	echo "make run: users exist in $STATE (their first credentials are in $VAR/users.txt; \`$BIN user reset NAME --state $STATE\` makes new ones)"
fi

"$BIN" serve --data "$DATA" --smtp "$SMTP" &
serve=$!
trap 'kill "$serve" 2>/dev/null; wait "$serve" 2>/dev/null' EXIT INT TERM

cat <<EOT

make run: the receiver takes SMTP on $SMTP; the reader serves
  the web interface: https://$HTTPS/  (a self-signed certificate: its fingerprint is in the log below)
  the API:           https://$HTTPS/api/v1
  sign in with a user above: the password and the 6-digit code of the otpauth:// URI
  (add it to an authenticator app, or: oathtool --totp -b SECRET):
    curl -k https://$HTTPS/api/v1/session -d '{"user":"officer","password":"…","totp":"123456"}'
    curl -k -H 'Authorization: Bearer sm1_…' 'https://$HTTPS/api/v1/search?q=from:alice'
  the command line, as in the README:
    export SEALMAIL_DATA=$DATA SEALMAIL_READER=$STATE/reader.sock
    $BIN search 'subject:hello'

EOT
"$BIN" access --data "$DATA" --state "$STATE" --listen "$HTTPS" --identity "$DATA/identity.txt"
