// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"archive/zip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Office Open XML (ECMA-376) packages: which parts hold text, and how.
var (
	wordSpec = &xmlSpec{
		text: map[string]bool{"t": true, "delText": true}, // w:t runs, and deleted text of tracked changes
		sep:  map[string]string{"p": "\n", "tab": "\t", "br": "\n", "cr": "\n", "tc": "\t", "tr": "\n"},
	}
	drawingSpec = &xmlSpec{ // PresentationML slides and notes: a:t in a:p
		text: map[string]bool{"t": true},
		sep:  map[string]string{"p": "\n", "br": "\n", "tab": "\t"},
	}
	sharedStringsSpec = &xmlSpec{text: map[string]bool{"t": true}, sep: map[string]string{"si": "\n"}}
	sheetSpec         = &xmlSpec{
		text:  map[string]bool{"t": true, "v": true}, // inline strings and values; not formulas
		sep:   map[string]string{"c": "\t", "row": "\n"},
		sheet: true,
	}
	workbookSpec  = &xmlSpec{text: map[string]bool{}, attrs: map[string]string{"sheet": "name"}}
	corePropsSpec = &xmlSpec{ // docProps/core.xml: title, subject, creator, keywords, description
		text: map[string]bool{"title": true, "subject": true, "creator": true, "keywords": true, "description": true, "lastModifiedBy": true, "category": true},
		sep:  map[string]string{"title": "\n", "subject": "\n", "creator": "\n", "keywords": "\n", "description": "\n", "lastModifiedBy": "\n", "category": "\n"},
	}
)

// ooxmlParts lists, per format, the part name patterns read in order.
var ooxmlParts = map[Format][]struct {
	re   *regexp.Regexp
	spec *xmlSpec
}{
	DOCX: {
		{regexp.MustCompile(`^word/document\d*\.xml$`), wordSpec},
		{regexp.MustCompile(`^word/(header|footer|footnotes|endnotes|comments)\d*\.xml$`), wordSpec},
		{regexp.MustCompile(`^docProps/core\.xml$`), corePropsSpec},
	},
	XLSX: {
		{regexp.MustCompile(`^xl/workbook\.xml$`), workbookSpec},
		{regexp.MustCompile(`^xl/sharedStrings\.xml$`), sharedStringsSpec},
		{regexp.MustCompile(`^xl/worksheets/sheet\d+\.xml$`), sheetSpec},
		{regexp.MustCompile(`^xl/comments\d+\.xml$`), sharedStringsSpec},
		{regexp.MustCompile(`^docProps/core\.xml$`), corePropsSpec},
	},
	PPTX: {
		{regexp.MustCompile(`^ppt/slides/slide\d+\.xml$`), drawingSpec},
		{regexp.MustCompile(`^ppt/notesSlides/notesSlide\d+\.xml$`), drawingSpec},
		{regexp.MustCompile(`^docProps/core\.xml$`), corePropsSpec},
	},
}

// ooxml writes the text of a DOCX, XLSX or PPTX package.
func (j *job) ooxml(f Format, data []byte) {
	zr, err := openZip(data)
	if err != nil {
		j.fail(ReasonMalformed)
		return
	}
	for _, p := range ooxmlParts[f] {
		for _, m := range sortedMembers(zr, p.re) {
			if j.stopped() {
				return
			}
			j.problem(j.xmlMember(m, p.spec))
		}
	}
}

// xmlMember writes the text of one XML member.
func (j *job) xmlMember(m *zip.File, spec *xmlSpec) error {
	rc, err := j.openMember(m)
	if err != nil {
		return err
	}
	defer rc.Close()
	err = j.xmlText(rc, spec)
	j.write("\n")
	return err
}

var digits = regexp.MustCompile(`\d+`)

// sortedMembers returns the members matching re in document order: by the
// number in their name (slide2 before slide10), then by name.
func sortedMembers(zr *zip.Reader, re *regexp.Regexp) []*zip.File {
	var out []*zip.File
	for _, f := range zr.File {
		if re.MatchString(f.Name) {
			out = append(out, f)
		}
	}
	num := func(s string) int {
		n, _ := strconv.Atoi(digits.FindString(s[strings.LastIndexByte(s, '/')+1:]))
		return n
	}
	sort.SliceStable(out, func(a, b int) bool {
		na, nb := num(out[a].Name), num(out[b].Name)
		if na != nb {
			return na < nb
		}
		return out[a].Name < out[b].Name
	})
	return out
}
