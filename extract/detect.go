// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"bytes"
	"path"
	"strings"
)

var (
	magicPDF  = []byte("%PDF-")
	magicZIP  = []byte("PK\x03\x04")
	magicZIP0 = []byte("PK\x05\x06") // an empty archive: end of central directory only
	magicOLE  = []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	magicRTF  = []byte(`{\rtf`)
	magicTNEF = []byte("\x78\x9f\x3e\x22") // 0x223E9F78 little-endian (MS-OXTNEF §2.1.3.1)
)

// byType maps declared MIME types to formats.
var byType = map[string]Format{
	"application/pdf":          PDF,
	"application/x-pdf":        PDF,
	"application/msword":       DOC,
	"application/vnd.ms-excel": XLS,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   DOCX,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         XLSX,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": PPTX,
	"application/vnd.oasis.opendocument.text":                                   ODT,
	"application/vnd.oasis.opendocument.spreadsheet":                            ODS,
	"application/vnd.oasis.opendocument.presentation":                           ODP,
	"application/rtf":              RTF,
	"text/rtf":                     RTF,
	"application/zip":              ZIP,
	"application/x-zip-compressed": ZIP,
	"application/ms-tnef":          TNEF,
	"application/vnd.ms-tnef":      TNEF,
}

// byExt maps file name extensions to formats.
var byExt = map[string]Format{
	".pdf": PDF, ".doc": DOC, ".dot": DOC, ".xls": XLS, ".xlt": XLS,
	".docx": DOCX, ".docm": DOCX, ".dotx": DOCX, ".xlsx": XLSX, ".xlsm": XLSX, ".pptx": PPTX, ".pptm": PPTX, ".ppsx": PPTX,
	".odt": ODT, ".ott": ODT, ".ods": ODS, ".ots": ODS, ".odp": ODP, ".otp": ODP,
	".rtf": RTF, ".zip": ZIP,
	".txt": Text, ".csv": Text, ".tsv": Text, ".log": Text, ".md": Text, ".json": Text, ".xml": Text,
	".htm": Text, ".html": Text, ".ics": Text, ".vcf": Text, ".eml": Text,
}

// Detect names the format of an attachment from its first bytes, its
// declared type and its name, or returns "" if it is none this package
// reads. The magic bytes win over the declaration: a PDF named invoice.doc
// is a PDF. It is cheap and reads no more than the first kilobyte, so a
// caller can decide without a sandbox whether an attachment is worth one.
// A ZIP-based format is told apart from a plain archive by its name or type
// here, and by its content during extraction.
func Detect(data []byte, contentType, name string) Format {
	declared := byType[strings.ToLower(contentType)]
	if f, ok := byExt[strings.ToLower(path.Ext(name))]; ok && declared == "" {
		declared = f
	}
	head := data[:min(len(data), 1024)]
	switch {
	case bytes.Contains(head, magicPDF):
		return PDF
	case bytes.HasPrefix(data, magicRTF):
		return RTF
	case bytes.HasPrefix(data, magicTNEF):
		return TNEF
	case bytes.HasPrefix(data, magicZIP), bytes.HasPrefix(data, magicZIP0):
		switch declared {
		case DOCX, XLSX, PPTX, ODT, ODS, ODP:
			return declared
		}
		return ZIP
	case bytes.HasPrefix(data, magicOLE):
		switch declared {
		case DOC, XLS:
			return declared
		}
		return oleKind(data)
	}
	if declared == Text {
		return Text
	}
	return ""
}

// oleKind tells Word and Excel files apart by the names of
// their main streams (UTF-16LE in the compound file's directory), for an
// OLE file whose name and type do not say.
func oleKind(data []byte) Format {
	for _, k := range []struct {
		stream string
		f      Format
	}{{"WordDocument", DOC}, {"Workbook", XLS}, {"Book", XLS}} {
		if bytes.Contains(data, utf16le(k.stream)) {
			return k.f
		}
	}
	return ""
}

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return b
}
