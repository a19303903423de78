package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Proc is one measured subprocess.
type Proc struct {
	Seconds float64 `json:"seconds"`
	// PeakRSS is the child's peak resident set in bytes: the last VmHWM
	// (a high-water mark) read from /proc/PID/status, sampled every 10 ms
	// while it ran. Not ru_maxrss: Go starts children with CLONE_VM, and
	// Linux folds the parent's (the bench's) high-water mark into the
	// child's maxrss at exec, so it reports the bench, not tailer.
	PeakRSS int64 `json:"peak_rss_bytes"`
}

// measure runs name args to completion, timing it and sampling its peak
// RSS. It runs as a subprocess so the figure is tailer's alone, not the
// bench's (which holds the primary and the load generator).
func measure(ctx context.Context, env []string, name string, args ...string) (Proc, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return Proc{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			el := time.Since(t0)
			if err != nil {
				return Proc{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(out.Bytes()))
			}
			return Proc{Seconds: el.Seconds(), PeakRSS: peak}, nil
		case <-tick.C:
			if v, err := vmHWM(cmd.Process.Pid); err == nil {
				peak = max(peak, v)
			}
		}
	}
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// dirSize is the bytes of the regular files under dir (hard links counted
// at each name, as tar and a copy would read them).
func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
