// SPDX-License-Identifier: Apache-2.0

package audit

import (
	"errors"
	"fmt"
)

// errNoCheckpoint: latestCheckpoint found none.
var errNoCheckpoint = errors.New("audit: no checkpoint")

// latestCheckpoint returns the newest checkpoint entry in the log in dir,
// reading from the end, without locking. It does not check the signature
// or the chain: [Verify] does. It fails with errNoCheckpoint if there is
// none.
func latestCheckpoint(dir string) (Checkpoint, error) {
	ns, err := listFiles(dir)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	var cp Checkpoint
	var cpErr error
	found := false
	err = scanBack(dir, ns, 0, func(e Entry) bool {
		if e.Type != TypeCheckpoint {
			return true
		}
		cp, cpErr = checkpointFromEntry(e)
		found = true
		return false
	})
	switch {
	case err != nil:
		return Checkpoint{}, fmt.Errorf("audit: latest checkpoint: %w", err)
	case !found:
		return Checkpoint{}, errNoCheckpoint
	case cpErr != nil:
		return Checkpoint{}, fmt.Errorf("audit: latest checkpoint: %w: %w", ErrCorrupt, cpErr)
	}
	return cp, nil
}
