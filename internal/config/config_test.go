package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// env is a fake environment.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExpand(t *testing.T) {
	getenv := env("BUCKET", "mail", "EMPTY", "", "PW", "s3cr$t")
	for _, c := range []struct {
		in, want string
		expanded bool
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "s3://${BUCKET}/x", want: "s3://mail/x", expanded: true},
		{in: "${BUCKET}${BUCKET}", want: "mailmail", expanded: true},
		{in: "${MISSING:-dflt}", want: "dflt", expanded: true},
		{in: "${EMPTY:-dflt}", want: "dflt", expanded: true},
		{in: "${EMPTY}", want: "", expanded: true},
		{in: "${PW}", want: "s3cr$t", expanded: true}, // no second pass over values
		{in: "cost $5 and $$HOME", want: "cost $5 and $HOME"},
		{in: "$${BUCKET}", want: "${BUCKET}"},
		{in: "trailing $", want: "trailing $"},
		{in: "${MISSING}", err: "${MISSING} is not set"},
		{in: "${BUCKET", err: "unterminated"},
		{in: "${1X}", err: "not a variable name"},
		{in: "${}", err: "not a variable name"},
	} {
		got, exp, err := Expand(c.in, getenv)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Expand(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || exp != c.expanded {
			t.Errorf("Expand(%q) = %q, %v, %v; want %q, %v", c.in, got, exp, err, c.want, c.expanded)
		}
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{"replica": "TAILER_REPLICA", "poll": "TAILER_POLL", "s3-endpoint": "TAILER_S3_ENDPOINT", "wal-pin-interval": "TAILER_WAL_PIN_INTERVAL"} {
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", flag, got, want)
		}
	}
}

// schema: two commands, run (db, poll, replica, levels) and list (replica, json).
func schema() *Schema {
	run := &Schema{What: "tailer run", Flags: map[string]bool{"db": true, "poll": true, "replica": true, "levels": true, "log-level": true}}
	list := &Schema{What: "tailer list", Flags: map[string]bool{"replica": true, "json": true, "log-level": true}}
	top := &Schema{Flags: map[string]bool{}, Sections: map[string]*Schema{"run": run, "list": list}}
	for _, s := range []*Schema{run, list} {
		for f := range s.Flags {
			top.Flags[f] = true
		}
	}
	return top
}

func TestParseAndCheck(t *testing.T) {
	good := `# comment
replica: s3://b/p
log-level: debug
run:
  db: /var/lib/stalwart
  poll: 500ms
  levels: [1m, 1h]
list:
  json: true
`
	f, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(schema()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(f.Keys(), " "), "list.json log-level replica run.db run.levels run.poll"; got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
	if v, ok := f.Lookup([]string{"run"}, "levels"); !ok || !v.List || strings.Join(v.Items, " ") != "1m 1h" || v.Where != "t.yaml:7 (run.levels)" {
		t.Errorf("run.levels: %+v %v", v, ok)
	}
	if v, ok := f.Lookup([]string{"list"}, "replica"); !ok || v.Key != "replica" {
		t.Errorf("list sees the top-level replica: %+v %v", v, ok)
	}
	if _, ok := f.Lookup([]string{"list"}, "poll"); ok {
		t.Errorf("list sees run's poll")
	}
	for _, empty := range []string{"", "# only a comment\n"} {
		f, err := Parse("e.yaml", []byte(empty))
		if err != nil || f.Check(schema()) != nil || len(f.Keys()) != 0 {
			t.Errorf("empty file %q: %v", empty, err)
		}
	}

	for _, c := range []struct{ name, yaml, want string }{
		{"typo at top", "pol: 1s\n", "t.yaml:1: unknown key pol: no command has --pol (did you mean poll?)"},
		{"typo in section", "run:\n  replcia: x\n", "t.yaml:2: unknown key run.replcia: tailer run has no --replcia (did you mean replica?)"},
		{"flag of another command", "list:\n  poll: 1s\n", "unknown key list.poll: tailer list has no --poll"},
		{"unknown section", "rnu:\n  poll: 1s\n", `t.yaml:1: unknown section rnu: tailer has no command "rnu" (did you mean run?)`},
		{"command as a value", "run: yes\n", "run is a command, not a flag"},
		{"flag as a mapping", "poll:\n  a: 1\n", "poll takes a value"},
		{"config in a config", "run:\n  config: other.yaml\n", "t.yaml:2: run.config: a config file cannot name another one"},
	} {
		f, err := Parse("t.yaml", []byte(c.yaml))
		if err != nil {
			t.Errorf("%s: parse: %v", c.name, err)
			continue
		}
		if err := f.Check(schema()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v, want %q", c.name, err, c.want)
		}
	}
	// Every problem at once, in line order.
	f, _ = Parse("t.yaml", []byte("pol: 1s\nrun:\n  dbb: x\n"))
	if err := f.Check(schema()); err == nil || strings.Count(err.Error(), "\n") != 1 || strings.Index(err.Error(), "pol") > strings.Index(err.Error(), "dbb") {
		t.Errorf("two problems in order: %v", err)
	}

	for _, c := range []struct{ name, yaml, want string }{
		{"not a mapping", "- a\n- b\n", "want a mapping"},
		{"null value", "poll:\n", `poll has no value: write poll: ""`},
		{"null in section", "run:\n  db:\n", "run.db has no value"},
		{"bad yaml", "a: [\n", "config file t.yaml"},
		{"duplicate key", "poll: 1s\npoll: 2s\n", "already defined"},
		{"nested list", "levels: [[1m]]\n", "list items must be plain values"},
		{"merge key", "base: &b\n  poll: 1s\nrun:\n  <<: *b\n", "merge keys"},
	} {
		if _, err := Parse("t.yaml", []byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse = %v, want %q", c.name, err, c.want)
		}
	}
}

// flags is a FlagSet like a command's, and the values it binds.
type flagVals struct {
	db, replica, secret string
	poll                time.Duration
	levels              []time.Duration
	tags                []string
	json                bool
}

func newFlags() (*pflag.FlagSet, *flagVals) {
	v := &flagVals{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.StringVar(&v.db, "db", "", "")
	fs.StringVar(&v.replica, "replica", "", "")
	fs.DurationVar(&v.poll, "poll", time.Second, "")
	fs.DurationSliceVar(&v.levels, "levels", []time.Duration{time.Minute}, "")
	fs.StringArrayVar(&v.tags, "tags", nil, "")
	fs.BoolVar(&v.json, "json", false, "")
	fs.StringVar(&v.secret, "secret", "", "")
	fs.SetAnnotation("secret", SecretAnnotation, []string{"true"})
	fs.String("config", "", "")
	return fs, v
}

func TestResolvePrecedence(t *testing.T) {
	f, err := Parse("c.yaml", []byte(`
db: /top/db
replica: s3://top/p
poll: 3s
levels: [5m, 1h]
run:
  db: /run/db
  poll: 4s
config: ignored
`))
	if err != nil {
		t.Fatal(err)
	}
	fs, v := newFlags()
	if err := fs.Parse([]string{"--poll", "7s"}); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{File: f, Path: []string{"run"}, Getenv: env("TAILER_REPLICA", "s3://env/p", "TAILER_DB", "", "OTHER", "x"),
		Ignore: map[string]bool{"config": true}}
	got, err := r.All(fs)
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]Setting{}
	for _, s := range got {
		src[s.Flag] = s
	}
	// flag > env > section > top > default
	if v.poll != 7*time.Second || src["poll"].Source != FromFlag {
		t.Errorf("poll %v from %v: the command line wins", v.poll, src["poll"])
	}
	if v.replica != "s3://env/p" || src["replica"].Where != "TAILER_REPLICA" {
		t.Errorf("replica %q from %v: the environment beats the file", v.replica, src["replica"])
	}
	if v.db != "" || src["db"].Source != FromEnv {
		t.Errorf("db %q from %v: a set but empty variable still counts", v.db, src["db"])
	}
	if len(v.levels) != 2 || v.levels[1] != time.Hour || src["levels"].Where != "c.yaml:5 (levels)" {
		t.Errorf("levels %v from %v: the top level applies when the section has none", v.levels, src["levels"])
	}
	if v.json || src["json"].Source != FromDefault {
		t.Errorf("json %v from %v: default", v.json, src["json"])
	}
	if src["config"].Source != FromDefault {
		t.Errorf("config is never taken from the file: %v", src["config"])
	}
	// Applied as if typed: commands that look at Changed see it.
	for _, name := range []string{"replica", "db", "levels"} {
		if !fs.Changed(name) {
			t.Errorf("%s not marked Changed", name)
		}
	}
	if fs.Changed("json") {
		t.Errorf("json marked Changed without a value")
	}

	// A section value beats the top level.
	fs, v = newFlags()
	r = &Resolver{File: f, Path: []string{"run"}, Getenv: env()}
	if _, err := r.All(fs); err != nil {
		t.Fatal(err)
	}
	if v.db != "/run/db" || v.poll != 4*time.Second || v.replica != "s3://top/p" {
		t.Errorf("section over top: db %q poll %v replica %q", v.db, v.poll, v.replica)
	}
	// Another command sees only the top level.
	fs, v = newFlags()
	r = &Resolver{File: f, Path: []string{"list"}, Getenv: env()}
	if _, err := r.All(fs); err != nil {
		t.Fatal(err)
	}
	if v.db != "/top/db" || v.poll != 3*time.Second {
		t.Errorf("top level for list: db %q poll %v", v.db, v.poll)
	}

	// Skip leaves a value from the environment or the file out, never one
	// from the command line.
	fs, v = newFlags()
	fs.Parse([]string{"--db", "/cli"})
	r = &Resolver{File: f, Path: []string{"run"}, Getenv: env("TAILER_REPLICA", "s3://env/p"),
		Skip: func(flag string, _ Source) bool { return flag == "replica" || flag == "poll" || flag == "db" }}
	if _, err := r.All(fs); err != nil {
		t.Fatal(err)
	}
	if v.replica != "" || v.poll != time.Second || v.db != "/cli" {
		t.Errorf("skip: replica %q poll %v db %q", v.replica, v.poll, v.db)
	}

	// Flag resolves once: format first, then All does not redo it.
	fs, _ = newFlags()
	calls := 0
	r = &Resolver{File: f, Path: []string{"run"}, Getenv: func(k string) (string, bool) {
		if k == "TAILER_POLL" {
			calls++
		}
		return "", false
	}}
	r.Flag(fs, "poll")
	r.All(fs)
	if calls != 1 {
		t.Errorf("poll resolved %d times", calls)
	}
}

func TestResolveLists(t *testing.T) {
	f, err := Parse("c.yaml", []byte("levels: 2m,3h\nrun:\n  tags: [a, 'b,c', '${T}']\nlist:\n  poll: [1s]\n  levels: [1m, '${BAD}']\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs, v := newFlags()
	r := &Resolver{File: f, Path: []string{"run"}, Getenv: env("T", "d")}
	if _, err := r.All(fs); err != nil {
		t.Fatal(err)
	}
	if len(v.levels) != 2 || v.levels[1] != 3*time.Hour || !fs.Changed("levels") {
		t.Errorf("a scalar for a slice flag is comma-separated: %v", v.levels)
	}
	if strings.Join(v.tags, "|") != "a|b,c|d" || !fs.Changed("tags") {
		t.Errorf("list items, expanded, commas kept: %q", v.tags)
	}
	fs, _ = newFlags()
	r = &Resolver{File: f, Path: []string{"list"}, Getenv: env("BAD", "hunter2")}
	_, err = r.All(fs)
	if err == nil || !strings.Contains(err.Error(), "c.yaml:5 (list.poll): --poll takes one value, not a list") ||
		!strings.Contains(err.Error(), "c.yaml:6 (list.levels): invalid value for --levels: not a valid durationSlice (value not shown)") ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("list errors: %v", err)
	}
}

func TestResolveErrorsHideSecrets(t *testing.T) {
	f, err := Parse("c.yaml", []byte("poll: ${POLL}\njson: maybe\nsecret: ${MISSING}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := newFlags()
	r := &Resolver{File: f, Getenv: env("POLL", "hunter2")}
	_, err = r.All(fs)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"c.yaml:1 (poll): invalid value for --poll: not a valid duration (value not shown)",
		`c.yaml:2 (json): invalid value "maybe" for --json (a bool)`,
		"c.yaml:3 (secret): ${MISSING} is not set",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error shows a value from the environment: %q", msg)
	}

	// An environment value is never shown; a secret never, even written
	// literally in the file.
	fs, _ = newFlags()
	r = &Resolver{Getenv: env("TAILER_POLL", "hunter2")}
	if _, err := r.All(fs); err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "TAILER_POLL") {
		t.Errorf("env error: %v", err)
	}
	fs, _ = newFlags()
	fs.Lookup("secret").Value = badValue{}
	f, _ = Parse("c.yaml", []byte("secret: hunter2\n"))
	r = &Resolver{File: f, Getenv: env()}
	if _, err := r.All(fs); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("secret error: %v", err)
	}
}

// badValue refuses every value, echoing it, as strconv does.
type badValue struct{}

func (badValue) String() string     { return "" }
func (badValue) Set(v string) error { return &os.PathError{Op: "parse", Path: v, Err: os.ErrInvalid} }
func (badValue) Type() string       { return "string" }

func TestStalwartDataPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// What Stalwart 0.16 writes (serde_json of DataStore::RocksDb).
	ok := write("config.json", `{"@type":"RocksDb","path":"/var/lib/stalwart/","blobSize":16834,"bufferSize":134217728,"poolWorkers":null,"cacheSize":134217728}`)
	if p, err := StalwartDataPath(ok); err != nil || p != "/var/lib/stalwart" {
		t.Errorf("StalwartDataPath = %q, %v", p, err)
	}
	for _, c := range []struct{ body, want string }{
		{`{"@type":"PostgreSql","host":"db"}`, "data store is PostgreSql, not RocksDb"},
		{`{"@type":"RocksDb"}`, `has no "path"`},
		{`{"@type":"RocksDb","path":"data"}`, "relative"},
		{`{"path":"/x"}`, `no "@type"`},
		{`[store.db]` + "\npath = \"/x\"\n", "not Stalwart 0.16's JSON"},
	} {
		if _, err := StalwartDataPath(write("c.json", c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.body, err, c.want)
		}
	}
	if _, err := StalwartDataPath(filepath.Join(dir, "absent.json")); err == nil || !strings.Contains(err.Error(), "--stalwart-config") {
		t.Errorf("absent file: %v", err)
	}
}

// TestSettingHidden: a Setting says when its value must not be echoed
// (the environment, a ${VAR}, a secret), so a later check of the value
// (cmd/tailer's flag limits) can name where it came from without it.
func TestSettingHidden(t *testing.T) {
	f, err := Parse("c.yaml", []byte("poll: ${POLL}\nreplica: s3://plain/p\nsecret: hunter2\nlevels: [1m, '${L}']\ntags: [a, b]\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := newFlags()
	r := &Resolver{File: f, Getenv: env("POLL", "2s", "L", "1h", "TAILER_DB", "/d")}
	got, err := r.All(fs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"poll": true, "replica": false, "secret": true, "levels": true, "tags": false, "db": true, "json": false}
	for _, s := range got {
		if w, ok := want[s.Flag]; ok && s.Hidden != w {
			t.Errorf("%s from %s: Hidden = %v, want %v", s.Flag, s.Where, s.Hidden, w)
		}
	}
}
