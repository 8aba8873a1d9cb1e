// SPDX-License-Identifier: Apache-2.0

//go:build race

package pst

// raceEnabled lets the size tests use smaller (but still boundary-crossing)
// payloads under the race detector, which slows byte-heavy code tenfold.
const raceEnabled = true
