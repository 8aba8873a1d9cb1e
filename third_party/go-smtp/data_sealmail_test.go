package smtp

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// unstuff is RFC 5321 §4.5.2 written line by line: the reference the
// buffered dataReader is checked against. It returns the content and what
// follows the end-of-data line, or ok false when there is none.
func unstuff(wire []byte) (content, rest []byte, ok bool) {
	var out []byte
	for len(wire) > 0 {
		i := bytes.Index(wire, []byte("\r\n"))
		if i < 0 {
			return nil, nil, false
		}
		line := wire[:i]
		wire = wire[i+2:]
		if string(line) == "." {
			return out, wire, true
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		out = append(append(out, line...), '\r', '\n')
	}
	return nil, nil, false
}

func readData(wire []byte, oneByte bool, limit int64) (content []byte, rest string, err error) {
	var src io.Reader = bytes.NewReader(wire)
	if oneByte {
		src = iotest.OneByteReader(src)
	}
	br := bufio.NewReaderSize(src, 16)
	r := &dataReader{r: br, lineStart: true, limited: limit > 0, n: limit}
	content, err = io.ReadAll(r)
	tail, _ := io.ReadAll(br)
	return content, string(tail), err
}

func checkData(t *testing.T, wire []byte) {
	want, wantRest, ok := unstuff(wire)
	for _, oneByte := range []bool{false, true} {
		got, rest, err := readData(wire, oneByte, 0)
		if !ok {
			if err == nil {
				t.Fatalf("dataReader(%q) = %q, want an error (no end line)", wire, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, want) || rest != string(wantRest) {
			t.Fatalf("dataReader(%q, oneByte %v) = %q, rest %q, err %v; want %q, rest %q", wire, oneByte, got, rest, err, want, wantRest)
		}
	}
}

func TestDataReaderEdgeCases(t *testing.T) {
	for _, w := range []string{
		".\r\n", "a\r\n.\r\n", "a\r\n.\rX\r\n.\r\n", "a\r\r\n..b\r\n.\r\n", "a\r\r\n.\r\nQUIT\r\n",
		"a\n.\nb\r\n.\r\n", "a\r.\rb\r\n.\r\n", "a\n.\r\nb\r\n.\r\n", "a\r\n.\nb\r\n.\r\n",
		"...\r\n.\r\nMAIL FROM:<>\r\n", strings.Repeat("x", 100) + "\r\n." + strings.Repeat("\r", 40) + "\r\n.\r\n",
		"a\r\n.", "a\r\n.\r", "a\r", "",
	} {
		checkData(t, []byte(w))
	}
}

func TestDataReaderLimit(t *testing.T) {
	// Exactly the limit passes; one octet more does not.
	if got, _, err := readData([]byte("abc\r\n.\r\n"), true, 5); err != nil || string(got) != "abc\r\n" {
		t.Errorf("5 octets at limit 5 = %q, %v", got, err)
	}
	if _, _, err := readData([]byte("abcd\r\n.\r\n"), true, 5); err != ErrDataTooLarge {
		t.Errorf("6 octets at limit 5: err %v, want ErrDataTooLarge", err)
	}
}

func FuzzDataReader(f *testing.F) {
	f.Add([]byte("a\r\n.\rX\r\n.\r\n"))
	f.Add([]byte("a\r\r\n..b\r\n.\r\nQUIT\r\n"))
	f.Add([]byte("\n.\n\r.\r.\r\n"))
	f.Fuzz(func(t *testing.T, wire []byte) { checkData(t, wire) })
}
