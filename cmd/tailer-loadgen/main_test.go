package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/integration/loadgen"
)

// execute runs the command line args and returns stdout, stderr and error.
func execute(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestRunThenVerify(t *testing.T) {
	dir := t.TempDir()
	db, marks := filepath.Join(dir, "primary"), filepath.Join(dir, "marks.jsonl")
	out, _, err := execute(t, context.Background(), "run", "--db", db, "--tx", "300", "--write-buffer", "256KiB",
		"--marks", marks, "--mark-every", "100", "--flush-every", "150", "--seed", "3")
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"wrote 300 transactions", "delivery", "final seq", ".blob"} {
		if !strings.Contains(out, want) {
			t.Errorf("run summary lacks %q:\n%s", want, out)
		}
	}
	ms, err := loadgen.ReadMarks(marks)
	if err != nil {
		t.Fatal(err)
	}
	// Marks at 100, 200, 300; the final mark is not repeated.
	if len(ms) != 3 || ms[0].Tx != 100 || ms[2].Tx != 300 {
		t.Fatalf("marks: %d, tx %v", len(ms), ms)
	}

	out, _, err = execute(t, context.Background(), "verify", "--db", db, "--marks", marks)
	if err != nil {
		t.Fatalf("verify against the last mark: %v\n%s", err, out)
	}
	if !strings.Contains(out, "OK   l") || strings.Contains(out, "DIFF") {
		t.Errorf("verify output:\n%s", out)
	}

	out, _, err = execute(t, context.Background(), "verify", "--db", db, "--marks", marks, "--seq", strconv.FormatUint(ms[0].Seq, 10))
	if !errors.Is(err, errReported) || !strings.Contains(out, "DIFF l") || !strings.Contains(out, "OK   a") {
		t.Errorf("verify against an older mark: %v\n%s", err, out)
	}

	if _, _, err = execute(t, context.Background(), "verify", "--db", db, "--marks", marks, "--seq", "1"); err == nil || !strings.Contains(err.Error(), "no mark with seq 1") {
		t.Errorf("verify with an unknown seq: %v", err)
	}

	// A second run refuses the existing store unless told to reset it.
	if _, _, err = execute(t, context.Background(), "run", "--db", db, "--tx", "1"); err == nil || !strings.Contains(err.Error(), "--reset") {
		t.Errorf("run over an existing store: %v", err)
	}
	if _, _, err = execute(t, context.Background(), "run", "--db", db, "--tx", "1", "--reset"); err != nil {
		t.Errorf("run --reset: %v", err)
	}
}

func TestRunStopsOnCancelWithFinalMark(t *testing.T) {
	dir := t.TempDir()
	db, marks := filepath.Join(dir, "primary"), filepath.Join(dir, "marks.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as if SIGINT arrived at once
	out, _, err := execute(t, ctx, "run", "--db", db, "--marks", marks)
	if err != nil {
		t.Fatalf("interrupted run: %v", err)
	}
	ms, err := loadgen.ReadMarks(marks)
	if err != nil || len(ms) != 1 || ms[0].Tx != 0 || ms[0].Seq != 1 {
		t.Fatalf("final mark: %v %+v", err, ms)
	}
	if !strings.Contains(out, "wrote 0 transactions") {
		t.Errorf("summary:\n%s", out)
	}

	_, _, err = execute(t, context.Background(), "run", "--db", db, "--reset", "--duration", "200ms", "--rate", "100", "--marks", marks)
	if err != nil {
		t.Fatalf("run --duration: %v", err)
	}
	if ms, _ = loadgen.ReadMarks(marks); len(ms) != 2 || ms[1].Tx == 0 || ms[1].Tx > 25 {
		t.Fatalf("marks after --duration run: %+v", ms)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.MkdirAll(junk, 0o755)
	os.WriteFile(filepath.Join(junk, "notes.txt"), []byte("x"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "no --db"},
		{[]string{"run", "--db", filepath.Join(dir, "a"), "--mark-every", "5"}, "--mark-every needs --marks"},
		{[]string{"run", "--db", filepath.Join(dir, "a"), "--write-buffer", "lots"}, "--write-buffer"},
		{[]string{"run", "--db", filepath.Join(dir, "a"), "--tx", "-1"}, "negative"},
		{[]string{"run", "--db", junk}, "not a RocksDB store"},
		{[]string{"verify", "--db", junk}, "--marks"},
		{[]string{"verify", "--db", junk, "--marks", filepath.Join(dir, "none")}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := execute(t, context.Background(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, sub := range []string{"run", "verify"} {
		out, _, err := execute(t, context.Background(), sub, "--help")
		if err != nil || !strings.Contains(out, "Examples:") || !strings.Contains(out, "tailer-loadgen "+sub) {
			t.Errorf("%s --help: %v\n%s", sub, err, out)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"256KiB", 256 << 10, true},
		{"1MiB", 1 << 20, true},
		{"4M", 4 << 20, true},
		{"64k", 64 << 10, true},
		{"2 GB", 2 << 30, true},
		{"512b", 512, true},
		{"", 0, false},
		{"0", 0, false},
		{"-1MiB", 0, false},
		{"1.5MiB", 0, false},
		{"lots", 0, false},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRunThenVerifyBlobs(t *testing.T) {
	dir := t.TempDir()
	db, marks, blobs := filepath.Join(dir, "primary"), filepath.Join(dir, "marks.jsonl"), filepath.Join(dir, "blobs")
	if _, _, err := execute(t, context.Background(), "run", "--db", db, "--tx", "200", "--write-buffer", "256KiB",
		"--marks", marks, "--blobs", blobs, "--blob-depth", "1", "--seed", "4"); err != nil {
		t.Fatalf("run: %v", err)
	}
	out, _, err := execute(t, context.Background(), "verify", "--db", db, "--marks", marks, "--blobs", blobs, "--blob-depth", "1")
	if err != nil || !strings.Contains(out, "referenced blobs in") {
		t.Fatalf("verify --blobs: %v\n%s", err, out)
	}
	// The wrong depth finds no blob where the mark says one is.
	_, errOut, err := execute(t, context.Background(), "verify", "--db", db, "--marks", marks, "--blobs", blobs)
	if !errors.Is(err, errReported) || !strings.Contains(errOut, "lacks") {
		t.Fatalf("verify --blobs at the wrong depth: %v\n%s", err, errOut)
	}
	if _, _, err := execute(t, context.Background(), "run", "--db", filepath.Join(dir, "other"), "--blobs", blobs, "--tx", "1"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("run into a used blob directory: %v", err)
	}
	if _, _, err := execute(t, context.Background(), "run", "--db", filepath.Join(dir, "x"), "--blobs", filepath.Join(dir, "b2"), "--blob-depth", "-1"); err == nil || !strings.Contains(err.Error(), "--blob-depth") {
		t.Fatalf("negative depth: %v", err)
	}
	if _, _, err := execute(t, context.Background(), "run", "--db", filepath.Join(dir, "y"), "--blobs", filepath.Join(dir, "b3"), "--blob-purge-delay", "-1s"); err == nil || !strings.Contains(err.Error(), "--blob-purge-delay") {
		t.Fatalf("negative purge delay: %v", err)
	}
}

// TestRunFlagsPurgeDelay: --blob-purge-delay reaches the generator's
// Config (0 kept as "purge at once") and defaults to 5s.
func TestRunFlagsPurgeDelay(t *testing.T) {
	if def := newRunCmd().Flags().Lookup("blob-purge-delay").DefValue; def != "5s" {
		t.Errorf("--blob-purge-delay defaults to %s, want 5s", def)
	}
	for _, d := range []time.Duration{0, time.Second, time.Minute} {
		cfg, err := (&runFlags{db: "x", blobs: "b", writeBuffer: "1MiB", purgeDelay: d}).config()
		if err != nil || cfg.BlobPurgeDelay != d {
			t.Errorf("--blob-purge-delay %v: Config.BlobPurgeDelay %v, %v", d, cfg.BlobPurgeDelay, err)
		}
	}
}
