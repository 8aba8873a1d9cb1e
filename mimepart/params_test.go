// SPDX-License-Identifier: Apache-2.0

package mimepart

import (
	"reflect"
	"testing"
)

func TestParseParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		value  string
		params map[string]string
		ok     bool
	}{
		{"", "", map[string]string{}, true},
		{"Text/Plain", "text/plain", map[string]string{}, true},
		{`multipart/mixed; BOUNDARY="a b;c"; x=1`, "multipart/mixed", map[string]string{"boundary": "a b;c", "x": "1"}, true},
		{`text/plain; name="a\"b\\c"`, "text/plain", map[string]string{"name": `a"b\c`}, true},
		{`text/plain; charset=a; charset=b`, "text/plain", map[string]string{"charset": "a"}, true},
		{`text/plain; name="unterminated`, "text/plain", map[string]string{"name": "unterminated"}, true},
		{`attachment; filename=my file.pdf`, "attachment", map[string]string{"filename": "my file.pdf"}, true},
		{`multipart/mixed boundary=x`, "multipart/mixed", map[string]string{"boundary": "x"}, true},
		{`text/plain (comment); charset=us-ascii (Plain Text)`, "text/plain", map[string]string{"charset": "us-ascii"}, true},
		{`text/plain; name="=?utf-8?Q?Gr=C3=BC=C3=9Fe?="`, "text/plain", map[string]string{"name": "=?utf-8?Q?Gr=C3=BC=C3=9Fe?="}, true},
		// RFC 2231 §3-4: continuations, charsets, languages.
		{"attachment; filename*0*=iso-8859-1''R%E9sum; filename*1*=%E9.pdf", "attachment", map[string]string{"filename": "Résumé.pdf"}, true},
		{`text/plain; name*0*=utf-8''%E6%97%A5; name*1=".txt"`, "text/plain", map[string]string{"name": "日.txt"}, true},
		{`attachment; filename*=utf-8'en'%E2%82%AC; filename=plain`, "attachment", map[string]string{"filename": "€"}, true},
		{`attachment; filename*=x-no-such''abc%FF`, "attachment", map[string]string{"filename": "abcÿ"}, false},
		{`attachment; filename*0=a; filename*2=c`, "attachment", map[string]string{"filename": "a"}, true},
	}
	for _, tt := range tests {
		v, params, ok := ParseParams(tt.in)
		if v != tt.value || !reflect.DeepEqual(params, tt.params) || ok != tt.ok {
			t.Errorf("ParseParams(%q) = %q, %q, %v, want %q, %q, %v", tt.in, v, params, ok, tt.value, tt.params, tt.ok)
		}
	}
}
