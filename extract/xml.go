// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"encoding/xml"
	"errors"
	"io"
)

// xmlSpec says which parts of an XML document are its text. Elements are
// matched by local name (OOXML and OpenDocument prefixes vary).
type xmlSpec struct {
	// text lists the elements whose character data is text; nil means all
	// character data is.
	text map[string]bool
	// sep maps elements to what their end writes: "\n" for paragraphs,
	// "\t" for tabs and cells.
	sep map[string]string
	// attrs maps an element to its attribute that is text (a sheet's name).
	attrs map[string]string
	// sheet makes a <v> inside a <c t="s"> not text: in a SpreadsheetML
	// sheet it is an index into the shared strings, which are read once
	// from their own part (so a sheet that repeats one string a million
	// times does not repeat its text).
	sheet bool
}

// xmlText writes the text of one XML document. encoding/xml does not expand
// entities a document declares (no "billion laughs") and reads no external
// resource; memory is bounded by the longest token, and the reader by the
// unpacked bound.
func (j *job) xmlText(r io.Reader, spec *xmlSpec) error {
	d := xml.NewDecoder(r)
	d.Strict = false
	d.Entity = xml.HTMLEntity
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		return in, nil // OOXML and ODF are UTF-8; job.write cleans the rest
	}
	inText := 0
	shared := false
	for {
		if j.stopped() {
			return errFull
		}
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if spec.sheet && name == "c" {
				shared = false
				for _, a := range t.Attr {
					if a.Name.Local == "t" && a.Value == "s" {
						shared = true
					}
				}
			}
			if spec.text[name] && !(shared && name == "v") {
				inText++
			}
			if an, ok := spec.attrs[name]; ok {
				for _, a := range t.Attr {
					if a.Name.Local == an {
						j.line(a.Value)
					}
				}
			}
		case xml.EndElement:
			name := t.Name.Local
			if spec.text[name] && inText > 0 && !(shared && name == "v") {
				inText--
			}
			if name == "c" {
				shared = false
			}
			if s, ok := spec.sep[name]; ok {
				j.write(s)
			}
		case xml.CharData:
			if spec.text == nil || inText > 0 {
				j.write(string(t))
			}
		}
	}
}
