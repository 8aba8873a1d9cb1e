// SPDX-License-Identifier: Apache-2.0

//go:build !unix

package audit

import (
	"os"
	"path/filepath"
	"time"
)

// lockDir opens dir/lock without locking: non-Unix systems are not a
// supported appliance platform, so a second writer is not detected there.
func lockDir(dir string, _ time.Duration) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
}
