package bench

import (
	"context"

	"github.com/tailer-backup/tailer/internal/miniotest"
)

// startMinio starts a throwaway MinIO under dir (the tests' own runner,
// internal/miniotest) and creates the bucket the bench ships to.
func startMinio(ctx context.Context, dir, bucket string) (*miniotest.Server, error) {
	s, err := miniotest.Launch(dir)
	if err != nil {
		return nil, err
	}
	if err := s.MakeBucket(ctx, bucket); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}
