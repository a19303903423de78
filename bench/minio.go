package bench

import (
	"context"

	"github.com/tailer-backup/tailer/internal/minioserver"
)

// startMinio starts a throwaway MinIO under dir (the runner the tests use too,
// internal/minioserver) and creates the bucket the bench ships to.
func startMinio(ctx context.Context, dir, bucket string) (*minioserver.Server, error) {
	s, err := minioserver.Launch(dir)
	if err != nil {
		return nil, err
	}
	if err := s.MakeBucket(ctx, bucket); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}
