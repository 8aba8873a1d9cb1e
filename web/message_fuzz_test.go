// SPDX-License-Identifier: Apache-2.0

package web

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sealmail/sealmail/reader"
)

// FuzzSanitizeHTML: whatever the input, what sanitizeHTML renders parses
// back to kept elements with kept attributes only (links to the web or
// mail in a new tab, images from data: URLs, no style that loads), and
// sanitising it again changes nothing.
func FuzzSanitizeHTML(f *testing.F) {
	for _, s := range []string{`<p onclick="x">a</p>`, `<a href="javascript:x">l</a>`, `<img src="http://x/y">`,
		`<svg><script>x</script></svg>`, `<style>@import "x"</style>`, `<table><td><form><input></form>`,
		`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`, `<math><mi><style><img src=x onerror=1>`,
		`<a href="https://x"><a href="https://y">nested</a></a>`, "<p style=\"color:\\72 ed\">e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := sanitizeHTML(in)
		doc, err := html.Parse(strings.NewReader(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		checkClean(t, doc, string(out))
		if again := sanitizeHTML(string(out)); string(again) != string(out) {
			t.Errorf("not stable:\n%q\n%q", out, again)
		}
	})
}

func checkClean(t *testing.T, n *html.Node, out string) {
	t.Helper()
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch c.Type {
		case html.ElementNode:
			if c.Namespace != "" || !kept[c.DataAtom] || dropped[c.DataAtom] {
				t.Fatalf("element %s (%s) left in %q", c.Data, c.Namespace, out)
			}
			if c.Data == "style" && fetchesCSS(textOf(c)) {
				t.Fatalf("a style sheet that loads left in %q", out)
			}
			for _, a := range c.Attr {
				switch {
				case a.Key == "href" && c.Data == "a":
					u, err := url.Parse(a.Val)
					if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "mailto") {
						t.Fatalf("href %q left in %q", a.Val, out)
					}
				case a.Key == "src" && c.Data == "img":
					if !strings.HasPrefix(strings.ToLower(a.Val), "data:image/") {
						t.Fatalf("src %q left in %q", a.Val, out)
					}
				case (a.Key == "target" && a.Val == "_blank" || a.Key == "rel" && a.Val == "noopener noreferrer") && c.Data == "a":
				case a.Key == "style" && fetchesCSS(a.Val):
					t.Fatalf("style %q left in %q", a.Val, out)
				case !keptAttrs[a.Key] || a.Namespace != "":
					t.Fatalf("attribute %s=%q left in %q", a.Key, a.Val, out)
				}
			}
		case html.TextNode:
		default:
			t.Fatalf("node type %d left in %q", c.Type, out)
		}
		checkClean(t, c, out)
	}
}

// FuzzMessageView: any message makes a page within the bounds: the text
// shown is at most maxShown bytes of input (UTF-8 may take three bytes
// for one of windows-1252), and attachments come from parts walked.
func FuzzMessageView(f *testing.F) {
	raw, rep, _ := sampleMail("http://127.0.0.1:9")
	f.Add(raw)
	f.Add(rep)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E4=\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mv := messageViewOf(&reader.Message{ID: 1, Original: data})
		if len(mv.Text) > 3*maxShown+2*maxParts {
			t.Fatalf("text of %d bytes shown", len(mv.Text))
		}
		if len(mv.Attachments) > maxParts {
			t.Fatalf("%d attachments listed", len(mv.Attachments))
		}
		for _, a := range mv.Attachments {
			if a.Size > int64(len(data)) {
				t.Fatalf("attachment of %d bytes from a message of %d", a.Size, len(data))
			}
		}
	})
}
