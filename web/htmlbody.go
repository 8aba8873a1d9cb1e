// SPDX-License-Identifier: Apache-2.0

package web

import (
	"bytes"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// An HTML body is shown in a sandboxed frame whose response has its own
// policy (bodyCSP): no script runs, nothing is loaded from anywhere, no
// form is sent. That is the guard. sanitizeHTML is a second one: it keeps
// only elements and attributes that format text (an allow list), so that
// what the frame gets holds no script, event handler, remote image, form,
// frame, plugin, meta refresh or style that loads anything in the first
// place, and links open only when clicked, in a new tab.

// dropped are elements removed with everything inside them.
var dropped = map[atom.Atom]bool{
	atom.Script: true, atom.Noscript: true, atom.Template: true, atom.Iframe: true, atom.Frame: true,
	atom.Frameset: true, atom.Object: true, atom.Embed: true, atom.Applet: true, atom.Param: true,
	atom.Audio: true, atom.Video: true, atom.Source: true, atom.Track: true, atom.Canvas: true,
	atom.Svg: true, atom.Math: true, atom.Input: true, atom.Button: true, atom.Select: true,
	atom.Textarea: true, atom.Option: true, atom.Base: true, atom.Link: true, atom.Meta: true,
	atom.Title: true, atom.Dialog: true, atom.Xmp: true, atom.Plaintext: true, atom.Noembed: true,
	atom.Noframes: true,
}

// kept are the elements kept (with their allowed attributes); any other
// element is replaced by its content.
var kept = map[atom.Atom]bool{
	atom.Html: true, atom.Head: true, atom.Body: true, atom.Style: true,
	atom.A: true, atom.Abbr: true, atom.Address: true, atom.B: true, atom.Big: true, atom.Blockquote: true,
	atom.Br: true, atom.Caption: true, atom.Center: true, atom.Cite: true, atom.Code: true, atom.Col: true,
	atom.Colgroup: true, atom.Dd: true, atom.Del: true, atom.Div: true, atom.Dl: true, atom.Dt: true,
	atom.Em: true, atom.Font: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true,
	atom.H5: true, atom.H6: true, atom.Hr: true, atom.I: true, atom.Img: true, atom.Ins: true,
	atom.Kbd: true, atom.Li: true, atom.Mark: true, atom.Ol: true, atom.P: true, atom.Pre: true,
	atom.Q: true, atom.S: true, atom.Small: true, atom.Span: true, atom.Strike: true, atom.Strong: true,
	atom.Sub: true, atom.Sup: true, atom.Table: true, atom.Tbody: true, atom.Td: true, atom.Tfoot: true,
	atom.Th: true, atom.Thead: true, atom.Tr: true, atom.Tt: true, atom.U: true, atom.Ul: true,
}

// keptAttrs are the attributes kept on kept elements (href and src only
// where they pass their checks).
var keptAttrs = map[string]bool{
	"align": true, "valign": true, "width": true, "height": true, "border": true, "cellpadding": true,
	"cellspacing": true, "bgcolor": true, "color": true, "face": true, "size": true, "colspan": true,
	"rowspan": true, "alt": true, "title": true, "dir": true, "lang": true, "style": true, "class": true,
	"start": true, "type": true, "span": true, "scope": true, "nowrap": true,
}

// sanitizeHTML parses an HTML body as a browser does and renders what is
// left of it after the allow lists, as a document.
func sanitizeHTML(src string) []byte {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil { // a strings.Reader does not fail; html.Parse fails only on read errors
		return nil
	}
	clean(doc)
	var b bytes.Buffer
	if err := html.Render(&b, doc); err != nil {
		return nil
	}
	return b.Bytes()
}

// clean removes from n's subtree what the allow lists do not keep.
func clean(n *html.Node) {
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		switch c.Type {
		case html.ElementNode:
			switch {
			case c.Namespace != "" || dropped[c.DataAtom]:
				n.RemoveChild(c)
			case c.DataAtom == atom.Style && fetchesCSS(textOf(c)):
				n.RemoveChild(c)
			case kept[c.DataAtom]:
				c.Attr = cleanAttrs(c)
				clean(c)
			default:
				// Unwrap: its children take its place, and are cleaned in
				// turn.
				first := c.FirstChild
				for gc := c.FirstChild; gc != nil; {
					gnext := gc.NextSibling
					c.RemoveChild(gc)
					n.InsertBefore(gc, c)
					gc = gnext
				}
				n.RemoveChild(c)
				if first != nil {
					next = first
				}
			}
		case html.TextNode:
		default: // comments, doctypes
			n.RemoveChild(c)
		}
		c = next
	}
}

// cleanAttrs is n's attributes that are kept: the formatting ones, a
// link's href to the web or a mail address (then opened in a new tab,
// with no referrer and no handle on the opener), an image's src only as
// a data: URL of an image.
func cleanAttrs(n *html.Node) []html.Attribute {
	var out []html.Attribute
	link := false
	for _, a := range n.Attr {
		if a.Namespace != "" {
			continue
		}
		key := strings.ToLower(a.Key)
		switch {
		case key == "href" && n.DataAtom == atom.A:
			if u, err := url.Parse(strings.TrimSpace(a.Val)); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "mailto") {
				out, link = append(out, html.Attribute{Key: "href", Val: u.String()}), true
			}
		case key == "src" && n.DataAtom == atom.Img:
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "data:image/") {
				out = append(out, html.Attribute{Key: "src", Val: strings.TrimSpace(a.Val)})
			}
		case key == "style" && fetchesCSS(a.Val):
		case keptAttrs[key]:
			out = append(out, html.Attribute{Key: key, Val: a.Val})
		}
	}
	if link {
		out = append(out, html.Attribute{Key: "target", Val: "_blank"}, html.Attribute{Key: "rel", Val: "noopener noreferrer"})
	}
	return out
}

// fetchesCSS reports whether CSS may name something to load (url(),
// image-set(), @import, @font-face) or hides what it says in escapes:
// such a style sheet or attribute is dropped whole.
func fetchesCSS(css string) bool {
	l := strings.ToLower(css)
	for _, s := range []string{"url(", "image-set(", "@import", "@font-face", "expression(", `\`} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// textOf is the text inside n (a style element holds one text node).
func textOf(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}
