#!/usr/bin/env bash
# Regenerates extract/testdata/corpus and testdata/hostile. The documents are
# written by LibreOffice (Debian: libreoffice-writer-nogui
# libreoffice-calc-nogui libreoffice-impress-nogui) from text made here, so
# they are real Office and OpenDocument files and carry no third-party
# content. Every document holds the sentence below and one word naming its
# format ("sealdocx", "sealpdf", …) that the tests search for.
set -euo pipefail
cd "$(dirname "$0")"
out=corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp # LibreOffice's profile

sentence="Quarterly invoice 4711 for the Zanzibar freight contract. Überweisung bis Freitag."

lo() { # lo FORMAT FILTER INPUT [INFILTER]
	local args=(--headless --convert-to "$1" --outdir "$tmp/out")
	[ -n "${4:-}" ] && args+=(--infilter="$4")
	soffice "${args[@]}" "$3" >/dev/null 2>&1
}

rm -rf "$out" && mkdir -p "$out" "$tmp/out"
for f in docx odt doc rtf pdf; do
	printf '%s\nThe reference word is seal%s.\n' "$sentence" "$f" > "$tmp/w-$f.txt"
	lo "$f" "" "$tmp/w-$f.txt" "Text (encoded):UTF8,LF,,"
	mv "$tmp/out/w-$f.$f" "$out/sample.$f"
done
for f in xlsx ods xls; do
	printf 'item,amount,note\nZanzibar freight,4711,seal%s\nÜberweisung,12.5,Quarterly invoice\n' "$f" > "$tmp/c-$f.csv"
	lo "$f" "" "$tmp/c-$f.csv" "CSV:44,34,76"
	mv "$tmp/out/c-$f.$f" "$out/sample.$f"
done
for f in pptx odp; do
	cat > "$tmp/p-$f.fodp" <<FODP
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.presentation">
 <office:body><office:presentation>
  <draw:page draw:name="one"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="4cm"><draw:text-box><text:p>$sentence</text:p></draw:text-box></draw:frame></draw:page>
  <draw:page draw:name="two"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="4cm"><draw:text-box><text:p>The reference word is seal$f.</text:p></draw:text-box></draw:frame></draw:page>
 </office:presentation></office:body></office:document>
FODP
	lo "$f" "" "$tmp/p-$f.fodp"
	mv "$tmp/out/p-$f.$f" "$out/sample.$f"
done

# Archives (python3's zipfile, deterministic dates): documents in a ZIP, and
# a ZIP inside a ZIP.
python3 - "$out" <<'PY'
import sys, zipfile
out = sys.argv[1]
def z(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 5)), data, zipfile.ZIP_DEFLATED)
rd = lambda p: open(p, "rb").read()
z(f"{out}/sample.zip", [("contracts/sample.docx", rd(f"{out}/sample.docx")),
                        ("notes.txt", "The reference word is sealzip.\n".encode()),
                        ("logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64))])
z(f"{out}/nested.zip", [("inner.zip", rd(f"{out}/sample.zip")), ("readme.txt", b"sealnested outer\n")])
PY
ls -l "$out"

# Hostile inputs: each must be bounded and reported.
python3 - hostile <<'PY'
import sys, zipfile, zlib
out = sys.argv[1]
def zinfo(name):
    return zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 5))
# A ZIP bomb: four ZIPs of 40 MiB (each a stored member of zeros) that
# must be unpacked whole to be read, 160 MiB, more than the default
# 128 MiB bound, in about 160 KiB.
import io
inner = io.BytesIO()
with zipfile.ZipFile(inner, "w") as zf:
    zf.writestr(zinfo("zeros.bin"), bytes(40 << 20), zipfile.ZIP_STORED)
with zipfile.ZipFile(f"{out}/bomb.zip", "w") as zf:
    for i in range(4):
        zf.writestr(zinfo(f"inner{i}.zip"), inner.getvalue(), zipfile.ZIP_DEFLATED, 9)
# Twelve ZIPs nested in each other (beyond the default depth of 4).
data = b"sealdeep bottom\n"
name = "bottom.txt"
for i in range(12):
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zinfo(name), data, zipfile.ZIP_DEFLATED)
    data, name = buf.getvalue(), f"level{i}.zip"
open(f"{out}/deep.zip", "wb").write(data)
# PDFs written by hand (PDF 1.7, ISO 32000-1 §7.5): a page tree whose
# Kids point back at itself, and a page whose content stream unpacks to
# about 60 MiB of text operators.
def pdf(objs, path):
    body = b"%PDF-1.7\n"
    offs = []
    for i, o in enumerate(objs, 1):
        offs.append(len(body))
        body += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for o in offs:
        body += b"%010d 00000 n \n" % o
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    open(path, "wb").write(body)
pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"], f"{out}/loop.pdf")
ops = b"BT /F1 12 Tf 72 720 Td (sealhuge text that never ends) Tj ET\n" * (1 << 20)
stream = zlib.compress(ops, 9)
pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
     b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
     b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
     b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"], f"{out}/huge.pdf")
PY
ls -l hostile
