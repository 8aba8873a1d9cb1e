// SPDX-License-Identifier: Apache-2.0

package journal

import (
	"bytes"
)

func bytesContains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

func toLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
