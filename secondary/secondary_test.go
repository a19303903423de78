package secondary

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenRejectsBadInput(t *testing.T) {
	base := t.TempDir()
	notDB := filepath.Join(base, "plain")
	if err := os.MkdirAll(notDB, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, primary, scratch, want string
	}{
		{"missing store", filepath.Join(base, "nope"), filepath.Join(base, "s1"), "does not exist"},
		{"not a RocksDB store", notDB, filepath.Join(base, "s2"), "not a RocksDB store"},
		{"scratch inside the primary", notDB, filepath.Join(notDB, "scratch"), "inside the primary's directory"},
		{"scratch is the primary", notDB, notDB, "inside the primary's directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.primary, tc.scratch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
