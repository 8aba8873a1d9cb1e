// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"

	"github.com/sealmail/sealmail"
)

// charsetCase is a word in one charset that real mail uses. enc is nil for
// UTF-7, which x/text lacks; its encoded form is given literally.
type charsetCase struct {
	label string
	enc   encoding.Encoding
	word  string
	utf7  string
}

var charsetCases = []charsetCase{
	{label: "iso-2022-jp", enc: japanese.ISO2022JP, word: "東京都"},
	{label: "ISO-2022-JP", enc: japanese.ISO2022JP, word: "ひらがな"},
	{label: "shift_jis", enc: japanese.ShiftJIS, word: "日本語"},
	{label: "cp932", enc: japanese.ShiftJIS, word: "漢字"},
	{label: "euc-jp", enc: japanese.EUCJP, word: "カタカナ"},
	{label: "gb2312", enc: simplifiedchinese.GBK, word: "北京大学"},
	{label: "gbk", enc: simplifiedchinese.GBK, word: "中文邮件"},
	{label: "x-gbk", enc: simplifiedchinese.GBK, word: "上海"},
	{label: "gb18030", enc: simplifiedchinese.GB18030, word: "广州"},
	{label: "big5", enc: traditionalchinese.Big5, word: "臺灣大學"},
	{label: "euc-kr", enc: korean.EUCKR, word: "안녕하세요"},
	{label: "ks_c_5601-1987", enc: korean.EUCKR, word: "서울"},
	{label: "koi8-r", enc: charmap.KOI8R, word: "Привет"},
	{label: "koi8-u", enc: charmap.KOI8U, word: "Україна"},
	{label: "iso-8859-1", enc: charmap.ISO8859_1, word: "Grüße"},
	{label: "iso-8859-2", enc: charmap.ISO8859_2, word: "Łódź"},
	{label: "iso-8859-3", enc: charmap.ISO8859_3, word: "Ħaġar"},
	{label: "iso-8859-4", enc: charmap.ISO8859_4, word: "Rīga"},
	{label: "iso-8859-5", enc: charmap.ISO8859_5, word: "Москва"},
	{label: "iso-8859-6", enc: charmap.ISO8859_6, word: "مرحبا"},
	{label: "iso-8859-7", enc: charmap.ISO8859_7, word: "Αθήνα"},
	{label: "iso-8859-8", enc: charmap.ISO8859_8, word: "שלום"},
	{label: "iso-8859-8-i", enc: charmap.ISO8859_8, word: "ירושלים"},
	{label: "iso-8859-9", enc: charmap.ISO8859_9, word: "Şişli"},
	{label: "iso-8859-10", enc: charmap.ISO8859_10, word: "Þórður"},
	{label: "iso-8859-13", enc: charmap.ISO8859_13, word: "Šiauliai"},
	{label: "iso-8859-14", enc: charmap.ISO8859_14, word: "Ŵyddfa"},
	{label: "iso-8859-15", enc: charmap.ISO8859_15, word: "Œuvre"},
	{label: "iso-8859-16", enc: charmap.ISO8859_16, word: "Timișoara"},
	{label: "windows-1250", enc: charmap.Windows1250, word: "Zażółć"},
	{label: "windows-1251", enc: charmap.Windows1251, word: "Київ"},
	{label: "windows-1252", enc: charmap.Windows1252, word: "naïve"},
	{label: "windows-1253", enc: charmap.Windows1253, word: "Ελλάδα"},
	{label: "windows-1254", enc: charmap.Windows1254, word: "İzmir"},
	{label: "windows-1255", enc: charmap.Windows1255, word: "תודה"},
	{label: "windows-1256", enc: charmap.Windows1256, word: "شكرا"},
	{label: "windows-1257", enc: charmap.Windows1257, word: "Klaipėda"},
	{label: "windows-1258", enc: charmap.Windows1258, word: "Đông"},
	{label: "utf-16le", enc: unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), word: "Ärger"},
	{label: "utf-16be", enc: unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), word: "Öffnung"},
	{label: "utf-16", enc: unicode.UTF16(unicode.BigEndian, unicode.UseBOM), word: "Übung"},
	{label: "unicode", enc: unicode.UTF16(unicode.LittleEndian, unicode.UseBOM), word: "Straße"},
	{label: "utf-8", enc: unicode.UTF8, word: "Ελληνικά"},
	// RFC 2152: "Frösche" is "Fr+APY-sche".
	{label: "utf-7", word: "Frösche", utf7: "Fr+APY-sche"},
}

func (c charsetCase) encode(t *testing.T, s string) []byte {
	t.Helper()
	if c.enc == nil {
		return []byte(strings.ReplaceAll(s, c.word, c.utf7))
	}
	b, err := c.enc.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode %q as %s: %v", s, c.label, err)
	}
	return b
}

// charsetMessage builds a message whose subject (RFC 2047), body (base64)
// and attachment file name (RFC 2231) hold the word in the case's charset,
// plus a text attachment in it.
func charsetMessage(t *testing.T, c charsetCase) []byte {
	subj := c.encode(t, "Subject "+c.word+" here")
	body := c.encode(t, "Body text:\n"+c.word+" end.\n")
	name := c.encode(t, c.word+".txt")
	att := c.encode(t, "attached "+c.word+"\n")
	var b strings.Builder
	fmt.Fprintf(&b, "From: Test <test@example.com>\r\nTo: rcpt@example.org\r\n")
	fmt.Fprintf(&b, "Subject: =?%s?B?%s?=\r\n", c.label, base64.StdEncoding.EncodeToString(subj))
	b.WriteString("Date: Mon, 2 Jan 2023 10:00:00 +0000\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", c.label)
	b.WriteString(base64.StdEncoding.EncodeToString(body) + "\r\n--b1\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=%q\r\n", c.label)
	fmt.Fprintf(&b, "Content-Disposition: attachment; filename*=%s''%s\r\n", c.label, strings.ReplaceAll(url.QueryEscape(string(name)), "+", "%20"))
	b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(base64.StdEncoding.EncodeToString(att) + "\r\n--b1--\r\n")
	return []byte(b.String())
}

func TestCharsets(t *testing.T) {
	x := openTemp(t)
	var docs []Doc
	for i, c := range charsetCases {
		docs = append(docs, Doc{ID: sealmail.MessageID(i + 1), Raw: charsetMessage(t, c)})
	}
	ctx := context.Background()
	if err := x.Add(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for i, c := range charsetCases {
		want := sealmail.MessageID(i + 1)
		for _, q := range []string{
			strconv.Quote(c.word),
			"subject:" + strconv.Quote(c.word),
			"body:" + strconv.Quote(c.word),
			"filename:" + strconv.Quote(c.word),
			"attachment:" + strconv.Quote(c.word),
			strconv.Quote(strings.ToUpper(c.word)),
		} {
			var got []sealmail.MessageID
			err := x.IDs(ctx, q, func(id sealmail.MessageID) error { got = append(got, id); return nil })
			if err != nil || len(got) != 1 || got[0] != want {
				t.Errorf("%s: IDs(%s) = %v, %v; want [%d]", c.label, q, got, err, want)
			}
		}
	}
	n, err := x.Count(ctx, "flag:decode-error")
	if err != nil || n != 0 {
		t.Errorf("Count(flag:decode-error) = %d, %v; want 0", n, err)
	}
}

// TestUnknownCharset checks that an unknown charset is indexed as far as
// possible and flagged.
func TestUnknownCharset(t *testing.T) {
	raw := "Subject: hello\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nreadable words\r\n"
	x := Extract([]byte(raw))
	if !x.DecodeError || !strings.Contains(x.Body, "readable words") {
		t.Errorf("Extract(unknown charset) = body %q, decode error %v; want the text and the flag", x.Body, x.DecodeError)
	}
}
