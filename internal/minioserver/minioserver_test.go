package minioserver

import "testing"

// TestMissingBinaryMessage: without minio the failure must say how to get it.
func TestMissingBinaryMessage(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv("HOME", empty)
	t.Setenv("GOPATH", empty)
	t.Setenv("GOBIN", "")
	_, err := findMinio()
	if err == nil || err.Error() != "minio not found: run scripts/install-deps.sh" {
		t.Fatalf("findMinio() error = %v", err)
	}
}
