package integration

import (
	"context"
	"testing"

	"github.com/tailer-backup/tailer/internal/catalog"
	"github.com/tailer-backup/tailer/internal/layout"
)

func readMeta(t *testing.T, e *env, key string) layout.Meta {
	t.Helper()
	m, err := catalog.ReadMeta(context.Background(), e.replica, key)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
