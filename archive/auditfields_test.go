// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/sealmail/sealmail"
	"github.com/sealmail/sealmail/audit"
	"github.com/sealmail/sealmail/store"
)

// The audit schema structs write the bytes the map-based writers before them
// wrote (keys sorted, same names, same values), so that logs written before
// and after read the same. Each case gives the map as it was built.
func TestAuditFieldsEncodeAsBefore(t *testing.T) {
	t.Parallel()
	rec := [32]byte{1, 2, 3}
	dig := [32]byte{9, 8, 7}
	c := store.Committed{Kind: store.KindMessage, ID: 42, Receipt: 2, Digest: dig, Size: 1234,
		Location: store.Location{Segment: 7, Offset: 4096, Entry: 3}, RecordSHA256: rec,
		RetainUntil: time.Date(2031, 12, 31, 23, 0, 0, 0, time.UTC),
		Envelope: &sealmail.Envelope{Source: sealmail.SourceSMTPEnvelope, ClientIP: "192.0.2.1", TLS: "TLS1.3", AuthUser: "exchange",
			Untrusted: &sealmail.Envelope{}, Warnings: []string{"a", "b"}}}
	old := func(c store.Committed) map[string]any { // committedFields as it was
		f := map[string]any{"id": uint64(c.ID), "kind": c.Kind.String(), "digest": hex.EncodeToString(c.Digest[:]), "size": c.Size,
			"segment": c.Location.Segment.String(), "offset": c.Location.Offset, "entry": c.Location.Entry,
			"record": hex.EncodeToString(c.RecordSHA256[:])}
		if c.Receipt > 0 {
			f["receipt"] = c.Receipt
		}
		if r := retention(c.RetainUntil, c.Forever); r != "" {
			f["retain_until"] = r
		}
		if e := c.Envelope; e != nil {
			f["source"] = string(e.Source)
			f["client_ip"] = e.ClientIP
			if e.TLS != "" {
				f["tls"] = e.TLS
			}
			if e.AuthUser != "" {
				f["auth_user"] = e.AuthUser
			}
			if e.Untrusted != nil {
				f["untrusted_report"] = true
			}
			if len(e.Warnings) > 0 {
				f["warnings"] = len(e.Warnings)
			}
		}
		return f
	}
	plain := c
	plain.Receipt, plain.RetainUntil, plain.Envelope = 0, time.Time{}, &sealmail.Envelope{Source: sealmail.SourceSMTPEnvelope, ClientIP: "::1"}
	dropped := []map[string]any{{"id": uint64(42), "kind": "message", "entry": 3, "record": hex.EncodeToString(rec[:])}}
	for _, tc := range []struct {
		name     string
		got, old any
	}{
		{"ingest", ingestOf(c), old(c)},
		{"ingest, plain envelope", ingestOf(plain), old(plain)},
		{"rollback", rollbackFields{IDs: []uint64{4, 5}, Error: "sync: EIO"}, map[string]any{"ids": []uint64{4, 5}, "error": "sync: EIO"}},
		{"recover tail", recoverFields{Op: "discard uncommitted tail", Bytes: 77, Entries: droppedOf([]store.Committed{c}), KeptIn: "00000007.tail-1"},
			map[string]any{"op": "discard uncommitted tail", "bytes": int64(77), "entries": dropped, "kept_in": "00000007.tail-1"}},
		{"recover torn audit", recoverFields{AuditTornBytes: 12}, map[string]any{"audit_torn_bytes": int64(12)}},
		{"seal", sealFields{Segment: "00000007", SHA256: "ab", Size: 99, Records: 3},
			map[string]any{"segment": "00000007", "sha256": "ab", "size": int64(99), "records": int64(3)}},
		{"compact", compactFields{Segment: "00000007", OldSHA256: "ab", OldSize: 99, SHA256: "cd", Size: 9, Dropped: droppedOf([]store.Committed{c})},
			map[string]any{"segment": "00000007", "old_sha256": "ab", "old_size": int64(99), "sha256": "cd", "size": int64(9), "dropped": dropped}},
		{"purge", purgeFields{AsOf: "2026-01-01T00:00:00Z", DryRun: true, IDs: []uint64{1}, Count: 1, Kept: map[string]int{"held": 2, "retained": 1}},
			map[string]any{"as_of": "2026-01-01T00:00:00Z", "dry_run": true, "ids": []uint64{1}, "count": 1, "kept": map[string]int{"held": 2, "retained": 1}}},
		{"erase", eraseFields{Query: "*", Reason: "r", OverrideRetention: true, IDs: []uint64{1}, Refused: []Refusal{{ID: 2, Why: "held by h"}}},
			map[string]any{"query": "*", "reason": "r", "override_retention": true, "ids": []uint64{1}, "refused": []Refusal{{ID: 2, Why: "held by h"}}}},
		{"hold create", holdCreateFields{Name: "h", Query: "*", Reason: "r"}, map[string]any{"name": "h", "query": "*", "reason": "r"}},
		{"hold members", holdMembersFields{Name: "h", Count: 2, IDs: []uint64{4, 5}, Through: 17},
			map[string]any{"name": "h", "count": 2, "ids": []uint64{4, 5}, "through": 17}},
		{"hold release", holdReleaseFields{Name: "h", Query: "*", Reason: "r"}, map[string]any{"name": "h", "query": "*", "reason": "r"}},
		{"policy", policyFields{Op: "apply", Evaluated: 3, Changed: []PolicyChange{{ID: 1, From: "", To: "forever"}}},
			map[string]any{"op": "apply", "evaluated": 3, "changed": []PolicyChange{{ID: 1, From: "", To: "forever"}}}},
		{"verify", verifyFields{OK: false, Problems: 2, Records: 5, Entries: 6, AuditHead: "ab"},
			map[string]any{"ok": false, "problems": 2, "records": int64(5), "entries": int64(6), "audit_head": "ab"}},
		{"verify audit", verifyAuditFields{Scope: "audit", OK: true, Entries: 9, External: 1},
			map[string]any{"scope": "audit", "ok": true, "problems": 0, "entries": uint64(9), "external": 1}},
		{"list", listCallFields{Op: "list", After: 0, Limit: 0, Count: 2, First: 1, Last: 2},
			map[string]any{"op": "list", "after": uint64(0), "limit": 0, "count": 2, "first": uint64(1), "last": uint64(2)}},
		{"list, empty", listCallFields{Op: "list"}, map[string]any{"op": "list", "after": uint64(0), "limit": 0, "count": 0}},
		{"get", getCallFields{Op: "get", IDs: []uint64{3}}, map[string]any{"op": "get", "ids": []uint64{3}}},
		{"create", createFields{Op: "create", Archive: "abc", Recipients: []string{"age1x"}},
			map[string]any{"op": "create", "archive": "abc", "recipients": []string{"age1x"}}},
		{"daemon start", daemonStartFields{Version: "dev", PID: 7, Listeners: []string{"smtp 127.0.0.1:25"}},
			map[string]any{"version": "dev", "pid": 7, "listeners": []string{"smtp 127.0.0.1:25"}}},
		{"auth", authFields{User: "u", Remote: "192.0.2.1:5", Method: "smtp-plain"}, map[string]any{"user": "u", "remote": "192.0.2.1:5", "method": "smtp-plain"}},
	} {
		got, err := json.Marshal(tc.got)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(tc.old)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: fields encode as\n%s\nwant (as the map wrote them)\n%s", tc.name, got, want)
		}
	}
}

// Entries written by the map-based writers decode into the structs, and
// one record/entry reference names the same stored entry from the ingest,
// recovery and compaction entries.
func TestAuditFieldsDecodeOldEntries(t *testing.T) {
	t.Parallel()
	rec := [32]byte{0xaa, 0xbb}
	recHex := hex.EncodeToString(rec[:])
	line := func(seq uint64, typ, fields string) audit.Entry {
		t.Helper()
		e, err := audit.ParseEntry([]byte(fmt.Sprintf(`{"seq":%d,"time":"2026-11-01T10:00:00Z","type":%q,"actor":"smtpd","fields":%s,"prev":"%064x"}`, seq, typ, fields, 0)))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	ing := line(1, audit.TypeIngest, `{"client_ip":"127.0.0.1","digest":"0909","entry":3,"id":18446744073709551615,"kind":"message","offset":4096,"record":"`+recHex+`","segment":"00000007","size":10,"source":"smtp"}`)
	var f ingestFields
	if err := ing.DecodeFields(&f); err != nil {
		t.Fatal(err)
	}
	if f.ID != 1<<64-1 || f.Offset != 4096 || f.Segment != "00000007" || f.Digest != "0909" {
		t.Errorf("ingest decoded as %+v", f)
	}
	rcv := line(2, audit.TypeRecover, `{"bytes":5,"entries":[{"entry":3,"id":7,"kind":"message","record":"`+recHex+`"}],"kept_in":"x","op":"discard uncommitted tail"}`)
	var r recoverFields
	if err := rcv.DecodeFields(&r); err != nil {
		t.Fatal(err)
	}
	cmp := line(3, audit.TypeSegmentCompact, `{"dropped":[{"entry":3,"id":7,"kind":"message","record":"`+recHex+`"}],"old_sha256":"a","old_size":1,"segment":"00000007","sha256":"b","size":0}`)
	var c compactFields
	if err := cmp.DecodeFields(&c); err != nil {
		t.Fatal(err)
	}
	want := refOf(rec, 3)
	if f.ref() != want || len(r.Entries) != 1 || r.Entries[0].ref() != want || len(c.Dropped) != 1 || c.Dropped[0].ref() != want {
		t.Errorf("references differ: ingest %v, recover %v, compact %v, want %v", f.ref(), r.Entries, c.Dropped, want)
	}
	if err := line(4, audit.TypeIngest, `{"id":"seven"}`).DecodeFields(&f); err == nil {
		t.Error("DecodeFields accepted a string id")
	}
}

func TestAsError(t *testing.T) {
	t.Parallel()
	a := newTestArchive(t)
	ctx := WithActor(t.Context(), "test")
	_, qerr := a.CreateHold(ctx, "h", "subject:(", "case")
	_, nerr := a.Get(ctx, 9)
	_, herr := a.ReleaseHold(ctx, "none", "r")
	for _, tc := range []struct {
		name string
		err  error
		code Code
	}{
		{"nil", nil, ""},
		{"query", fmt.Errorf("hold: %w", qerr), CodeInvalid},
		{"not found", nerr, CodeNotFound},
		{"hold", herr, CodeInvalid},
		{"deleted", &DeletedError{ID: 3, What: "erased on request"}, CodeDeleted},
		{"invalid", invalid("x"), CodeInvalid},
		{"other", fmt.Errorf("disk: %w", fmt.Errorf("EIO")), CodeInternal},
	} {
		e := AsError(tc.err)
		if (e == nil) != (tc.code == "") || (e != nil && e.Code != tc.code) {
			t.Errorf("AsError(%s: %v) = %+v, want code %q", tc.name, tc.err, e, tc.code)
		}
	}
	if e := AsError(qerr); e.Fields["offset"] != 8 {
		t.Errorf("query error fields = %v, want offset 8", e.Fields)
	}
	carried := &Error{Code: CodeDeleted, Message: "m"}
	if !errors.Is(carried, ErrDeleted) || errors.Is(carried, ErrNotFound) {
		t.Error("an *Error of CodeDeleted does not match ErrDeleted alone")
	}
}

func newTestArchive(t *testing.T) *Archive {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Create(t.TempDir(), []string{id.Recipient().String()}, Options{MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return a
}
