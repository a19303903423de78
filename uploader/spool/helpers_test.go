package spool

// Helpers the package's tests share; the object helpers are the
// conformance suite's.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/uploader"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestFileReplica(t *testing.T) uploader.Replica {
	r, err := uploader.Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir())+"/replica", uploader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// clearAWSEnv keeps the developer's AWS settings out of Open.
func clearAWSEnv(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}
