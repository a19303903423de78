package setting

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorPhraseAndFind(t *testing.T) {
	db := Missing("DB", "store directory", "point it at the store")
	bad := Bad("Scratch", "scratch directory", "/x", "is inside the store")
	hint := &Error{Key: "Force", Name: "a forced takeover", Before: "or ", After: " if it is gone"}
	held := errors.New("held")
	cases := []struct {
		name string
		err  error
		msg  string
		keys []string
	}{
		{"missing", db, "no store directory given: point it at the store", []string{"DB"}},
		{"bad", bad, "scratch directory /x is inside the store", []string{"Scratch"}},
		{"wrapped", fmt.Errorf("run: %w", bad), "run: scratch directory /x is inside the store", []string{"Scratch"}},
		{"joined", fmt.Errorf("%w: stop it, %w", held, hint), "held: stop it, or a forced takeover if it is gone", []string{"Force"}},
		{"two", errors.Join(db, fmt.Errorf("x: %w", bad)), db.Error() + "\nx: " + bad.Error(), []string{"DB", "Scratch"}},
		{"none", held, "held", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err.Error() != c.msg {
				t.Fatalf("message %q, want %q", c.err.Error(), c.msg)
			}
			found := Find(c.err)
			if len(found) != len(c.keys) {
				t.Fatalf("found %d settings, want %v", len(found), c.keys)
			}
			for i, e := range found {
				if e.Key != c.keys[i] {
					t.Fatalf("setting %d is %s, want %s", i, e.Key, c.keys[i])
				}
			}
		})
	}
	if got := bad.Phrase("--scratch"); got != "--scratch /x is inside the store" {
		t.Fatalf("Phrase: %q", got)
	}
}
