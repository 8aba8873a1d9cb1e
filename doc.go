// SPDX-License-Identifier: Apache-2.0

// Package sealmail holds the nouns every sealmail package shares: message ids,
// envelopes, addresses and recipient kinds.
//
// # Invariants
//
// The package uses the standard library only and does no I/O, so that every
// other package may import it without pulling anything in. Behaviour lives in
// the packages that own it (store, journal, index, …); here are only plain
// types and pure methods.
package sealmail
