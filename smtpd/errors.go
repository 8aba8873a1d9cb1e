// SPDX-License-Identifier: Apache-2.0

package smtpd

import "errors"

// ErrServerClosed is returned by [Server.Serve] and [Server.ServeTLS] after
// [Server.Shutdown] has been called, and by a second Shutdown.
var ErrServerClosed = errors.New("smtpd: server closed")
