// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"bytes"
)

// OpenDocument (OASIS ODF 1.2): the body is content.xml, the title and
// keywords meta.xml. All character data of content.xml is text.
var (
	odfContentSpec = &xmlSpec{
		sep: map[string]string{"p": "\n", "h": "\n", "tab": "\t", "s": " ", "line-break": "\n", "table-cell": "\t", "table-row": "\n"},
	}
	odfMetaSpec = &xmlSpec{
		text: map[string]bool{"title": true, "subject": true, "description": true, "keyword": true, "initial-creator": true, "creator": true},
		sep:  map[string]string{"title": "\n", "subject": "\n", "description": "\n", "keyword": "\n", "initial-creator": "\n", "creator": "\n"},
	}
)

// odf writes the text of an ODT, ODS or ODP package.
func (j *job) odf(data []byte) {
	zr, err := openZip(data)
	if err != nil {
		j.fail(ReasonMalformed)
		return
	}
	members := map[string]int{}
	for i, f := range zr.File {
		members[f.Name] = i
	}
	// ODF 1.2 part 3 §4.8: an encrypted member is listed with
	// <manifest:encryption-data> in the manifest.
	if i, ok := members["META-INF/manifest.xml"]; ok {
		if b, err := j.readMember(zr.File[i], 1<<20); err == nil && bytes.Contains(b, []byte("encryption-data")) {
			j.fail(ReasonEncrypted)
			return
		}
	}
	for _, p := range []struct {
		name string
		spec *xmlSpec
	}{{"content.xml", odfContentSpec}, {"meta.xml", odfMetaSpec}} {
		i, ok := members[p.name]
		if !ok {
			if p.name == "content.xml" {
				j.fail(ReasonMalformed)
			}
			continue
		}
		j.problem(j.xmlMember(zr.File[i], p.spec))
	}
}
