// SPDX-License-Identifier: Apache-2.0

package extract

import (
	"strings"

	"golang.org/x/net/html"
)

// inlineTags are HTML elements that do not separate words.
var inlineTags = map[string]bool{
	"a": true, "b": true, "i": true, "u": true, "em": true, "strong": true, "span": true, "font": true,
	"small": true, "big": true, "sub": true, "sup": true, "abbr": true, "code": true, "tt": true,
	"s": true, "strike": true, "mark": true, "q": true, "cite": true, "o:p": true, "wbr": true,
}

// HTMLText returns the readable text of an HTML document: text nodes with
// entities decoded, block elements turned into line breaks, without markup,
// scripts or styles. Inline elements do not split words ("wo<b>rd</b>").
// Work and memory are linear in len(s).
func HTMLText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	b.Grow(len(s) / 2)
	skip := ""
	sep := func() {
		if n := b.Len(); n > 0 && !strings.HasSuffix(b.String()[n-1:], "\n") {
			b.WriteByte('\n')
		}
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == "" {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "template", "title", "head":
				if skip == "" {
					skip = string(name)
				}
			default:
				if !inlineTags[string(name)] {
					sep()
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if skip != "" && string(name) == skip {
				skip = ""
			} else if skip == "" && !inlineTags[string(name)] {
				sep()
			}
		}
	}
}
