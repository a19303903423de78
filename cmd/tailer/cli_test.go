package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailer-backup/tailer/internal/layout"
	"github.com/tailer-backup/tailer/internal/miniotest"
	"github.com/tailer-backup/tailer/internal/replicatest"
	"github.com/tailer-backup/tailer/internal/store"
)

// bin is the tailer binary the tests run, built once: bad input must be
// checked on the real process (exit status, what reaches stderr, no
// panic), not on cobra in memory.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tailer-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Readable by everyone: one case runs the binary as another user.
	os.Chmod(dir, 0o755)
	bin = filepath.Join(dir, "tailer")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tailer:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliCase is one invocation that must fail cleanly.
type cliCase struct {
	name   string
	args   []string
	env    []string // added to a minimal environment
	nobody bool     // run as an unprivileged user (for permission cases)
	want   []string // words the error line must contain
	stdout []string // words stdout must contain (verify lists problems there)
}

// runTailer runs the binary with JSON logs, so every line of stderr is
// either a log record or the error.
func runTailer(t *testing.T, c cliCase) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(c.args, "--log-format", "json")...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + os.TempDir()}, c.env...)
	if c.nobody {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Env[1] = "HOME=/"
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("tailer %v did not finish within a minute; stderr:\n%s", c.args, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run tailer: %v", err)
	}
	return code, out.String(), errb.String()
}

// checkFailure asserts a clean failure: non-zero exit, no panic or stack
// trace, and stderr holding log records and exactly one error line, last,
// "tailer: ..." with the expected words.
func checkFailure(t *testing.T, c cliCase) (output string) {
	t.Helper()
	code, stdout, stderr := runTailer(t, c)
	if code == 0 {
		t.Fatalf("exit status 0, want a failure; stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", ".go:"} {
		if strings.Contains(stderr, bad) || strings.Contains(stdout, bad) {
			t.Fatalf("output contains %q (a panic or stack trace?):\n%s%s", bad, stdout, stderr)
		}
	}
	var errLines []string
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	for _, l := range lines {
		if json.Valid([]byte(l)) && strings.HasPrefix(l, "{") {
			continue // a log record
		}
		errLines = append(errLines, l)
	}
	if len(errLines) != 1 || lines[len(lines)-1] != errLines[0] || !strings.HasPrefix(errLines[0], "tailer: ") {
		t.Fatalf("want one last stderr line starting with %q, got:\n%s", "tailer: ", stderr)
	}
	msg := errLines[0]
	for _, w := range c.want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	for _, w := range c.stdout {
		if !strings.Contains(stdout, w) {
			t.Errorf("stdout does not contain %q:\n%s", w, stdout)
		}
	}
	t.Logf("%s", msg)
	return stdout + stderr
}

// newStore creates a small RocksDB store in dir.
func newStore(t *testing.T, dir string) {
	t.Helper()
	st, err := store.OpenWritable(dir, []string{"n", "l", "p"}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestBadInput runs every CLI path with input an operator gets wrong.
func TestBadInput(t *testing.T) {
	tmp := t.TempDir()
	p := func(name string) string { return filepath.Join(tmp, name) }
	db := p("stalwart")
	newStore(t, db)
	os.MkdirAll(p("notdb"), 0o755)
	os.WriteFile(p("afile"), []byte("x"), 0o644)
	os.MkdirAll(p("nonempty"), 0o755)
	os.WriteFile(p("nonempty/x"), []byte("x"), 0o644)
	os.MkdirAll(p("empty-replica"), 0o755)

	good := replicatest.Build(t, replicatest.Spec{Tx: 8, ExportsAfter: []int{2}, PerSegment: 4})
	firstExport, lastSeq := good.Exports[0].Seq, good.Segments[len(good.Segments)-1].Last

	futureSeg := replicatest.Build(t, replicatest.Spec{Tx: 8, PerSegment: 4})
	futureSeg.Replace(t, futureSeg.Segments[1].Key, replicatest.FutureVersion(futureSeg.Read(t, futureSeg.Segments[1].Key), 2))

	futureMeta := replicatest.Build(t, replicatest.Spec{Tx: 4})
	futureMeta.Replace(t, layout.MetaKey(futureMeta.Generation), []byte(`{"id":"`+futureMeta.Generation+`","format_version":2}`))

	damaged := replicatest.Build(t, replicatest.Spec{Tx: 8, PerSegment: 4})
	damaged.Flip(t, damaged.Segments[0].Key, int64(len(damaged.Read(t, damaged.Segments[0].Key))/2))

	// A store only its owner (root, or this user) may read, for a user who
	// may not: the unprivileged user when running as root.
	locked := filepath.Join(shared(t), "locked")
	newStore(t, locked)
	asNobody := os.Geteuid() == 0
	if asNobody {
		os.Chmod(locked, 0o700)
	} else {
		os.Chmod(locked, 0o000)
		t.Cleanup(func() { os.Chmod(locked, 0o755) })
	}
	lockedScratch := filepath.Join(shared(t), "scratch")

	url := good.URL
	to := func() string { return filepath.Join(t.TempDir(), "restored") }
	cases := []cliCase{
		// run
		{name: "run --db missing", args: []string{"run", "--db", p("missing"), "--replica", url, "--listen", ""}, want: []string{p("missing"), "does not exist", "--db"}},
		{name: "run --db not a store", args: []string{"run", "--db", p("notdb"), "--replica", url, "--listen", ""}, want: []string{"not a RocksDB store"}},
		{name: "run --lease-margin not shorter than --lease-ttl", args: []string{"run", "--db", db, "--replica", url, "--listen", "", "--lease-ttl", "10s", "--lease-margin", "10s"}, want: []string{"--lease-margin", "--lease-ttl", "shorter"}},
		{name: "run --db a file", args: []string{"run", "--db", p("afile"), "--replica", url, "--listen", ""}, want: []string{"not a directory"}},
		{name: "run --db unreadable", nobody: asNobody, args: []string{"run", "--db", locked, "--scratch", lockedScratch, "--replica", "file://" + lockedScratch + "-replica", "--listen", ""}, want: []string{"cannot read", "permission denied"}},
		{name: "run --scratch inside the store", args: []string{"run", "--db", db, "--scratch", db + "/scratch", "--replica", url, "--listen", ""}, want: []string{"--scratch", "inside the primary's directory"}},
		{name: "run --spool inside the store", args: []string{"run", "--db", db, "--scratch", p("scratch"), "--spool", db + "/spool", "--replica", url, "--listen", ""}, want: []string{"--spool", "inside"}},
		{name: "run bad replica scheme", args: []string{"run", "--db", db, "--replica", "ftp://x/y", "--listen", ""}, want: []string{"invalid replica URL", "want s3://"}},
		{name: "run relative file replica", args: []string{"run", "--db", db, "--replica", "file://backups/x", "--listen", ""}, want: []string{"invalid replica URL", "absolute"}},
		{name: "run without --replica", args: []string{"run", "--db", db, "--listen", ""}, want: []string{"no --replica"}},
		{name: "run against a generation.json of a newer format", args: []string{"run", "--db", db, "--scratch", p("scratch-future"), "--replica", futureMeta.URL, "--listen", ""}, want: []string{"generation.json", "upgrade tailer"}},
		{name: "run --poll not a duration", args: []string{"run", "--db", db, "--replica", url, "--poll", "soon"}, want: []string{"--poll", "--help"}},
		// export
		{name: "export --db not a store", args: []string{"export", "--db", p("notdb"), "--replica", "file://" + p("exports")}, want: []string{"not a RocksDB store"}},
		{name: "export --scratch inside the store", args: []string{"export", "--db", db, "--scratch", db + "/s", "--replica", "file://" + p("exports")}, want: []string{"--scratch", "inside"}},
		// digest
		{name: "digest --db missing", args: []string{"digest", "--db", p("missing")}, want: []string{"does not exist"}},
		{name: "digest --db unreadable", nobody: asNobody, args: []string{"digest", "--db", locked}, want: []string{"cannot read", "permission denied"}},
		// list
		{name: "list missing replica directory", args: []string{"list", "--replica", "file://" + p("missing")}, want: []string{"does not exist", "--replica"}},
		{name: "list replica that is a file", args: []string{"list", "--replica", "file://" + p("afile")}, want: []string{"not a directory"}},
		{name: "list bad URL", args: []string{"list", "--replica", "s3:/x"}, want: []string{"invalid replica URL"}},
		{name: "list bad s3 query", args: []string{"list", "--replica", "s3://b/p?endpint=http://x"}, want: []string{"unknown query key"}},
		// restore
		{name: "restore into a non-empty directory", args: []string{"restore", "--replica", url, "--to", p("nonempty")}, want: []string{"not empty"}},
		{name: "restore without --to", args: []string{"restore", "--replica", url}, want: []string{"--to"}},
		{name: "restore --seq before the first export", args: []string{"restore", "--replica", url, "--to", to(), "--seq", fmt.Sprint(firstExport - 1)}, want: []string{"before the oldest export", good.Generation}},
		{name: "restore --seq after the last batch", args: []string{"restore", "--replica", url, "--to", to(), "--seq", fmt.Sprint(lastSeq + 1)}, want: []string{"after the newest batch"}},
		{name: "restore --time before the bucket", args: []string{"restore", "--replica", url, "--to", to(), "--time", "2001-01-01T00:00:00Z"}, want: []string{"before the oldest restorable point"}},
		{name: "restore --time in the future", args: []string{"restore", "--replica", url, "--to", to(), "--time", time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}, want: []string{"in the future"}},
		{name: "restore --time not RFC 3339", args: []string{"restore", "--replica", url, "--to", to(), "--time", "yesterday"}, want: []string{"RFC 3339"}},
		{name: "restore --account without --change-id", args: []string{"restore", "--replica", url, "--to", to(), "--account", "3"}, want: []string{"go together"}},
		{name: "restore from an empty replica", args: []string{"restore", "--replica", "file://" + p("empty-replica"), "--to", to()}, want: []string{"holds no generation"}},
		{name: "restore a segment of a newer format", args: []string{"restore", "--replica", futureSeg.URL, "--to", to()}, want: []string{futureSeg.Segments[1].Key, "format version 2", "upgrade tailer"}},
		{name: "restore a generation.json of a newer format", args: []string{"restore", "--replica", futureMeta.URL, "--to", to()}, want: []string{"generation.json", "format version 2", "upgrade tailer"}},
		{name: "restore a corrupt segment", args: []string{"restore", "--replica", damaged.URL, "--to", to()}, want: []string{damaged.Segments[0].Key, "corrupt", "--allow-partial"}},
		// verify
		{name: "verify missing replica directory", args: []string{"verify", "--replica", "file://" + p("missing")}, want: []string{"does not exist"}},
		{name: "verify an empty replica", args: []string{"verify", "--replica", "file://" + p("empty-replica")}, want: []string{"verify found 1 problem"}, stdout: []string{"holds no generation"}},
		{name: "verify a corrupt segment", args: []string{"verify", "--replica", damaged.URL}, want: []string{"verify found 1 problem"}, stdout: []string{"BAD", damaged.Segments[0].Key, "corrupt"}},
		{name: "verify a generation.json of a newer format", args: []string{"verify", "--replica", futureMeta.URL, "--json"}, want: []string{"verify found 1 problem"}, stdout: []string{`"problems"`, "upgrade tailer"}},
		// changes
		{name: "changes --collection unknown", args: []string{"changes", "--replica", url, "--collection", "mails"}, want: []string{"--collection", "unknown collection"}},
		{name: "changes --since not RFC 3339", args: []string{"changes", "--replica", url, "--since", "10:30"}, want: []string{"--since", "RFC 3339"}},
		// everywhere
		{name: "unknown command", args: []string{"lst"}, want: []string{"unknown command", "list", "--help"}},
		{name: "unknown flag", args: []string{"list", "--replcia", url}, want: []string{"unknown flag", "tailer list --help"}},
		{name: "stray argument", args: []string{"list", "extra", "--replica", url}, want: []string{"extra"}},
		{name: "bad --log-level", args: []string{"list", "--replica", url, "--log-level", "loud"}, want: []string{"--log-level"}},
		{name: "bad --s3-path-style", args: []string{"list", "--replica", url, "--s3-path-style", "maybe"}, want: []string{"--s3-path-style"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkFailure(t, c) })
	}
}

// shared returns a directory every user may enter, for the permission
// cases (t.TempDir is private to this user).
func shared(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(bin), "shared")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	return dir
}

// TestBadInputS3 covers what only a real bucket can answer: a missing
// bucket and credentials it refuses, on every command that reads one.
func TestBadInputS3(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("backups")
	db := filepath.Join(t.TempDir(), "stalwart")
	newStore(t, db)
	wrongKey := append(srv.Env(), "AWS_SECRET_ACCESS_KEY=not-the-secret")
	var cases []cliCase
	for _, cmd := range [][]string{
		{"list"}, {"restore", "--to", filepath.Join(t.TempDir(), "r")}, {"verify"}, {"changes"},
	} {
		cases = append(cases,
			cliCase{name: cmd[0] + " missing bucket", args: append(append([]string{}, cmd...), "--replica", srv.URL("no-such-bucket", "mail")), env: srv.Env(),
				want: []string{"no-such-bucket", "does not exist", "create it"}},
			cliCase{name: cmd[0] + " wrong credentials", args: append(append([]string{}, cmd...), "--replica", srv.URL("backups", "mail")), env: wrongKey,
				want: []string{"refused the credentials", "AWS_SECRET_ACCESS_KEY"}},
		)
	}
	cases = append(cases,
		cliCase{name: "restore from an empty prefix", args: []string{"restore", "--to", filepath.Join(t.TempDir(), "r"), "--replica", srv.URL("backups", "empty")}, env: srv.Env(),
			want: []string{"holds no generation"}},
		cliCase{name: "export into a missing bucket", args: []string{"export", "--db", db, "--replica", srv.URL("no-such-bucket", "mail")}, env: srv.Env(),
			want: []string{"no-such-bucket", "does not exist"}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if out := checkFailure(t, c); strings.Contains(out, srv.SecretKey) {
				t.Fatal("the secret key was printed")
			}
		})
	}
}
