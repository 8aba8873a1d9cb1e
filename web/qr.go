// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"html/template"
	"image/color"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// qrQuiet is the quiet zone around a QR code, in modules (ISO/IEC 18004
// §6.3.8: four modules wide).
const qrQuiet = 4

// qrSVG renders text as a QR code (error correction level M) in SVG: one
// path of the dark modules on a light square, with its quiet zone. The SVG
// goes into the page as it is (no image request, no data: URI, nothing for
// the CSP to allow); label is its accessible name. Only numbers and the
// escaped label go into it.
func qrSVG(text, label string) (template.HTML, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("web: QR code: %w", err)
	}
	n := code.Bounds().Dx()
	dark := func(x, y int) bool {
		return color.GrayModel.Convert(code.At(x, y)).(color.Gray).Y < 128
	}
	var d strings.Builder
	for y := range n {
		for x := 0; x < n; {
			if !dark(x, y) {
				x++
				continue
			}
			start := x
			for x < n && dark(x, y) {
				x++
			}
			// A run of dark modules on row y: one rectangle.
			fmt.Fprintf(&d, "M%d %dh%dv1h-%dz", start+qrQuiet, y+qrQuiet, x-start, x-start)
		}
	}
	size := n + 2*qrQuiet
	return template.HTML(fmt.Sprintf(`<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" shape-rendering="crispEdges">`+
		`<rect width="%d" height="%d" fill="#fff"/><path d="%s" fill="#000"/></svg>`,
		size, size, template.HTMLEscapeString(label), size, size, d.String())), nil
}

// totpQR is the QR code of an otpauth:// URI, and the URI as a link (which
// opens an authenticator app on the phone that shows the page).
func totpQR(uri, label string) (template.HTML, template.URL, error) {
	if !strings.HasPrefix(uri, "otpauth://totp/") {
		return "", "", fmt.Errorf("web: not a TOTP URI")
	}
	svg, err := qrSVG(uri, label)
	if err != nil {
		return "", "", err
	}
	// The URI is access's, of the form checked above: safe as a link.
	return svg, template.URL(uri), nil
}
