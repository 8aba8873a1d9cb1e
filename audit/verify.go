// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ProblemKind classifies a [Problem].
type ProblemKind string

// Problem kinds.
const (
	// ProblemFile: a log file is missing from the numbering or unreadable.
	ProblemFile ProblemKind = "file"
	// ProblemHeader: a file header is malformed or inconsistent.
	ProblemHeader ProblemKind = "header"
	// ProblemSyntax: a line is not a well-formed entry (bad JSON, missing
	// key, too long, or a rotated file not ending in a newline).
	ProblemSyntax ProblemKind = "syntax"
	// ProblemSequence: a seq does not follow the previous line's seq.
	ProblemSequence ProblemKind = "sequence"
	// ProblemChain: a line's hash is not the prev recorded by the next
	// entry. The problem names the earlier line; its Detail names the later.
	ProblemChain ProblemKind = "chain"
	// ProblemSignature: a checkpoint entry does not decode, does not verify,
	// or does not describe the entry before it.
	ProblemSignature ProblemKind = "signature"
	// ProblemKey: signing.pub is missing or unreadable, or differs from the
	// key of an external checkpoint.
	ProblemKey ProblemKind = "key"
	// ProblemExternal: the log does not extend an external checkpoint: the
	// entry with its seq has another hash, or the checkpoint itself is
	// invalid.
	ProblemExternal ProblemKind = "external"
	// ProblemTruncated: the log ends before an external checkpoint's seq.
	ProblemTruncated ProblemKind = "truncated"
)

// Problem is one finding of [Verify].
type Problem struct {
	Kind ProblemKind
	// File is the log file concerned (a base name such as
	// "audit-000002.jsonl", or "signing.pub"); empty if none.
	File string
	// Line is the 1-based line number in File (line 1 is the header); 0 if
	// none.
	Line int
	// Seq is the sequence number concerned: the entry's own, or for a line
	// that does not parse, the one expected there; 0 if none.
	Seq uint64
	// Detail says what is wrong, in words.
	Detail string
}

// String formats the problem as "FILE:LINE: seq N: KIND: DETAIL".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Seq > 0 {
		fmt.Fprintf(&b, "seq %d: ", p.Seq)
	}
	fmt.Fprintf(&b, "%s: %s", p.Kind, p.Detail)
	return b.String()
}

// Torn describes an incomplete final line: a write in progress (when the log
// is open) or the remnant of a crash, which [Open] removes. It is not a
// problem: no acknowledged entry is ever torn.
type Torn struct {
	File  string
	Line  int
	Bytes int64
}

// Report is the result of [Verify].
type Report struct {
	// Archive is the archive id from the first header read.
	Archive string
	// Files is the number of log files read.
	Files int
	// Entries counts lines that parsed as entries, checkpoints included.
	Entries uint64
	// Checkpoints counts checkpoint entries whose signature verified.
	Checkpoints int
	// LastSeq and Head describe the last entry read.
	LastSeq uint64
	Head    Hash
	// LastCheckpoint is the last valid checkpoint in the log, if any.
	LastCheckpoint *Checkpoint
	// Unsigned counts entries after the last valid checkpoint entry: they
	// are covered by no signature yet.
	Unsigned uint64
	// External counts external checkpoints that the log extends.
	External int
	// Torn is set if the last file ends in an incomplete line.
	Torn *Torn
	// Problems lists every finding, in file order. Empty means the log
	// verified.
	Problems []Problem
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

type location struct {
	file string
	line int
}

func (l location) String() string { return fmt.Sprintf("%s:%d", l.file, l.line) }

type verifier struct {
	r        *Report
	trusted  ed25519.PublicKey
	external []Checkpoint
	extBySeq map[uint64][]int
	extSeen  []bool

	havePrev bool // false before file 1's header (or when file 1 is missing)
	prevHash Hash
	prevSeq  uint64
	prevLoc  location
	prevBad  bool // the previous line already has a problem; skip its link
	cpSeq    uint64
}

func (v *verifier) problem(kind ProblemKind, loc location, seq uint64, format string, args ...any) {
	v.r.Problems = append(v.r.Problems, Problem{Kind: kind, File: loc.file, Line: loc.line, Seq: seq, Detail: fmt.Sprintf(format, args...)})
}

// Verify checks the whole log in dir and returns a report of every problem
// found; the error is only for failures to run (no log, an unsupported
// format version, ctx done).
//
// It checks each file's header and numbering, each line's syntax, that
// sequence numbers follow one another, that each entry's prev is the hash of
// the line before it (for entry 1, of the first header), that each
// checkpoint entry is signed by the trusted key and describes the entry
// just before it, and that for each external checkpoint the entry with its
// seq has its head hash. The trusted key is the key of the first external
// checkpoint if any are given (a key held off the host), else signing.pub.
//
// Verify only reads, without locking, so it can run while a [Log] appends:
// it checks the files present when it starts, up to the last complete line.
func Verify(ctx context.Context, dir string, external []Checkpoint) (*Report, error) {
	return VerifyFS(ctx, os.DirFS(dir), dir, external)
}

// VerifyFS is [Verify] over the log at the root of fsys (a backup's copy of
// a log, for one); name says in errors which log it is.
func VerifyFS(ctx context.Context, fsys fs.FS, name string, external []Checkpoint) (*Report, error) {
	ns, err := listFilesFS(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("audit: verify %s: %w", name, err)
	}
	v := &verifier{
		r:        &Report{},
		external: external,
		extBySeq: make(map[uint64][]int),
		extSeen:  make([]bool, len(external)),
	}
	pub, err := readPublicKeyFS(fsys)
	if err != nil {
		v.problem(ProblemKey, location{file: pubFile}, 0, "%v", err)
	}
	v.trusted = pub
	for i, c := range external {
		v.extBySeq[c.Seq] = append(v.extBySeq[c.Seq], i)
		if err := c.Verify(nil); err != nil {
			v.problem(ProblemExternal, location{}, c.Seq, "external checkpoint seq %d: %v", c.Seq, err)
		}
		if pub != nil && !c.Key.Equal(pub) {
			v.problem(ProblemKey, location{file: pubFile}, 0, "external checkpoint seq %d is signed by key %x, %s holds %x", c.Seq, []byte(c.Key), pubFile, []byte(pub))
		}
	}
	if len(external) > 0 {
		v.trusted = external[0].Key
	}

	next := 1
	for _, n := range ns {
		for ; next < n; next++ {
			// The next entry read shows the gap in sequence numbers.
			v.problem(ProblemFile, location{file: fileName(next)}, v.prevSeq+1, "file missing")
		}
		next = n + 1
		if err := v.file(ctx, fsys, n, n == ns[len(ns)-1]); err != nil {
			return nil, fmt.Errorf("audit: verify %s: %w", name, err)
		}
		v.r.Files++
	}

	for i, c := range external {
		if v.extSeen[i] {
			continue
		}
		if c.Seq > v.r.LastSeq {
			v.problem(ProblemTruncated, location{}, c.Seq, "log ends at seq %d but external checkpoint of %s covers seq %d: entries were removed", v.r.LastSeq, c.Time.Format("2006-01-02T15:04:05Z"), c.Seq)
		} else {
			v.problem(ProblemExternal, location{}, c.Seq, "external checkpoint seq %d: no such entry found in the log", c.Seq)
		}
	}
	if v.r.LastSeq > v.cpSeq {
		v.r.Unsigned = v.r.LastSeq - v.cpSeq
	}
	return v.r, nil
}

// file checks one log file.
func (v *verifier) file(ctx context.Context, fsys fs.FS, n int, last bool) error {
	name := fileName(n)
	f, err := fsys.Open(name)
	if err != nil {
		v.problem(ProblemFile, location{file: name}, 0, "%v", err)
		return nil
	}
	defer func() { _ = f.Close() }() // read-only
	// Read only what exists now: a log appended to faster than it is read
	// still ends, and the report describes one moment.
	fi, err := f.Stat()
	if err != nil {
		v.problem(ProblemFile, location{file: name}, 0, "%v", err)
		return nil
	}
	lr := newLineReader(io.LimitReader(f, fi.Size()))
	for lineNo := 1; ; lineNo++ {
		if lineNo%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		loc := location{file: name, line: lineNo}
		l, err := lr.next()
		if errors.Is(err, io.EOF) {
			if lineNo == 1 {
				v.problem(ProblemHeader, loc, 0, "empty file")
			}
			return nil
		}
		if err != nil {
			v.problem(ProblemFile, loc, 0, "read: %v", err)
			return nil
		}
		if !l.complete {
			if last {
				v.r.Torn = &Torn{File: name, Line: lineNo, Bytes: l.size}
				return nil
			}
			v.problem(ProblemSyntax, loc, v.prevSeq+1, "rotated file ends in an incomplete line of %d bytes", l.size)
		}
		if lineNo == 1 {
			if err := v.header(l, loc, n); err != nil {
				return err
			}
			continue
		}
		v.entry(l, loc)
	}
}

func (v *verifier) header(l rawLine, loc location, n int) error {
	h, err := parseHeader(l.b)
	switch {
	case errors.Is(err, ErrUnsupportedVersion):
		return fmt.Errorf("%s: %w", loc.file, err)
	case err != nil:
		v.problem(ProblemHeader, loc, 0, "%v", err)
	case v.r.Archive == "":
		v.r.Archive = h.Archive
	case h.Archive != v.r.Archive:
		v.problem(ProblemHeader, loc, 0, "archive id %q, earlier files have %q", h.Archive, v.r.Archive)
	}
	if err == nil && h.File != n {
		v.problem(ProblemHeader, loc, 0, "header says file %d", h.File)
	}
	if n == 1 {
		// The genesis: entry 1 chains to the hash of this line.
		v.havePrev, v.prevHash, v.prevSeq, v.prevLoc, v.prevBad = true, l.hash, 0, loc, false
		v.external0(l.hash, loc)
	}
	return nil
}

// external0 checks external checkpoints of an empty log against the genesis.
func (v *verifier) external0(genesis Hash, loc location) {
	for _, i := range v.extBySeq[0] {
		v.extSeen[i] = true
		if v.external[i].Head == genesis {
			v.r.External++
		} else {
			v.problem(ProblemExternal, loc, 0, "genesis hash %s, external checkpoint of the empty log has %s: the log was recreated", genesis, v.external[i].Head)
		}
	}
}

func (v *verifier) entry(l rawLine, loc location) {
	if l.tooLong {
		v.problem(ProblemSyntax, loc, v.prevSeq+1, "line exceeds %d bytes", MaxLineBytes)
		v.advanceBad(l, loc)
		return
	}
	e, err := parseEntry(l.b, false)
	if err != nil {
		v.problem(ProblemSyntax, loc, v.prevSeq+1, "%v", err)
		v.advanceBad(l, loc)
		return
	}
	bad := false
	linked := v.havePrev && e.Seq == v.prevSeq+1
	if v.havePrev && !linked {
		bad = true
		switch {
		case e.Seq > v.prevSeq+1:
			v.problem(ProblemSequence, loc, e.Seq, "follows seq %d at %s: entries %d to %d are missing", v.prevSeq, v.prevLoc, v.prevSeq+1, e.Seq-1)
		default:
			v.problem(ProblemSequence, loc, e.Seq, "follows seq %d at %s: entries are duplicated or out of order", v.prevSeq, v.prevLoc)
		}
	}
	if linked && !v.prevBad && e.Prev != v.prevHash {
		what := fmt.Sprintf("entry seq %d", v.prevSeq)
		if v.prevSeq == 0 {
			what = "header (genesis)"
		}
		v.problem(ProblemChain, v.prevLoc, v.prevSeq, "hash %s does not match prev %s recorded by seq %d at %s: this %s or that entry's prev was altered or replaced",
			v.prevHash, e.Prev, e.Seq, loc, what)
	}
	if e.Type == TypeCheckpoint {
		if !v.checkpoint(e, loc, linked) {
			bad = true
		}
	}
	for _, i := range v.extBySeq[e.Seq] {
		if v.extSeen[i] {
			continue
		}
		v.extSeen[i] = true
		if v.external[i].Head == e.Hash {
			v.r.External++
			continue
		}
		bad = true
		v.problem(ProblemExternal, loc, e.Seq, "hash %s, external checkpoint of %s has %s: the log was rewritten at or before this entry", e.Hash, v.external[i].Time.Format("2006-01-02T15:04:05Z"), v.external[i].Head)
	}
	v.r.Entries++
	v.r.LastSeq, v.r.Head = e.Seq, e.Hash
	v.havePrev, v.prevHash, v.prevSeq, v.prevLoc, v.prevBad = true, e.Hash, e.Seq, loc, bad
}

// advanceBad moves past a line that is not a valid entry. Its raw bytes still
// hash, but since its seq is unknown the next link is not judged.
func (v *verifier) advanceBad(l rawLine, loc location) {
	v.havePrev, v.prevHash, v.prevSeq, v.prevLoc, v.prevBad = true, l.hash, v.prevSeq+1, loc, true
}

// checkpoint checks a checkpoint entry; linked says the entry before it is
// the one with the previous seq, so v.prevHash is that entry's hash.
func (v *verifier) checkpoint(e Entry, loc location, linked bool) bool {
	cp, err := checkpointFromEntry(e)
	if err != nil {
		v.problem(ProblemSignature, loc, e.Seq, "%v", err)
		return false
	}
	ok := true
	if err := cp.Verify(v.trusted); err != nil {
		v.problem(ProblemSignature, loc, e.Seq, "%v", err)
		ok = false
	}
	if cp.Archive != v.r.Archive {
		v.problem(ProblemSignature, loc, e.Seq, "checkpoint names archive %q, log is %q", cp.Archive, v.r.Archive)
		ok = false
	}
	if cp.Seq+1 != e.Seq {
		v.problem(ProblemSignature, loc, e.Seq, "checkpoint covers seq %d, want %d (the entry before it)", cp.Seq, e.Seq-1)
		ok = false
	} else if linked && cp.Head != v.prevHash {
		v.problem(ProblemSignature, loc, e.Seq, "checkpoint head %s is not the hash %s of seq %d at %s", cp.Head, v.prevHash, v.prevSeq, v.prevLoc)
		ok = false
	}
	if ok {
		v.r.Checkpoints++
		v.r.LastCheckpoint = &cp
		v.cpSeq = e.Seq
	}
	return ok
}
