package miniotest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestStartRestart checks the server answers, keeps data across Restart on
// the same endpoint, and is gone after Stop.
func TestStartRestart(t *testing.T) {
	s := Start(t)
	s.CreateBucket("bkt")
	ctx := context.Background()
	put := func() error {
		_, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: strings.NewReader("hello")})
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	endpoint := s.Endpoint
	s.Restart()
	if s.Endpoint != endpoint {
		t.Fatalf("endpoint changed across restart: %s -> %s", endpoint, s.Endpoint)
	}
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("got %q after restart", b)
	}
	s.Stop()
	if resp, err := http.Get(s.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatal("minio still answering after Stop")
	}
	if got := s.URL("bkt", "/p/q/"); got != "s3://bkt/p/q?endpoint="+s.Endpoint+"&region=us-east-1&path-style=true" {
		t.Fatalf("URL = %s", got)
	}
}
