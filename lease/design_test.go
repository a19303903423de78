package lease

import (
	"slices"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/docexample"
)

// TestDesignDocLease checks the lease.json of docs/design.md against the
// code: exactly what a holder writes, every field documented, under the
// documented key, with expires = renewed + the default TTL.
func TestDesignDocLease(t *testing.T) {
	doc := docexample.Load(t, "design.md")
	var rec Record
	doc.CheckJSON(t, Key, &rec)
	if !slices.Contains(doc.Lines(t, "keys"), Key) {
		t.Errorf("the documented keys do not show %s", Key)
	}
	if got := rec.Expires.Sub(rec.Renewed); got != 30*time.Second {
		t.Errorf("the documented lease expires %v after its renewal, not the default TTL of 30s", got)
	}
	if rec.Token == "" || rec.Instance == "" {
		t.Error("the documented lease must show token and instance")
	}
}
