package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNoTestCodeInTheBinary: the production binary links neither the
// testing package nor the benchmark and the test servers it runs; those
// live in tailer-bench. An import that brings one back fails here, with
// the package that is not wanted.
func TestNoTestCodeInTheBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const mod = "github.com/tailer-backup/tailer/"
	banned := map[string]bool{"testing": true, mod + "bench": true, mod + "integration/loadgen": true,
		mod + "internal/miniotest": true, mod + "internal/minioserver": true}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		if banned[p] || strings.HasSuffix(p, "test") && strings.HasPrefix(p, mod) {
			t.Errorf("cmd/tailer links %s: test and benchmark code belongs in cmd/tailer-bench (see 'go list -deps ./cmd/tailer')", p)
		}
	}
	if n < 50 {
		t.Fatalf("go list -deps listed %d packages: %s", n, out)
	}
}

// TestBenchRunsTailerBench: `tailer bench` runs the tailer-bench beside it,
// else the one on PATH, with its flags as resolved (command line,
// environment) plus --tailer set to itself, in the same process (a
// script's kill still reaches it) and with its exit status; without one
// it says how to build it.
func TestBenchRunsTailerBench(t *testing.T) {
	// A stand-in tailer-bench that prints its arguments and exits 7.
	const fake = "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\necho \"pid $$\" >&2\nexit 7\n"
	beside := t.TempDir()
	self := linkTailer(t, beside)
	writeExe(t, beside, "tailer-bench", fake)
	onPath := t.TempDir()
	selfAlone := linkTailer(t, onPath)
	pathDir := t.TempDir()
	writeExe(t, pathDir, "tailer-bench", fake)
	nowhere := t.TempDir()
	selfNowhere := linkTailer(t, nowhere)

	for _, c := range []struct {
		name, tailer, path string
		args, env          []string
		wantArgs           []string // the fake's arguments, one per line
		wantErr            string   // the error line instead
	}{
		{name: "beside", tailer: self, args: []string{"bench", "--only", "tailing,stores", "--rate", "5", "--quick"},
			wantArgs: []string{"--quick=true", "--only=tailing,stores", "--rate=5", "--log-format=json", "--log-level=info", "--tailer=" + self}},
		{name: "from the environment", tailer: self, args: []string{"bench"}, env: []string{"TAILER_POLL=250ms", "TAILER_LOG_LEVEL=warn"},
			wantArgs: []string{"--poll=250ms", "--log-format=json", "--log-level=warn", "--tailer=" + self}},
		{name: "on PATH", tailer: selfAlone, path: pathDir, args: []string{"bench", "--size", "1GiB"},
			wantArgs: []string{"--size=1GiB", "--log-format=json", "--log-level=info", "--tailer=" + selfAlone}},
		{name: "missing", tailer: selfNowhere, args: []string{"bench"},
			wantErr: "tailer: bench needs tailer-bench, which is neither beside " + selfNowhere + " nor on PATH: build it with 'go build -o " + filepath.Join(nowhere, "tailer-bench") + " ./cmd/tailer-bench'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = t.TempDir()
			}
			path += ":/usr/bin:/bin"
			pid, code, stdout, stderr := runBin(t, c.tailer, append(c.args, "--log-format", "json"), append([]string{"PATH=" + path}, c.env...))
			if c.wantErr != "" {
				if code != 1 || strings.TrimSpace(stderr) != c.wantErr {
					t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, c.wantErr)
				}
				return
			}
			if code != 7 {
				t.Fatalf("exit %d, want tailer-bench's 7; stderr:\n%s", code, stderr)
			}
			if want := "pid " + strconv.Itoa(pid); strings.TrimSpace(stderr) != want {
				t.Errorf("tailer-bench said %q, want %q: not the same process", stderr, want)
			}
			if got := strings.Split(strings.TrimSpace(stdout), "\n"); strings.Join(got, " ") != strings.Join(c.wantArgs, " ") {
				t.Errorf("tailer-bench got\n  %q\nwant\n  %q", got, c.wantArgs)
			}
		})
	}
}

// TestBenchWithTailerBench: the real tailer-bench, built beside tailer,
// gets the flags: an --only it refuses is its error and exit status.
func TestBenchWithTailerBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tailer-bench (TestBenchRunsTailerBench checks the forwarding): skipped under -short")
	}
	dir := t.TempDir()
	self := linkTailer(t, dir)
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "tailer-bench"), "../tailer-bench").CombinedOutput(); err != nil {
		t.Fatalf("build tailer-bench: %v\n%s", err, out)
	}
	for _, env := range [][]string{nil, {"TAILER_ONLY=none"}} {
		args := []string{"bench"}
		if env == nil {
			args = append(args, "--only", "none")
		}
		_, code, _, stderr := runBin(t, self, args, append([]string{"PATH=/usr/bin:/bin"}, env...))
		want := `tailer-bench: --only "none": use lag, tailing, overhead or stores`
		if code != 1 || strings.TrimSpace(stderr) != want {
			t.Errorf("%v %v: exit %d, stderr %q; want 1 and %q", env, args, code, stderr, want)
		}
	}
}

// linkTailer puts the test's tailer binary into dir (a hard link, else a
// copy) and returns its path.
func linkTailer(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "tailer")
	if err := os.Link(bin, p); err == nil {
		return p
	}
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeExe(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runBin runs prog with args in a minimal environment plus env.
func runBin(t *testing.T, prog string, args, env []string) (pid, code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "TMPDIR=" + os.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Start()
	if err == nil {
		pid = cmd.Process.Pid
		err = cmd.Wait()
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", prog, err)
	}
	return pid, code, out.String(), errb.String()
}
