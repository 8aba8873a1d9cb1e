// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/sealmail/sealmail/store"
)

// tamperArchive builds an archive with several sealed segments, an active
// one, and an external checkpoint; the daemon is stopped afterwards. It
// returns the archive dir, the identity file and the checkpoint file.
func tamperArchive(t *testing.T) (string, string, string) {
	t.Helper()
	dir, identity := initArchive(t)
	cfg := writeConfig(t, "[storage]\nseal_size = \"6K\"\n")
	d := startDaemon(t, dir, "--config", cfg)
	for i := range 12 {
		msg := fmt.Sprintf("Subject: tamper %d\r\n\r\n%s\r\n", i, strings.Repeat(fmt.Sprintf("line %d of a message worth keeping\r\n", i), 60+i))
		if code, reply := sendOne(t, d.addr, []byte(msg)); code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	out, errOut, code := cli(t, nil, "audit", "checkpoint", "--data", dir)
	if code != 0 {
		t.Fatalf("audit checkpoint: %s", errOut)
	}
	cp := filepath.Join(t.TempDir(), "checkpoint.txt")
	os.WriteFile(cp, out, 0o600)
	for i := range 2 {
		if code, reply := sendOne(t, d.addr, []byte(fmt.Sprintf("Subject: after checkpoint %d\r\n\r\nx\r\n", i))); code != 250 {
			t.Fatalf("send: %d %s", code, reply)
		}
	}
	d.stop()
	return dir, identity, cp
}

// copyArchive copies an archive directory so that each case tampers with
// its own.
func copyArchive(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "archive")
	if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	os.Chmod(path, 0o600) // sealed segments are read-only
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x20
	f.WriteAt(b, off)
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	s, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	if len(s) < 3 {
		t.Fatalf("%d segments, want several sealed and one active", len(s))
	}
	return s
}

func auditLines(t *testing.T, dir string) (string, [][]byte) {
	t.Helper()
	p := filepath.Join(dir, "audit", "audit-000001.jsonl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o600)
	return p, bytes.SplitAfter(b, []byte("\n"))
}

// lastRecord returns the offset and header of the active segment's last
// record.
func lastRecord(t *testing.T, seg string) store.ScannedRecord {
	t.Helper()
	var last store.ScannedRecord
	if _, _, err := store.ScanFile(seg, func(r store.ScannedRecord) error { last = r; return nil }); err != nil {
		t.Fatal(err)
	}
	return last
}

// forgeRecord writes a record by docs/format.md with stock age and zstd:
// what anyone holding the archive's public recipient can do. plain is each
// entry's plaintext; pad, if positive, makes each frame exactly that long.
func forgeRecord(t *testing.T, dir string, entries []store.Entry, plain [][]byte, pad []int64) []byte {
	t.Helper()
	info, err := store.ReadArchiveInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	rcpts, err := store.ParseRecipients(info.Recipients)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	var frames bytes.Buffer
	for i, p := range plain {
		fr := enc.EncodeAll(p, nil)
		if pad != nil && pad[i] > 0 {
			// A zstd skippable frame (RFC 8878 §3.1.2) pads to the length.
			n := pad[i] - int64(len(fr)) - 8
			if n < 0 {
				t.Fatalf("forged frame %d bytes, cannot pad to %d", len(fr), pad[i])
			}
			fr = binary.LittleEndian.AppendUint32(fr, 0x184D2A50)
			fr = binary.LittleEndian.AppendUint32(fr, uint32(n))
			fr = append(fr, make([]byte, n)...)
		}
		entries[i].PlainLen = int64(len(fr))
		frames.Write(fr)
	}
	var payload bytes.Buffer
	w, err := age.Encrypt(&payload, rcpts...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(frames.Bytes())
	w.Close()
	tab := crc32.MakeTable(crc32.Castagnoli)
	b := append([]byte("SMRC"), 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(entries)))
	b = binary.LittleEndian.AppendUint64(b, uint64(payload.Len()))
	for _, e := range entries {
		b = append(b, byte(e.Kind), 0, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(e.PlainLen))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.ID))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Received))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Size))
		b = append(b, e.Digest[:]...)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, tab))
	b = append(b, payload.Bytes()...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, tab))
}

func forgedPlain(body string) []byte {
	m := []byte("Subject: forged\r\n\r\n" + body + "\r\n")
	h, _ := json.Marshal(map[string]any{"v": 1, "kind": "message", "size": len(m), "sha256": fmt.Sprintf("%x", sha256Sum(m))})
	return append(append(h, '\n'), m...)
}

// TestVerifyDetectsTampering changes an archive in each way an
// administrator could, and checks that verify or audit verify finds it, names
// what is affected and exits 3; the untouched archive verifies clean.
func TestVerifyDetectsTampering(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an archive and runs verify many times")
	}
	t.Parallel()
	base, identity, cp := tamperArchive(t)

	out, errOut, code := cli(t, nil, "verify", "--data", base, "--identity", identity, "--checkpoint", cp)
	if code != 0 || !strings.Contains(string(out), "OK") || !strings.Contains(string(out), "decrypted and checked: 14 messages") {
		t.Fatalf("untouched archive: verify exit %d:\n%s%s", code, out, errOut)
	}
	if out, errOut, code := cli(t, nil, "audit", "verify", "--data", base, "--checkpoint", cp); code != 0 {
		t.Fatalf("untouched archive: audit verify exit %d:\n%s%s", code, out, errOut)
	}

	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		cmd    []string // verify (default) or audit verify
		want   []string // substrings of the output naming what is affected
	}{
		{"flip a byte of a sealed segment", func(t *testing.T, dir string) {
			flipByte(t, segments(t, dir)[0], 200)
		}, nil, []string{"segment 00000001", "SHA-256"}},
		{"flip a byte of the active segment", func(t *testing.T, dir string) {
			s := segments(t, dir)
			r := lastRecord(t, s[len(s)-1])
			flipByte(t, s[len(s)-1], r.Offset+r.Length-10)
		}, nil, []string{"record checksum", "message 14"}},
		{"flip a byte of an audit entry", func(t *testing.T, dir string) {
			p, lines := auditLines(t, dir)
			off := 0
			for _, l := range lines[:4] {
				off += len(l)
			}
			i := bytes.Index(lines[4], []byte(`"time":"2`))
			flipByte(t, p, int64(off+i+9)) // the year's first digit: still valid JSON
		}, []string{"audit", "verify"}, []string{"audit-000001.jsonl:5"}},
		{"delete an audit line", func(t *testing.T, dir string) {
			p, lines := auditLines(t, dir)
			os.WriteFile(p, bytes.Join(append(lines[:6:6], lines[7:]...), nil), 0o600)
		}, []string{"audit", "verify"}, []string{"audit-000001.jsonl:"}},
		{"reorder two audit entries", func(t *testing.T, dir string) {
			p, lines := auditLines(t, dir)
			lines[8], lines[9] = lines[9], lines[8]
			os.WriteFile(p, bytes.Join(lines, nil), 0o600)
		}, []string{"audit", "verify"}, []string{"audit-000001.jsonl:"}},
		{"truncate the audit log before an external checkpoint", func(t *testing.T, dir string) {
			p, lines := auditLines(t, dir)
			os.WriteFile(p, bytes.Join(lines[:len(lines)/3], nil), 0o600)
		}, []string{"audit", "verify"}, []string{"checkpoint"}},
		{"cut the audit entries after the checkpoint", func(t *testing.T, dir string) {
			// A signed checkpoint covers what came before it; what came after
			// is vouched for by the store cross-check.
			p, lines := auditLines(t, dir)
			keep := len(lines)
			for i, l := range lines {
				if bytes.Contains(l, []byte(`"type":"ingest"`)) && bytes.Contains(l, []byte(`"id":13`)) {
					keep = i
				}
			}
			os.WriteFile(p, bytes.Join(lines[:keep], nil), 0o600)
		}, nil, []string{"message 13", "not vouched for by the audit log"}},
		{"append a valid record", func(t *testing.T, dir string) {
			s := segments(t, dir)
			rec := forgeRecord(t, dir, []store.Entry{{Kind: store.KindMessage, ID: 99, Size: 10}}, [][]byte{forgedPlain("forged")}, nil)
			f, _ := os.OpenFile(s[len(s)-1], os.O_WRONLY|os.O_APPEND, 0)
			f.Write(rec)
			f.Close()
		}, nil, []string{"message 99", "not vouched for by the audit log"}},
		{"substitute a valid record of the same length", func(t *testing.T, dir string) {
			s := segments(t, dir)
			last := lastRecord(t, s[len(s)-1])
			entries := append([]store.Entry(nil), last.Header.Entries...)
			var plain [][]byte
			var pad []int64
			for _, e := range entries {
				plain = append(plain, forgedPlain("x"))
				pad = append(pad, e.PlainLen)
			}
			rec := forgeRecord(t, dir, entries, plain, pad)
			if int64(len(rec)) != last.Length {
				t.Fatalf("forged record is %d bytes, the original %d", len(rec), last.Length)
			}
			f, _ := os.OpenFile(s[len(s)-1], os.O_WRONLY, 0)
			f.WriteAt(rec, last.Offset)
			f.Close()
		}, nil, []string{"not vouched for by the audit log", "record is missing or altered"}},
		{"replace the catalog with an older copy", nil, nil, []string{"after the committed length in catalog.db"}},
	}
	// The older catalog: a copy taken before the last messages arrived.
	older := copyArchive(t, base)
	{
		d := startDaemon(t, older)
		for i := range 3 {
			if code, reply := sendOne(t, d.addr, []byte(fmt.Sprintf("Subject: later %d\r\n\r\ny\r\n", i))); code != 250 {
				t.Fatalf("send: %d %s", code, reply)
			}
		}
		d.stop()
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var dir string
			if tc.tamper == nil {
				dir = copyArchive(t, older)
				b, _ := os.ReadFile(filepath.Join(base, "catalog.db"))
				os.WriteFile(filepath.Join(dir, "catalog.db"), b, 0o600)
			} else {
				dir = copyArchive(t, base)
				tc.tamper(t, dir)
			}
			args := append(tc.cmd, "--data", dir, "--checkpoint", cp)
			if tc.cmd == nil {
				args = []string{"verify", "--data", dir, "--checkpoint", cp}
			}
			out, errOut, code := cli(t, nil, args...)
			if code != exitProblems {
				t.Fatalf("%v: exit %d, want %d:\n%s%s", args, code, exitProblems, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%v output does not name %q:\n%s", args, w, out)
				}
			}
		})
	}
}
