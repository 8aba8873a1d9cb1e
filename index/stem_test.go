// SPDX-License-Identifier: Apache-2.0

package index

import (
	"context"
	"fmt"
	"testing"

	"github.com/sealmail/sealmail"
)

// TestStem: a word finds that word only; stem: finds every indexed form
// of its English stem (in every word field, as a bare word does), a
// phrase of stems keeps its order where the field has positions, and a
// stem no indexed word has finds nothing.
func TestStem(t *testing.T) {
	x := openTemp(t)
	bodies := []string{
		"she would befriend the neighbours", // 1
		"he befriended a stray dog",         // 2
		"befriending dogs is easy",          // 3
		"friends of the lying man",          // 4
		"the dog lies; the man died",        // 5
		"happiness and happy days",          // 6
	}
	var docs []Doc
	for i, b := range bodies {
		raw := fmt.Sprintf("From: a@example.com\r\nSubject: note %d\r\nMessage-ID: <%d@x>\r\n\r\n%s\r\n", i+1, i+1, b)
		docs = append(docs, Doc{ID: sealmail.MessageID(i + 1), Raw: []byte(raw)})
	}
	docs = append(docs, Doc{ID: 7, Raw: []byte("From: a@example.com\r\nSubject: Befriends wanted\r\n\r\nnothing\r\n")})
	if err := x.Add(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{
		"befriending":              1,
		"stem:befriending":         4, // befriend, befriended, befriending, Befriends (subject)
		"stem:BEFRIEND":            4,
		"body:befriend":            1,
		"stem:lie":                 2, // lying, lies
		"stem:dies":                1, // died (lying is of lie)
		"stem:happiness":           1, // happy and happiness are both happi
		`stem:"befriended dog"`:    2, // the body keeps no positions: all the words
		`stem:"befriend wanting"`:  1, // the subject does: adjacent, in order
		`stem:"wanting befriend"`:  0,
		"stem:unindexedword":       0,
		"stem:befriend -stem:dogs": 2,
	} {
		n, err := x.Count(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n != want {
			t.Errorf("Count(%s) = %d, want %d", q, n, want)
		}
	}
}
