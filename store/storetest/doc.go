// SPDX-License-Identifier: Apache-2.0

// Package storetest helps tests that use a [store.Store]: [New] opens a
// store in a temporary directory and verifies it when the test ends, in the
// spirit of bbolt's btesting MustCheck, so that every test that writes also
// checks that what it left is consistent.
package storetest
