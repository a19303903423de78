package integration

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSingleWriter: a second `tailer run` on the same replica prefix exits
// non-zero naming the holder; with --force-takeover it takes over, and the
// first one stops (non-zero, saying it lost the lease) without writing.
func TestSingleWriter(t *testing.T) {
	bin, err := buildTailer()
	if err != nil {
		t.Fatalf("build tailer: %v", err)
	}
	e := newEnv(t, backends()[0], 9)
	e.load(100)
	url := e.replica.String()
	run := func(extra ...string) (*exec.Cmd, *bytes.Buffer) {
		args := append([]string{"run", "--db", e.gen.Dir(), "--replica", url, "--poll", "100ms", "--listen", "",
			"--lease-ttl", "3s", "--log-format", "text"}, extra...)
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	first, firstOut := run("--scratch", filepath.Join(e.dir, "s1"))
	defer first.Process.Kill()
	e.waitRestorable(e.gen.Store().DB.GetLatestSequenceNumber())

	second, secondOut := run("--scratch", filepath.Join(e.dir, "s2"))
	err = second.Wait()
	if err == nil || !strings.Contains(secondOut.String(), "leased by another tailer") || !strings.Contains(secondOut.String(), e.gen.Dir()) {
		t.Fatalf("second tailer: %v\n%s", err, secondOut)
	}

	third, thirdOut := run("--scratch", filepath.Join(e.dir, "s3"), "--force-takeover")
	defer third.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(firstOut.String(), "taken over") {
			t.Fatalf("first tailer after a takeover: %v\n%s", err, firstOut)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("first tailer kept running after its lease was taken over\n%s", firstOut)
	}
	e.load(100)
	final := e.mark()
	e.waitRestorable(final.Seq)
	if err := third.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := third.Wait(); err != nil {
		t.Fatalf("third tailer on SIGTERM: %v\n%s", err, thirdOut)
	}
	e.checkRestore(final)
}
