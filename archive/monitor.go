// SPDX-License-Identifier: Apache-2.0

package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sealmail/sealmail/vfs"
)

// monitorFile keeps what the daemon's monitoring must remember across
// restarts: the journaling sources' last messages and open gaps, the
// scrubber's last pass and where the current one is, and the last backup
// (docs/format.md, "monitor.json"). It is advisory: a missing or unreadable
// file only means starting afresh.
const monitorFile = "monitor.json"

const monitorVersion = 1

// monitorState is the content of monitor.json.
type monitorState struct {
	Version    int            `json:"version"`
	Journal    []journalState `json:"journal,omitempty"`
	Scrub      scrubState     `json:"scrub"`
	LastBackup time.Time      `json:"last_backup,omitzero"`
}

// journalState is one [[journal.expect]] source's state.
type journalState struct {
	Source   string    `json:"source"`
	LastSeen time.Time `json:"last_seen"`
	GapSince time.Time `json:"gap_since,omitzero"` // an open gap, detected then
}

// scrubState is the scrubber's: the last full pass and the one under way.
type scrubState struct {
	Last    *ScrubPass `json:"last,omitempty"`
	Current *ScrubPass `json:"current,omitempty"`
}

// monitor guards the state and writes it.
type monitor struct {
	mu sync.Mutex // serialises saves
}

// loadMonitor reads DIR/monitor.json; a file that is missing, does not
// parse or has another version gives the zero state (and a warning).
func (a *Archive) loadMonitor() monitorState {
	b, err := os.ReadFile(filepath.Join(a.dir, monitorFile))
	if errors.Is(err, fs.ErrNotExist) {
		return monitorState{Version: monitorVersion}
	}
	var st monitorState
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err == nil && st.Version != monitorVersion {
		err = fmt.Errorf("version %d", st.Version)
	}
	if err != nil {
		a.log.Warn("monitor state unreadable: starting afresh (journal gaps count from now, the scrubber starts a new pass)",
			"file", monitorFile, "err", err)
		return monitorState{Version: monitorVersion}
	}
	return st
}

// applyMonitor takes up the state a previous run left: the sources' last
// messages and open gaps (by their configured network), the scrubber's
// passes, the last backup.
func (a *Archive) applyMonitor(st monitorState) {
	a.gaps.mu.Lock()
	for i, e := range a.opts.JournalExpect {
		for _, js := range st.Journal {
			if js.Source != e.Source.String() || js.LastSeen.IsZero() || js.LastSeen.After(a.started) {
				continue
			}
			a.gaps.last[i] = js.LastSeen
			if !js.GapSince.IsZero() {
				a.gaps.open[i] = JournalGap{Source: js.Source, LastSeen: js.LastSeen, MaxSilence: e.MaxSilence.String(), Since: js.GapSince}
			}
		}
	}
	a.gaps.mu.Unlock()
	a.scrub.mu.Lock()
	a.scrub.status.Last, a.scrub.status.Current = st.Scrub.Last, st.Scrub.Current
	a.scrub.mu.Unlock()
	a.backups.mu.Lock()
	a.backups.last = st.LastBackup
	a.backups.mu.Unlock()
}

// saveMonitor writes the daemon's monitoring state atomically (a power cut
// leaves the old file or the new one). A read-only archive writes nothing.
func (a *Archive) saveMonitor() error {
	if a.opts.ReadOnly {
		return nil
	}
	a.monitor.mu.Lock()
	defer a.monitor.mu.Unlock()
	st := monitorState{Version: monitorVersion, Journal: a.journalStates(), LastBackup: a.LastBackup()}
	st.Scrub = a.scrubState()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := vfs.WriteFile(a.opts.FS, filepath.Join(a.dir, monitorFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save monitor state: %w", err)
	}
	return nil
}
