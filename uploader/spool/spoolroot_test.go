package spool

import (
	"context"
	"errors"
	"github.com/tailer-backup/tailer/uploader"
	"os"
	"path/filepath"
	"testing"
)

func mustOpen(t *testing.T, url string, o uploader.Options) uploader.Replica {
	t.Helper()
	r, err := uploader.Open(context.Background(), url, o)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return r
}

// TestSpellingsShareOneSpool: every spelling of the same bucket and
// prefix has one Identity and so one spool directory, however the region,
// path-style and endpoint were given; other buckets, prefixes or servers
// get their own.
func TestSpellingsShareOneSpool(t *testing.T) {
	clearAWSEnv(t)
	region := uploader.Options{Region: "eu-west-3"}
	for _, c := range []struct {
		name   string
		a, b   string
		ao, bo uploader.Options
		same   bool
	}{
		{name: "region added", a: "s3://bkt/mail?endpoint=http://minio:9000", b: "s3://bkt/mail?endpoint=http://minio:9000&region=eu-west-3", same: true},
		{name: "region option", a: "s3://bkt/mail", b: "s3://bkt/mail", bo: region, same: true},
		{name: "path-style", a: "s3://bkt/mail?endpoint=http://minio:9000", b: "s3://bkt/mail?endpoint=http://minio:9000&path-style=true", same: true},
		{name: "host case", a: "s3://bkt/mail?endpoint=http://MinIO:9000", b: "s3://bkt/mail?endpoint=http://minio:9000", same: true},
		{name: "default http port", a: "s3://bkt/mail?endpoint=http://minio", b: "s3://bkt/mail?endpoint=http://minio:80/", same: true},
		{name: "default https port", a: "s3://bkt/mail?endpoint=https://s3.example.com:443", b: "s3://bkt/mail?endpoint=https://s3.example.com", same: true},
		{name: "endpoint as option", a: "s3://bkt/mail?endpoint=http://minio:9000", b: "s3://bkt/mail", bo: uploader.Options{Endpoint: "http://minio:9000/"}, same: true},
		{name: "prefix slashes", a: "s3://bkt/a/b", b: "s3://bkt//a/b/", same: true},
		{name: "file path cleaned", a: "file:///srv/backup/mail", b: "file:///srv//backup/./mail/", same: true},
		{name: "other bucket", a: "s3://bkt/mail", b: "s3://bkt2/mail"},
		{name: "other prefix", a: "s3://bkt/mail", b: "s3://bkt/mail2"},
		{name: "root vs prefix", a: "s3://bkt", b: "s3://bkt/mail"},
		{name: "other port", a: "s3://bkt/mail?endpoint=http://minio:9000", b: "s3://bkt/mail?endpoint=http://minio:9001"},
		{name: "other host", a: "s3://bkt/mail?endpoint=http://minio-a:9000", b: "s3://bkt/mail?endpoint=http://minio-b:9000"},
		{name: "aws vs endpoint", a: "s3://bkt/mail", b: "s3://bkt/mail?endpoint=http://minio:9000"},
		{name: "file vs file", a: "file:///srv/a", b: "file:///srv/b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := mustOpen(t, c.a, c.ao), mustOpen(t, c.b, c.bo)
			if got := a.Identity() == b.Identity(); got != c.same {
				t.Fatalf("identities %q and %q: same=%v, want %v", a.Identity(), b.Identity(), got, c.same)
			}
			root := t.TempDir()
			sa, _, err := OpenReplicaSpool(root, a)
			if err != nil {
				t.Fatal(err)
			}
			if err := sa.Add("k", []byte("queued")); err != nil {
				t.Fatal(err)
			}
			sb, _, err := OpenReplicaSpool(root, b)
			if err != nil {
				t.Fatal(err)
			}
			if got := sa.Dir() == sb.Dir(); got != c.same {
				t.Fatalf("spools %s and %s: same=%v, want %v", sa.Dir(), sb.Dir(), got, c.same)
			}
			if c.same {
				wantPending(t, sb, "k")
			}
			// Encryption happens on upload: the wrapped replica has the same spool.
			key, err := uploader.RawKey(make([]byte, 32))
			if err != nil {
				t.Fatal(err)
			}
			enc, err := uploader.Encrypted(b, key)
			if err != nil {
				t.Fatal(err)
			}
			if enc.Identity() != b.Identity() || uploader.Unencrypted(b).Identity() != b.Identity() {
				t.Fatalf("wrappers changed the identity: %q, %q, want %q", enc.Identity(), uploader.Unencrypted(b).Identity(), b.Identity())
			}
		})
	}
}

// TestOpenReplicaSpoolAdoptsOldNames: a queue an older tailer named after
// the URL as shown, and one whose recorded identity matches under another
// name, are moved to the identity's name with their objects; one recorded
// for another replica is left where it is and listed as its owner's.
func TestOpenReplicaSpoolAdoptsOldNames(t *testing.T) {
	clearAWSEnv(t)
	r := mustOpen(t, "s3://bkt/mail?endpoint=http://minio:9000&region=eu-west-3", uploader.Options{})
	other := mustOpen(t, "s3://bkt/other?endpoint=http://minio:9000", uploader.Options{})
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, root string) string // returns the old directory
	}{
		{"older tailer, URL hash", func(t *testing.T, root string) string {
			return filepath.Join(root, spoolDirName(r.String()))
		}},
		{"recorded identity, other name", func(t *testing.T, root string) string {
			dir := filepath.Join(root, "0123456789ab")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := writeSpoolOwner(dir, SpoolOwner{Identity: r.Identity(), Replica: "s3://bkt/mail (as spelled before)"}); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			old := c.setup(t, root)
			if err := openSpool(t, old).Add("generations/g/segments/1-2.tseg", []byte("pending")); err != nil {
				t.Fatal(err)
			}
			foreign, _, err := OpenReplicaSpool(root, other)
			if err != nil {
				t.Fatal(err)
			}
			if err := foreign.Add("x", []byte("theirs")); err != nil {
				t.Fatal(err)
			}
			sp, moved, err := OpenReplicaSpool(root, r)
			if err != nil {
				t.Fatal(err)
			}
			if moved != old || sp.Dir() != filepath.Join(root, spoolDirName(r.Identity())) {
				t.Fatalf("moved %q into %s; want %q into the identity's name", moved, sp.Dir(), old)
			}
			if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("old directory still there: %v", err)
			}
			wantPending(t, sp, "generations/g/segments/1-2.tseg")
			infos, err := ListSpools(root)
			if err != nil {
				t.Fatal(err)
			}
			if len(infos) != 2 {
				t.Fatalf("ListSpools = %+v, want 2", infos)
			}
			for _, i := range infos {
				switch {
				case i.Dir == sp.Dir():
					if i.Owner == nil || i.Owner.Identity != r.Identity() || i.Owner.Replica != r.String() || !i.OwnedBy(r) || i.OwnedBy(other) {
						t.Errorf("own spool: %+v (owner %+v)", i, i.Owner)
					}
					if i.Objects != 1 || i.Bytes != int64(len("pending")) {
						t.Errorf("own spool holds %d objects, %d bytes; want 1, %d", i.Objects, i.Bytes, len("pending"))
					}
				case i.Dir == foreign.Dir():
					if i.OwnedBy(r) || !i.OwnedBy(other) || i.Objects != 1 {
						t.Errorf("other replica's spool: %+v", i)
					}
				default:
					t.Errorf("unexpected spool %+v", i)
				}
			}
			// A second start finds it in place.
			again, moved, err := OpenReplicaSpool(root, r)
			if err != nil || moved != "" || again.Dir() != sp.Dir() {
				t.Fatalf("reopen: %s moved %q, %v", again.Dir(), moved, err)
			}
		})
	}
}

// TestOpenReplicaSpoolRefusesForeignOwner: a directory under r's name
// that records another identity is an error, never silently shared.
func TestOpenReplicaSpoolRefusesForeignOwner(t *testing.T) {
	root := t.TempDir()
	r := mustOpen(t, "file:///srv/a", uploader.Options{})
	dir := filepath.Join(root, spoolDirName(r.Identity()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeSpoolOwner(dir, SpoolOwner{Identity: "file:///srv/b"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenReplicaSpool(root, r); !errors.Is(err, ErrSpoolOwner) {
		t.Fatalf("OpenReplicaSpool = %v, want ErrSpoolOwner", err)
	}
}
