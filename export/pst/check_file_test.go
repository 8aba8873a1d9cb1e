// SPDX-License-Identifier: Apache-2.0

package pst

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCheckerOnOutlookFiles runs the checker on PSTs written by Outlook and
// Aspose: it must accept them, so it checks the format and not merely our
// writer's habits.
func TestCheckerOnOutlookFiles(t *testing.T) {
	for _, name := range []string{"outlook-empty-unicode.pst", "pstsdk-sample1-unicode.pst",
		"pstsdk-submessage-unicode.pst", "aspose-written-sample-unicode.pst"} {
		if _, err := checkFile(filepath.Join(corpusDir, "pst", name)); err != nil {
			t.Errorf("checkFile(%q) = %v, want nil", name, err)
		}
	}
	// ANSI files are not what we check (nor write)
	if _, err := checkFile(filepath.Join(corpusDir, "pst", "pstsdk-sample2-ansi.pst")); err == nil {
		t.Errorf("checkFile(ANSI) = nil, want an error")
	}
}

// writeSmall writes a small PST with a few messages and returns its bytes.
func writeSmall(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "small.pst")
	w, err := CreateFile(out, Options{DisplayName: "Small"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := w.Folder(RootFolder, "Inbox")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		raw := genMessage(i, "hello", strings.Repeat("x", 100*i), map[string][]byte{"a.bin": randBytes(uint64(i), 20000)})
		if err := w.AddMessage(f, raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckerDetectsCorruption corrupts copies of a valid file in the ways
// readpst and pffexport do not notice and expects the checker to fail.
func TestCheckerDetectsCorruption(t *testing.T) {
	good := writeSmall(t)
	if c := checkPST(bytes.NewReader(good), int64(len(good))); len(c.errs) > 0 {
		t.Fatalf("checkPST(valid) = %v", c.errs)
	}
	le := binary.LittleEndian
	nbtIB := le.Uint64(good[0xE0:])
	bbtIB := le.Uint64(good[0xF0:])
	// find a data block via the first BBT leaf entry
	c := checkPST(bytes.NewReader(good), int64(len(good)))
	var someBlock chkBlock
	for _, b := range c.bbt {
		if b.cb > 100 {
			someBlock = b
			break
		}
	}
	cases := []struct {
		name string
		mod  func(b []byte)
	}{
		{"header byte without CRC fix", func(b []byte) { b[0x30] ^= 1 }},
		{"header eof with CRC fix", func(b []byte) {
			le.PutUint64(b[0xB8:], le.Uint64(b[0xB8:])+64)
			le.PutUint32(b[4:], crc(b[8:8+471]))
			le.PutUint32(b[0x20C:], crc(b[8:8+516]))
		}},
		{"cbAMapFree with CRC fix", func(b []byte) {
			le.PutUint64(b[0xC8:], le.Uint64(b[0xC8:])-64)
			le.PutUint32(b[4:], crc(b[8:8+471]))
			le.PutUint32(b[0x20C:], crc(b[8:8+516]))
		}},
		{"AMap bit", func(b []byte) { b[amapFirst+400] ^= 0x01 }},
		{"AMap bit with page CRC fix", func(b []byte) {
			p := b[amapFirst : amapFirst+pageSize]
			p[400] ^= 0x01
			le.PutUint32(p[500:], crc(p[:496]))
		}},
		{"NBT root page byte", func(b []byte) { b[nbtIB+3] ^= 0x40 }},
		{"BBT root page byte", func(b []byte) { b[bbtIB+9] ^= 0x40 }},
		{"data block byte", func(b []byte) { b[someBlock.ib+10] ^= 0x40 }},
		{"PMap trailer", func(b []byte) { b[amapFirst+pageSize+496] = 0 }},
		{"density list", func(b []byte) { b[dlistOffset+1] = 3 }},
		{"truncated", func(b []byte) {}},
	}
	for _, tc := range cases {
		bad := bytes.Clone(good)
		tc.mod(bad)
		if tc.name == "truncated" {
			bad = bad[:len(bad)-intervalSize/2]
		}
		c := checkPST(bytes.NewReader(bad), int64(len(bad)))
		if len(c.errs) == 0 {
			t.Errorf("checkPST(%s) found no error", tc.name)
		}
	}
}

// TestEmptyStorePffinfo checks the mandatory store objects of an empty PST
// with pffinfo and readpst.
func TestEmptyStorePffinfo(t *testing.T) {
	pffinfo := requireTool(t, "pffinfo", "pff-tools")
	readpst := requireTool(t, "readpst", "pst-utils")
	out := filepath.Join(t.TempDir(), "empty.pst")
	w, err := CreateFile(out, Options{DisplayName: "Empty Export"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := checkFile(out); err != nil {
		t.Fatalf("structure check: %v", err)
	}
	info, _ := run(t, pffinfo, out)
	for _, want := range []string{"File type:\t\t64-bit", "Folders:\t\tSubtree, Wastbox, Finder"} {
		if !strings.Contains(info, want) {
			t.Errorf("pffinfo output lacks %q:\n%s", want, info)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(readpst, "-j", "1", "-D", "-o", dir, out)
	o, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("readpst: %v\n%s", err, o)
	}
	if !strings.Contains(string(o), `Processing Folder "Deleted Items"`) {
		t.Errorf("readpst output lacks Deleted Items:\n%s", o)
	}
	pffexport := requireTool(t, "pffexport", "pff-tools")
	run(t, pffexport, "-q", "-t", filepath.Join(dir, "x"), out)
	for _, f := range []string{"Search Root", "SPAM Search Folder 2", "Top of Personal Folders/Deleted Items"} {
		if _, err := os.Stat(filepath.Join(dir, "x.export", f)); err != nil {
			t.Errorf("pffexport: folder %q missing: %v", f, err)
		}
	}
}

// permuteTable recovers the NDB_CRYPT_PERMUTE decoding table ([MS-PST] 5.1)
// from the corpus by known plaintext: pffexport decodes the JPEG attachment
// of pstsdk-sample1, and the encoded blocks of that attachment in the file
// give every byte pair. Nothing is copied from the specification.
func permuteTable(t *testing.T) *[256]byte {
	t.Helper()
	pffexport := requireTool(t, "pffexport", "pff-tools")
	src := filepath.Join(corpusDir, "pst", "pstsdk-sample1-unicode.pst")
	dir := t.TempDir()
	run(t, pffexport, "-q", "-t", filepath.Join(dir, "x"), src)
	jpgs, _ := filepath.Glob(filepath.Join(dir, "x.export", "*", "Sample1", "Message00001", "Attachments", "*.jpg"))
	if len(jpgs) != 1 {
		t.Fatalf("pffexport: %d JPEG attachments in sample1, want 1", len(jpgs))
	}
	plain, err := os.ReadFile(jpgs[0])
	if err != nil {
		t.Fatal(err)
	}
	enc, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var dec [256]byte
	var known [256]bool
	for off := amapFirst; off+64 <= len(enc); off += 64 {
		for start := 0; start < len(plain); start += maxBlockData {
			n := min(maxBlockData, len(plain)-start, len(enc)-off)
			var m [256]int16
			for i := range m {
				m[i] = -1
			}
			ok := true
			for i := 0; i < n && ok; i++ {
				x, y := enc[off+i], plain[start+i]
				if m[x] >= 0 && m[x] != int16(y) {
					ok = false
				}
				m[x] = int16(y)
			}
			if !ok || n < 4096 {
				continue
			}
			for x, y := range m {
				if y >= 0 {
					dec[x], known[x] = byte(y), true
				}
			}
		}
	}
	seen := map[byte]bool{}
	for x := range 256 {
		if !known[x] || seen[dec[x]] {
			t.Fatalf("permute table incomplete or not a permutation at %#x", x)
		}
		seen[dec[x]] = true
	}
	return &dec
}

// TestCheckerContentOnOutlookFiles decodes Outlook-written files and runs
// the checker's content checks on them, so that our reading of property
// contexts, table contexts (TCOLDESC, CEB bit order, row index, row matrix)
// and attachment tables is confirmed on files that Outlook and Aspose wrote.
// Their message sizes follow Outlook's own definition and are not compared.
func TestCheckerContentOnOutlookFiles(t *testing.T) {
	dec := permuteTable(t)
	for _, name := range []string{"outlook-empty-unicode.pst", "pstsdk-sample1-unicode.pst",
		"pstsdk-submessage-unicode.pst", "aspose-written-sample-unicode.pst"} {
		b, err := os.ReadFile(filepath.Join(corpusDir, "pst", name))
		if err != nil {
			t.Fatal(err)
		}
		c := newChecker(bytes.NewReader(b), int64(len(b)))
		c.decode, c.lenient = dec, true
		c.run()
		if len(c.errs) > 0 {
			t.Errorf("%s: %v", name, c.errs)
		}
		t.Logf("%s: %d messages, folders %v", name, c.messages, c.folderCounts)
	}
}

// tcColumns returns the column tags of a TC.
func (c *checker) tcColumns(bidData uint64) []uint32 {
	pages, root := c.heapOf(bidData, sigTC)
	if pages == nil {
		return nil
	}
	info := c.heapAlloc(pages, root)
	var tags []uint32
	for i := range int(info[1]) {
		tags = append(tags, binary.LittleEndian.Uint32(info[22+8*i:]))
	}
	return tags
}

// TestTemplatesMatchOutlook compares our template tables' columns with
// those of the Outlook-made empty PST.
func TestTemplatesMatchOutlook(t *testing.T) {
	dec := permuteTable(t)
	read := func(b []byte, decode *[256]byte) map[uint32][]uint32 {
		c := newChecker(bytes.NewReader(b), int64(len(b)))
		c.decode, c.lenient = decode, true
		c.run()
		out := map[uint32][]uint32{}
		for _, n := range c.nbt {
			switch nid := uint32(n.nid); nid {
			case nidHierTemplate, nidContTemplate, nidFAITemplate, nidSearchTemplate, nidAttachTable, nidRecipTable:
				out[nid] = c.tcColumns(n.bidData)
			}
		}
		return out
	}
	outlook, err := os.ReadFile(filepath.Join(corpusDir, "pst", "outlook-empty-unicode.pst"))
	if err != nil {
		t.Fatal(err)
	}
	want := read(outlook, dec)
	mf := &memFile{}
	w, err := Create(mf, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := read(mf.b, nil)
	if len(want) != 6 {
		t.Fatalf("Outlook file: %d templates read, want 6", len(want))
	}
	for nid, cols := range want {
		g := slices.DeleteFunc(slices.Clone(got[nid]), func(tag uint32) bool { return nid == nidRecipTable && tag == tagSMTPAddress })
		if !slices.Equal(g, cols) {
			t.Errorf("template %#x columns = %08X, Outlook has %08X", nid, g, cols)
		}
	}
}
