package integration

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain skips the whole package under -short (the fast tier): every
// test here runs a live primary under load, tailer and restores, most of
// them against MinIO, for minutes in all. The full suite runs them.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("integration: skipped under -short (live primary, tailer, MinIO); run without -short for them")
		os.Exit(0)
	}
	os.Exit(m.Run())
}
