// SPDX-License-Identifier: Apache-2.0

package export

import "errors"

// ErrClosed is returned by Add on a writer that has been closed.
var ErrClosed = errors.New("export: writer closed")

// ErrDuplicate is returned by Add when a message id was already exported
// through the same writer: file names and manifest rows are keyed by id.
var ErrDuplicate = errors.New("export: duplicate message id")
