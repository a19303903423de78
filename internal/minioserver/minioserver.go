// Package minioserver runs a throwaway MinIO server on 127.0.0.1, with its
// own data directory, ports and credentials: the S3 implementation the
// tests (through internal/miniotest) and tailer-bench run tailer against.
// It does not import testing, so tailer-bench does not link it.
//
// The minio binary comes from scripts/install-deps.sh (GOPATH/bin) or PATH.
package minioserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region the server is addressed with.
const Region = "us-east-1"

// startTimeout bounds how long Launch and Restart wait for MinIO to answer
// its liveness probe.
const startTimeout = 30 * time.Second

// Server is one running MinIO on 127.0.0.1 with its own data directory
// and credentials.
type Server struct {
	// Endpoint is the S3 endpoint URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string

	bin         string
	dataDir     string
	logPath     string
	port        int
	consolePort int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// Launch starts MinIO with its files under dir, on free ports of
// 127.0.0.1 with fresh credentials, and returns once it is ready; the
// caller stops it (miniotest.Start does, at the end of a test).
func Launch(dir string) (*Server, error) {
	bin, err := findMinio()
	if err != nil {
		return nil, err
	}
	s := &Server{
		bin:       bin,
		dataDir:   filepath.Join(dir, "data"),
		logPath:   filepath.Join(dir, "minio.log"),
		AccessKey: "tailer" + randomHex(4),
		SecretKey: randomHex(16),
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return nil, err
	}
	// A free port can be taken by someone else between our probe and
	// MinIO's bind; try a few.
	for attempt := 1; ; attempt++ {
		if s.port, err = FreePort(); err == nil {
			s.consolePort, err = FreePort()
		}
		if err != nil {
			return nil, err
		}
		s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(s.port)
		err = s.start()
		if err == nil {
			return s, nil
		}
		s.Stop()
		if attempt == 3 {
			return nil, fmt.Errorf("minio did not start: %w\n%s", err, s.LogTail())
		}
	}
}

// findMinio looks in GOBIN, each GOPATH/bin, then PATH.
func findMinio() (string, error) {
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
		}
		if len(lines) > 1 {
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errors.New("minio not found: run scripts/install-deps.sh")
}

func (s *Server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "server",
		"--address", "127.0.0.1:"+strconv.Itoa(s.port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(s.consolePort),
		"--certs-dir", filepath.Join(filepath.Dir(s.dataDir), "certs"),
		"--quiet",
		s.dataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return s.waitLive(done)
}

// waitLive polls /minio/health/live and then /minio/health/ready until
// both answer 200, then makes an authenticated request (ListBuckets) until
// one succeeds, MinIO exits, or startTimeout passes. "Live" comes before
// the object layer is initialised, and "ready" can come before the
// credentials are loaded; S3 requests in between get 503, which the
// retrying client keeps retrying (seen as a timed-out test on a loaded
// machine), so tests start only once MinIO serves them.
func (s *Server) waitLive(done chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return errors.New("minio exited during startup")
		default:
		}
		ok := 0
		var err error
		for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
			var resp *http.Response
			if resp, err = client.Get(s.Endpoint + path); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok++
				}
			}
		}
		if ok == 2 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = s.Client().ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
			cancel()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not live at %s after %s (last error: %v)", s.Endpoint, startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop terminates MinIO (SIGTERM, then SIGKILL after 10 s) and waits for
// it; the data directory is kept for Restart. Stopping twice is fine.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Restart stops MinIO and starts it again with the same data directory,
// port and credentials, so clients configured before keep working: the
// building block of outage tests.
func (s *Server) Restart() error {
	s.Stop()
	// The port was just released; retry briefly in case the kernel has not
	// let go of it yet.
	var err error
	for i := 0; i < 20; i++ {
		if err = s.start(); err == nil {
			return nil
		}
		s.Stop()
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("minio restart on %s failed: %w\n%s", s.Endpoint, err, s.LogTail())
}

// URL returns the replica URL for bucket and prefix on this server, with
// the endpoint, region and path-style in the query. Credentials are not in
// it: pass AccessKey/SecretKey, or call SetEnv.
func (s *Server) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if p := strings.Trim(prefix, "/"); p != "" {
		u += "/" + p
	}
	return u + "?endpoint=" + s.Endpoint + "&region=" + Region + "&path-style=true"
}

// Env returns the AWS SDK environment for a subprocess (e.g. the tailer
// binary) to use this server: credentials, region and endpoint, with
// shared config files and the EC2 metadata service disabled so the
// developer's own AWS setup cannot leak in.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Client returns an S3 client with the root credentials, for tests that
// need to look under the replica (HeadObject, multipart listings).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// PID is MinIO's process id (0 when stopped), for callers that measure
// its resource use.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(ctx context.Context, name string) error {
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s on %s: %w", name, s.Endpoint, err)
	}
	return nil
}

// LogPath is MinIO's log file.
func (s *Server) LogPath() string { return s.logPath }

// LogTail returns the end of MinIO's log, for failure messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
