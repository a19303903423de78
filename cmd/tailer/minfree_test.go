package main

import (
	"path/filepath"
	"testing"
)

// TestRunMinFreeRefusesBadValues: --min-free names itself and what it
// takes when given a negative value, more than 100% or a non-size.
func TestRunMinFreeRefusesBadValues(t *testing.T) {
	db := filepath.Join(t.TempDir(), "primary")
	newStore(t, db)
	url := "file://" + filepath.Join(t.TempDir(), "replica")
	for _, c := range []struct{ name, value, why string }{
		{"negative percentage", "-1%", "negative"},
		{"negative size", "-2GiB", "negative"},
		{"over 100%", "101%", "more than the whole filesystem"},
		{"not a size", "lots", "not a size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFailure(t, cliCase{args: []string{"run", "--db", db, "--replica", url, "--listen", "", "--min-free", c.value},
				want: []string{"--min-free", c.value, c.why, "2GiB", "0 to disable"}})
		})
	}
}
