package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tailer-backup/tailer/internal/minioserver"
)

// Binary is one tailer program the bench measures: the candidate (--tailer)
// or the baseline (--baseline), with the `run` flags only it is given.
type Binary struct {
	Name string   `json:"name"` // "candidate" or "baseline"
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
}

// tailerProc is a `tailer run` subprocess.
type tailerProc struct {
	Pid  int
	Addr string // its --listen address (/metrics, /readyz)
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// replicaURL is the s3:// replica URL of prefix in the bench's bucket at
// endpoint (MinIO itself, or the recording proxy in front of it).
func replicaURL(endpoint, prefix string) string {
	return "s3://" + bucket + "/" + prefix + "?endpoint=" + endpoint + "&region=" + minioserver.Region + "&path-style=true"
}

// s3Env is the environment of a tailer subprocess using endpoint.
func s3Env(srv *minioserver.Server, endpoint string) []string {
	// Later entries win in os/exec: the endpoint overrides MinIO's own.
	return append(srv.Env(), "AWS_ENDPOINT_URL_S3="+endpoint)
}

// startTailer starts `b.Path run` on db, shipping to replica, and returns
// once /readyz answers 200 (first export shipped, caught up). args are
// the binary's own extra flags; --poll is given to every binary.
func startTailer(ctx context.Context, o Options, b Binary, env []string, replica, db, scratch, logName string) (*tailerProc, error) {
	port, err := minioserver.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(o.Work, logName+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--db", db, "--scratch", scratch, "--replica", replica,
		"--listen", addr, "--log-format", "text", "--log-level", "warn"}
	if o.Poll > 0 {
		args = append(args, "--poll", o.Poll.String())
	}
	args = append(args, b.Args...)
	cmd := exec.Command(b.Path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", b.Path, err)
	}
	p := &tailerProc{Pid: cmd.Process.Pid, Addr: addr, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s %s exited before it was ready (log: %s): %s", b.Name, b.Path, logPath, tailFile(logPath))
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s %s not ready after 2 minutes (log: %s)", b.Name, b.Path, logPath)
		}
	}
}

// Exited reports whether the process has ended.
func (p *tailerProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits (a minute, then SIGKILL).
func (p *tailerProc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Metric reads one unlabelled sample from the process's /metrics (-1 when
// it does not export it).
func (p *tailerProc) Metric(name string) float64 {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.Addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := metricValue(sc.Text(), name); ok {
			return v
		}
	}
	return -1
}

// metricValue parses a Prometheus text line "name value" for name.
func metricValue(line, name string) (float64, bool) {
	rest, ok := strings.CutPrefix(line, name+" ")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	return v, err == nil
}

// cpuSeconds is the user + system CPU time of process pid so far, from
// /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime + stime (fields 14 and 15) from a
// /proc/PID/stat line, in seconds.
func parseStatCPU(s string) (float64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat line")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat line: %d fields after the name", len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat line: utime %q stime %q", f[11], f[12])
	}
	return (utime + stime) / 100, nil
}

// tailFile is the end of a log file, for errors.
func tailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(tail(b), "\n", "; ")
}
