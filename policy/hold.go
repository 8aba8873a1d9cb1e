// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sealmail/sealmail/index/query"
)

// Hold is a legal hold: while it is active, no message its query matches may
// be deleted, by retention expiry, GDPR erasure or by hand (§ 147 Abs. 3
// S. 5 AO, FRCP 37(e), GDPR Art. 17(3)(e)). Matching the query is the
// index's job; a hold covers mail that arrives after it was created too.
type Hold struct {
	Name      string    `json:"name"`
	Query     string    `json:"query"` // index/query syntax
	Reason    string    `json:"reason"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`

	Released      time.Time `json:"released,omitzero"` // zero while active
	ReleasedBy    string    `json:"released_by,omitempty"`
	ReleaseReason string    `json:"release_reason,omitempty"`
}

// Active reports whether the hold still applies.
func (h Hold) Active() bool { return h.Released.IsZero() }

// Holds is the set of legal holds, active and released, in creation order.
// Released holds stay in the set as the record. The zero value is an empty
// set. A copy of a Holds value is a snapshot: changes to one do not show in
// the other. Holds is not safe for concurrent use.
type Holds struct {
	list []Hold
}

// Create adds an active hold and returns it. The name must be well formed
// (letters, digits, '.', '_', '-'; at most 64) and not used by another
// active hold; a released hold's name may be reused. The query must parse
// (index/query), and reason and by must not be empty.
func (s *Holds) Create(name, q, reason, by string, now time.Time) (Hold, error) {
	fail := func(format string, a ...any) (Hold, error) {
		return Hold{}, &HoldError{Op: "create", Name: name, Msg: fmt.Sprintf(format, a...)}
	}
	if !validName(name) {
		return fail("name must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if _, ok := s.activeIndex(name); ok {
		return fail("an active hold has this name; release it first or choose another name")
	}
	if strings.TrimSpace(q) == "" {
		return fail(`query is empty; use "*" to hold every message`)
	}
	if _, err := query.Parse(q); err != nil {
		return fail("query: %v", err)
	}
	if strings.TrimSpace(reason) == "" {
		return fail("reason is empty; name the matter or case")
	}
	if strings.TrimSpace(by) == "" {
		return fail("creator is empty")
	}
	if now.IsZero() {
		return fail("creation time is zero")
	}
	h := Hold{Name: name, Query: q, Reason: reason, CreatedBy: by, Created: now.UTC().Round(0)}
	// Clip: never write into an array a copy of s may share.
	s.list = append(slices.Clip(s.list), h)
	return h, nil
}

// Release ends the active hold called name and returns it. The reason and by
// must not be empty, and now must not be before the hold's creation. The
// released hold stays in the set.
func (s *Holds) Release(name, by, reason string, now time.Time) (Hold, error) {
	fail := func(msg string) (Hold, error) {
		return Hold{}, &HoldError{Op: "release", Name: name, Msg: msg}
	}
	i, ok := s.activeIndex(name)
	switch {
	case !ok:
		return fail("no active hold has this name")
	case strings.TrimSpace(reason) == "":
		return fail("reason is empty; say why the matter no longer needs the hold")
	case strings.TrimSpace(by) == "":
		return fail("releaser is empty")
	case now.IsZero() || now.Before(s.list[i].Created):
		return fail("release time is before the hold was created")
	}
	s.list = slices.Clone(s.list) // copies of s keep their view
	h := &s.list[i]
	h.Released, h.ReleasedBy, h.ReleaseReason = now.UTC().Round(0), by, reason
	return *h, nil
}

func (s *Holds) activeIndex(name string) (int, bool) {
	for i := range s.list {
		if s.list[i].Name == name && s.list[i].Active() {
			return i, true
		}
	}
	return 0, false
}

// Get returns the active hold called name, or else the most recently
// created released one.
func (s *Holds) Get(name string) (Hold, bool) {
	if i, ok := s.activeIndex(name); ok {
		return s.list[i], true
	}
	for i := len(s.list) - 1; i >= 0; i-- {
		if s.list[i].Name == name {
			return s.list[i], true
		}
	}
	return Hold{}, false
}

// Active returns a copy of the active holds in creation order.
func (s *Holds) Active() []Hold {
	var out []Hold
	for _, h := range s.list {
		if h.Active() {
			out = append(out, h)
		}
	}
	return out
}

// All returns a copy of every hold, released ones included, in creation
// order.
func (s *Holds) All() []Hold { return append([]Hold(nil), s.list...) }

// holdsVersion is the version of the encoded form.
const holdsVersion = 1

// maxHolds bounds a decoded document; more holds than this is not a
// plausible archive and most likely a corrupt or hostile value.
const maxHolds = 100000

type holdsDoc struct {
	Version int    `json:"version"`
	Holds   []Hold `json:"holds"`
}

// MarshalJSON encodes the set as {"version":1,"holds":[…]}.
func (s Holds) MarshalJSON() ([]byte, error) {
	list := s.list
	if list == nil {
		list = []Hold{}
	}
	return json.Marshal(holdsDoc{Version: holdsVersion, Holds: list})
}

// UnmarshalJSON decodes a set written by [Holds.MarshalJSON]. It rejects
// unknown versions ([ErrUnsupportedVersion]), unknown fields, and records
// that Create and Release could not have produced: bad names, empty reasons
// or creators, zero creation times, two active holds with one name, and
// releases without time, releaser or reason or dated before creation.
// Queries are not re-parsed: a hold accepted once stays readable even if the
// query language changes, and the index reports queries it cannot run.
// JSON null leaves s unchanged, as encoding/json expects. On error s is
// unchanged.
func (s *Holds) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("policy: decode holds: %w", err)
	}
	if probe.Version == nil {
		return fmt.Errorf("policy: decode holds: no version")
	}
	if *probe.Version != holdsVersion {
		return fmt.Errorf("policy: decode holds version %d: %w", *probe.Version, ErrUnsupportedVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var doc holdsDoc
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("policy: decode holds: %w", err)
	}
	if len(doc.Holds) > maxHolds {
		return fmt.Errorf("policy: decode holds: %d holds, more than %d", len(doc.Holds), maxHolds)
	}
	active := map[string]bool{}
	for i := range doc.Holds {
		h := &doc.Holds[i]
		h.Created = h.Created.UTC()
		if !h.Released.IsZero() {
			h.Released = h.Released.UTC()
		}
		if err := checkStored(h, active); err != nil {
			return fmt.Errorf("policy: decode holds: holds[%d] %q: %w", i, h.Name, err)
		}
	}
	s.list = doc.Holds
	if len(s.list) == 0 {
		s.list = nil
	}
	return nil
}

func checkStored(h *Hold, active map[string]bool) error {
	switch {
	case !validName(h.Name):
		return errors.New("bad name")
	case strings.TrimSpace(h.Query) == "":
		return errors.New("empty query")
	case strings.TrimSpace(h.Reason) == "":
		return errors.New("empty reason")
	case strings.TrimSpace(h.CreatedBy) == "":
		return errors.New("empty creator")
	case h.Created.IsZero():
		return errors.New("no creation time")
	}
	if h.Active() {
		if h.ReleasedBy != "" || h.ReleaseReason != "" {
			return errors.New("release fields set without release time")
		}
		if active[h.Name] {
			return errors.New("second active hold with this name")
		}
		active[h.Name] = true
		return nil
	}
	switch {
	case h.Released.Before(h.Created):
		return errors.New("released before created")
	case strings.TrimSpace(h.ReleasedBy) == "":
		return errors.New("released without releaser")
	case strings.TrimSpace(h.ReleaseReason) == "":
		return errors.New("released without reason")
	}
	return nil
}
