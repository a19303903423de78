package uploader

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// clearAWSEnv isolates a test from the developer's AWS setup.
func clearAWSEnv(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// TestOpenS3Settings checks precedence (Options > URL query > environment)
// and the defaults: us-east-1, path-style exactly when an endpoint is set.
func TestOpenS3Settings(t *testing.T) {
	clearAWSEnv(t)
	yes, no := true, false
	for _, c := range []struct {
		name, url, envEndpoint, envRegion string
		opts                              Options
		bucket, prefix                    string
		endpoint, region                  string
		pathStyle                         bool
	}{
		{name: "aws defaults", url: "s3://bkt/p", bucket: "bkt", prefix: "p/", region: "us-east-1"},
		{name: "root prefix", url: "s3://bkt/", bucket: "bkt", region: "us-east-1"},
		{name: "deep prefix", url: "s3://bkt//a/b/", bucket: "bkt", prefix: "a/b/", region: "us-east-1"},
		{name: "query", url: "s3://bkt/p?endpoint=http://127.0.0.1:9000&region=eu-west-3", bucket: "bkt", prefix: "p/",
			endpoint: "http://127.0.0.1:9000", region: "eu-west-3", pathStyle: true},
		{name: "query path-style off", url: "s3://bkt/p?endpoint=https://s3.example.com&path-style=false", bucket: "bkt", prefix: "p/",
			endpoint: "https://s3.example.com", region: "us-east-1"},
		{name: "env", url: "s3://bkt/p", envEndpoint: "http://minio:9000", envRegion: "ap-south-1", bucket: "bkt", prefix: "p/",
			endpoint: "http://minio:9000", region: "ap-south-1", pathStyle: true},
		{name: "query beats env", url: "s3://bkt/p?endpoint=http://q:1&region=q-1", envEndpoint: "http://env:2", envRegion: "env-1",
			bucket: "bkt", prefix: "p/", endpoint: "http://q:1", region: "q-1", pathStyle: true},
		{name: "options beat query", url: "s3://bkt/p?endpoint=http://q:1&region=q-1&path-style=true",
			opts:   Options{Endpoint: "http://o:3", Region: "o-1", PathStyle: &no},
			bucket: "bkt", prefix: "p/", endpoint: "http://o:3", region: "o-1"},
		{name: "path-style forced for aws", url: "s3://bkt/p", opts: Options{PathStyle: &yes}, bucket: "bkt", prefix: "p/", region: "us-east-1", pathStyle: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.envEndpoint != "" {
				t.Setenv("AWS_ENDPOINT_URL_S3", c.envEndpoint)
			}
			if c.envRegion != "" {
				t.Setenv("AWS_REGION", c.envRegion)
			}
			r, err := Open(context.Background(), c.url, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			s3r := r.(*s3Replica)
			o := s3r.client.Options()
			if s3r.loc.bucket != c.bucket || s3r.loc.prefix != c.prefix {
				t.Errorf("bucket, prefix = %q, %q; want %q, %q", s3r.loc.bucket, s3r.loc.prefix, c.bucket, c.prefix)
			}
			if got := aws.ToString(o.BaseEndpoint); got != c.endpoint {
				t.Errorf("endpoint = %q, want %q", got, c.endpoint)
			}
			if o.Region != c.region {
				t.Errorf("region = %q, want %q", o.Region, c.region)
			}
			if o.UsePathStyle != c.pathStyle {
				t.Errorf("path-style = %v, want %v", o.UsePathStyle, c.pathStyle)
			}
		})
	}
}

func TestMultipartPartSize(t *testing.T) {
	clearAWSEnv(t)
	for _, c := range []struct{ threshold, part int64 }{
		{0, 16 << 20},
		{1, 5 << 20},
		{8 << 20, 8 << 20},
		{64 << 20, 16 << 20},
	} {
		r, err := Open(context.Background(), "s3://bkt", Options{MultipartThreshold: c.threshold})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.(*s3Replica).uploader.PartSize; got != c.part {
			t.Errorf("threshold %d: part size %d, want %d", c.threshold, got, c.part)
		}
	}
}
