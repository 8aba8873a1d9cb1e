#!/bin/sh
# Build dist/sealmail_VERSION-1_amd64.deb (make deb): the static binary, its man
# pages and completions (sealmail gendocs), copyright, changelog, then nfpm.
# Run from the repository root. Environment (the Makefile sets it):
#   GO, NFPM (a `go run` argument: module@version), DIST, MAINTAINER.
set -eu

GO=${GO:-go}
NFPM=${NFPM:?NFPM unset: run make deb}
DIST=${DIST:-dist}
MAINTAINER=${MAINTAINER:-sealmail maintainers <sealmail@example.org>}

# Version: a tag vX.Y.Z gives X.Y.Z, commits after it +N.gHASH; without a
# tag 0.0~gHASH; a pre-release -rc1 becomes ~rc1 (sorts before the release);
# uncommitted changes add +dirty. Debian-valid in every case.
describe=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
case "$describe" in
v[0-9]*|[0-9]*)
	VERSION=$(printf '%s\n' "${describe#v}" | sed -e 's/-dirty$/+dirty/' -e 's/-\([0-9][0-9]*\)-g\([0-9a-f]*\)/+\1.g\2/' -e 's/-/~/g') ;;
*)
	VERSION=0.0~g$(printf '%s\n' "$describe" | sed -e 's/-dirty$/+dirty/') ;;
esac
case "$VERSION" in
*[!A-Za-z0-9.+~]*) echo "build.sh: version $VERSION from '$describe' is not a Debian version" >&2; exit 1 ;;
esac
# Reproducible dates: the last commit's.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

STAGE=$DIST/stage
rm -rf "$STAGE"
mkdir -p "$STAGE"

CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
	-o "$STAGE/sealmail" ./cmd/sealmail

"$STAGE/sealmail" gendocs --out "$STAGE"
gzip -9n "$STAGE"/man/*.1

# The unit as in packaging/, with the binary where the package puts it.
for unit in sealmail.service sealmail-access.service; do
	sed 's|/usr/local/bin/sealmail|/usr/bin/sealmail|g' "packaging/$unit" >"$STAGE/$unit"
	grep -q '^ExecStart=/usr/bin/sealmail ' "$STAGE/$unit"
done

# copyright (machine-readable, copyright-format 1.0). The binary links the
# Go modules listed in the last paragraph; each keeps its own licence.
{
	cat <<'HEAD'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sealmail
Upstream-Contact: https://github.com/sealmail/sealmail/issues
Source: https://github.com/sealmail/sealmail

Files: *
Copyright: the sealmail contributors
License: Apache-2.0
Comment: The binary /usr/bin/sealmail also contains these Go modules, each
 under its own licence (see the module's LICENSE file):
HEAD
	"$GO" version -m "$STAGE/sealmail" | awk '$1 == "dep" { print " " $2 " " $3 }'
	cat <<'SMTP'

Files: third_party/go-smtp/*
Copyright: 2010 The Go Authors
 2014 Gleez Technologies
 2016 emersion
 2016 Proton Technologies AG
License: Expat
Comment: go-smtp with the patches listed in third_party/go-smtp/PATCHES.md.

License: Apache-2.0
 On Debian systems, the complete text of the Apache License, Version 2.0,
 is in /usr/share/common-licenses/Apache-2.0.

License: Expat
SMTP
	sed -n '/^Permission is hereby granted/,$p' third_party/go-smtp/LICENSE | sed -e 's/^$/./' -e 's/^/ /'
} >"$STAGE/copyright"

# changelog.Debian.gz: one entry for this build.
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
printf 'sealmail (%s-1) unstable; urgency=medium\n\n  * Built from git %s (%s).\n\n -- %s  %s\n' \
	"$VERSION" "$commit" "$describe" "$MAINTAINER" "$date" | gzip -9n >"$STAGE/changelog.Debian.gz"

deb=$DIST/sealmail_${VERSION}-1_amd64.deb
rm -f "$deb"
sed -e "s|\${STAGE}|$STAGE|g" -e "s|\${VERSION}|$VERSION|g" -e "s|\${MAINTAINER}|$MAINTAINER|g" \
	packaging/deb/nfpm.yaml >"$STAGE/nfpm.yaml"
"$GO" run "$NFPM" package --config "$STAGE/nfpm.yaml" --packager deb --target "$deb" >&2
echo "$deb"
