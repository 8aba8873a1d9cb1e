// SPDX-License-Identifier: Apache-2.0

//go:build !unix

package index

import "os"

// lockDir is a no-op where flock is not available.
func lockDir(string) (*os.File, error) { return nil, nil }
