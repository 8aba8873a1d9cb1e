// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupportedVersion reports an encoded [Holds] document whose version
// this build does not know.
var ErrUnsupportedVersion = errors.New("policy: unsupported version")

// ConfigError is one problem [Policy.Validate] found. It names the rule (by
// name and position), the field, what is wrong, and how to fix it.
type ConfigError struct {
	Rule    string // rule name, "default", or "" for policy-wide fields
	Index   int    // position in Policy.Rules, -1 for the default and policy-wide fields
	Field   string // config key, e.g. "keep", "time_zone"
	Problem string
	Fix     string
}

func (e *ConfigError) Error() string {
	var where []string
	switch {
	case e.Index >= 0 && e.Rule != "":
		where = append(where, fmt.Sprintf("rule %q (rules[%d])", e.Rule, e.Index))
	case e.Index >= 0:
		where = append(where, fmt.Sprintf("rules[%d]", e.Index))
	case e.Rule != "":
		where = append(where, e.Rule+" rule")
	}
	if e.Field != "" {
		where = append(where, e.Field)
	}
	s := "policy: "
	if len(where) > 0 {
		s += strings.Join(where, " ") + ": "
	}
	s += e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// HoldError is a rejected change to [Holds].
type HoldError struct {
	Op   string // "create" or "release"
	Name string
	Msg  string
}

func (e *HoldError) Error() string {
	return fmt.Sprintf("policy: %s hold %q: %s", e.Op, e.Name, e.Msg)
}
