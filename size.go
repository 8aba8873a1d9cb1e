// SPDX-License-Identifier: Apache-2.0

package sealmail

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize parses a byte count as people write it, in the one grammar the
// query language (larger:10M) and the configuration (max_message_size =
// "64MiB") share: decimal digits, then optionally a unit K, M, G or T
// (powers of 1024), which may be followed by B or iB, or a bare B. Case does
// not matter; spaces are not allowed. A count that does not fit in an int64
// is an error.
func ParseSize(s string) (int64, error) {
	u := strings.ToUpper(s)
	mult := int64(1)
	for _, suf := range []string{"IB", "B"} {
		if strings.HasSuffix(u, suf) {
			u = strings.TrimSuffix(u, suf)
			if suf == "IB" && !strings.HasSuffix(u, "K") && !strings.HasSuffix(u, "M") && !strings.HasSuffix(u, "G") && !strings.HasSuffix(u, "T") {
				return 0, sizeError(s)
			}
			break
		}
	}
	if u != "" {
		switch u[len(u)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			u = u[:len(u)-1]
		}
	}
	if u == "" {
		return 0, sizeError(s)
	}
	for i := 0; i < len(u); i++ {
		if u[i] < '0' || u[i] > '9' {
			return 0, sizeError(s)
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

func sizeError(s string) error {
	return fmt.Errorf("size %q: want a number with an optional unit K, M, G or T (powers of 1024, optionally followed by B or iB), e.g. 500K or 64MiB", s)
}

// FormatSize writes n in the largest unit of [ParseSize] that divides it
// exactly ("64MiB", "1GiB", "1000"), so that ParseSize(FormatSize(n)) == n.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
