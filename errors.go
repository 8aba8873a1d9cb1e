// SPDX-License-Identifier: Apache-2.0

package sealmail

import "errors"

// ErrStorageFull reports that the archive cannot take more data now: free disk
// space is below the configured floor, or a write failed with ENOSPC. The SMTP
// layer answers it with a temporary 452 so that the sender retries later.
var ErrStorageFull = errors.New("sealmail: storage full")
