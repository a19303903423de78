// Package miniotest runs a throwaway MinIO server for tests, so the S3
// backend is tested against a real S3 implementation (signing, multipart,
// pagination, error codes) rather than a mock. The server itself is
// internal/minioserver; this package ties it to a test.
//
// A missing minio binary fails the test instead of skipping it: a
// silently skipped S3 suite would let S3 regressions through. Under
// `go test -short` (the fast tier) every test that starts MinIO is
// skipped, and says so.
package miniotest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/minioserver"
)

// Region is the region the server is addressed with.
const Region = minioserver.Region

// Server is one running MinIO (see minioserver.Server) whose failures
// fail the test that started it.
type Server struct {
	*minioserver.Server
	t testing.TB
}

// Start launches MinIO and returns once it is ready; it is stopped when
// the test ends. Under -short it skips the test instead.
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts MinIO: skipped under -short (run without -short for the S3 tests)")
	}
	srv, err := minioserver.Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Server: srv, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			// A failing test against a server that hung or refused is
			// diagnosed from its own log.
			if tail := s.LogTail(); tail != "" {
				t.Logf("minio log (%s), last lines:\n%s", s.LogPath(), tail)
			}
		}
		s.Stop()
	})
	return s
}

// Restart stops MinIO and starts it again on the same endpoint with the
// same data (minioserver.Server.Restart), failing the test if it cannot.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Server.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

// CreateBucket creates a bucket, failing the test on error.
func (s *Server) CreateBucket(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.MakeBucket(ctx, name); err != nil {
		s.t.Fatal(err)
	}
}

// SetEnv applies Env to the current test process with t.Setenv (so the
// test cannot be parallel).
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
