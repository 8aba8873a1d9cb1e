// SPDX-License-Identifier: Apache-2.0

//go:build !unix

package vfs

import "os"

// tryFlock does not lock: non-Unix systems are not a supported appliance
// platform, so a second writer is not detected there.
func tryFlock(*os.File) error { return nil }
