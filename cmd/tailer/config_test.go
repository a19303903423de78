package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/internal/config"
)

// fakeEnv is an environment for applyConfig, so the developer's own
// TAILER_* variables never leak into a test.
func fakeEnv(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// resolve parses args (a command name, then its flags) on a fresh command
// tree and applies the environment and the config file, as the root's
// PersistentPreRunE does before a command runs.
func resolve(t *testing.T, args []string, env map[string]string) (*cobra.Command, map[string]config.Setting, error) {
	t.Helper()
	root := newRootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("find %v: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	settings, _, err := applyConfig(cmd, fakeEnv(env))
	return cmd, settings, err
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// commands lists the runnable subcommands and their flags (own and global).
func commands(root *cobra.Command) map[string][]*pflag.Flag {
	out := map[string][]*pflag.Flag{}
	for _, c := range root.Commands() {
		if !c.Runnable() || c.Name() == "help" || isCompletion(c) {
			continue
		}
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.InheritedFlags()} {
			fs.VisitAll(func(fl *pflag.Flag) {
				if fl.Name != "help" && fl.Name != flagConfig {
					out[c.Name()] = append(out[c.Name()], fl)
				}
			})
		}
	}
	return out
}

// sample is a valid, non-default value for a flag of type typ: as written
// in YAML, as an environment variable, and as the flag then prints it.
func sample(t *testing.T, typ string) (yaml, env, want string) {
	switch typ {
	case "bool":
		return "true", "true", "true"
	case "duration":
		return "7s", "7s", "7s"
	case "durationSlice":
		return "[7s, 1h]", "7s,1h", "[7s,1h0m0s]"
	case "int", "int64", "uint32", "uint64":
		return "7", "7", "7"
	case "string":
		return "/x/seven", "/x/seven", "/x/seven"
	case "stringSlice", "stringArray":
		return "[/x/seven]", "/x/seven", "[/x/seven]"
	}
	t.Fatalf("flag type %s: teach sample() a value for it", typ)
	return
}

// TestConfigMirrorsEveryFlag sets every flag of every command in turn
// from the command's section, from a top-level key and from TAILER_<FLAG>,
// and checks the command sees the value, marked Changed as if typed. A
// flag added to any command is covered without touching this test.
func TestConfigMirrorsEveryFlag(t *testing.T) {
	dir := t.TempDir()
	stalwartJSON := writeFile(t, dir, "config.json", `{"@type":"RocksDb","path":"/srv/mail/db"}`)
	n := 0
	for name, flags := range commands(newRootCmd()) {
		for _, fl := range flags {
			y, e, want := sample(t, fl.Value.Type())
			if fl.Name == flagStalwartConfig {
				y, e, want = stalwartJSON, stalwartJSON, stalwartJSON
			}
			// A flag that goes with --format stalwart only is applied with it.
			extraYAML, extraEnv := "", map[string]string{}
			if formatOnly[name][fl.Name] == formatStalwart {
				extraYAML, extraEnv = "format: stalwart\n", map[string]string{"TAILER_FORMAT": formatStalwart}
			}
			for _, how := range []string{"section", "top", "env"} {
				env := map[string]string{}
				var body string
				switch how {
				case "section":
					body = fmt.Sprintf("%s:\n  %s: %s\n", name, fl.Name, y)
				case "top":
					body = fmt.Sprintf("%s: %s\n", fl.Name, y)
				case "env":
					env[config.EnvName(fl.Name)] = e
				}
				env["TAILER_CONFIG"] = writeFile(t, dir, "c.yaml", body+extraYAML)
				for k, v := range extraEnv {
					if how == "env" {
						env[k] = v
					}
				}
				cmd, settings, err := resolve(t, []string{name}, env)
				if err != nil {
					t.Errorf("%s --%s from %s: %v", name, fl.Name, how, err)
					continue
				}
				got := cmd.Flags().Lookup(fl.Name)
				if got.Value.String() != want || !got.Changed {
					t.Errorf("%s --%s from %s: value %q changed %v, want %q", name, fl.Name, how, got.Value.String(), got.Changed, want)
				}
				wantSrc := config.FromFile
				if how == "env" {
					wantSrc = config.FromEnv
				}
				if s := settings[fl.Name]; s.Source != wantSrc {
					t.Errorf("%s --%s from %s: source %v", name, fl.Name, how, s)
				}
				if fl.Name == flagStalwartConfig {
					if db := cmd.Flags().Lookup("db").Value.String(); db != "/srv/mail/db" {
						t.Errorf("%s: --stalwart-config from %s gave --db %q", name, how, db)
					}
				}
				n++
			}
		}
	}
	if n < 3*40 {
		t.Errorf("only %d flag settings checked: is the command tree empty?", n)
	}
}

// TestConfigPrecedence: flags > TAILER_* > the command's section > the
// top level > the default, on the real run command.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "tailer.yaml", "poll: 3s\nrun:\n  poll: 4s\n")
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
		src  config.Source
	}{
		{"default", []string{"run"}, nil, "1s", config.FromDefault},
		{"top level", []string{"run", "--config", writeFile(t, dir, "top.yaml", "poll: 3s\n")}, nil, "3s", config.FromFile},
		{"section over top", []string{"run", "--config", file}, nil, "4s", config.FromFile},
		{"env over file", []string{"run", "--config", file}, map[string]string{"TAILER_POLL": "5s"}, "5s", config.FromEnv},
		{"flag over env", []string{"run", "--config", file, "--poll", "6s"}, map[string]string{"TAILER_POLL": "5s"}, "6s", config.FromFlag},
		{"TAILER_CONFIG names the file", []string{"run"}, map[string]string{"TAILER_CONFIG": file}, "4s", config.FromFile},
		{"--config over TAILER_CONFIG", []string{"run", "--config", file}, map[string]string{"TAILER_CONFIG": "/nonexistent.yaml"}, "4s", config.FromFile},
	} {
		cmd, settings, err := resolve(t, c.args, c.env)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := cmd.Flags().Lookup("poll").Value.String(); got != c.want || settings["poll"].Source != c.src {
			t.Errorf("%s: poll %s from %v, want %s from %v", c.name, got, settings["poll"], c.want, c.src)
		}
	}
	// Other commands see the top level, not run's section.
	cmd, _, err := resolve(t, []string{"list", "--config", writeFile(t, dir, "l.yaml", "replica: s3://top/p\nrun:\n  replica: s3://run/p\n")}, nil)
	if err != nil || cmd.Flags().Lookup("replica").Value.String() != "s3://top/p" {
		t.Errorf("list replica: %v", err)
	}
	// A file "grace: 0" is "--grace 0" (delete at once), not the default.
	cmd, _, err = resolve(t, []string{"compact", "--config", writeFile(t, dir, "g.yaml", "compact:\n  grace: 0s\n")}, nil)
	if err != nil || !cmd.Flags().Changed("grace") || cmd.Flags().Lookup("grace").Value.String() != "0s" {
		t.Errorf("compact grace 0 from the file: %v", err)
	}
	// Errors name the key and the file.
	_, _, err = resolve(t, []string{"run", "--config", writeFile(t, dir, "bad.yaml", "run:\n  pol: 1s\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:2: unknown key run.pol: tailer run has no --pol (did you mean poll?)") {
		t.Errorf("typo: %v", err)
	}
	_, _, err = resolve(t, []string{"list", "--config", writeFile(t, dir, "bad2.yaml", "list:\n  poll: 1s\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "tailer list has no --poll") {
		t.Errorf("flag of another command in a section: %v", err)
	}
	_, _, err = resolve(t, []string{"run", "--config", filepath.Join(dir, "absent.yaml")}, nil)
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("missing file: %v", err)
	}
	// A bad key fails every command, not only the one whose section holds it.
	_, _, err = resolve(t, []string{"list", "--config", writeFile(t, dir, "bad3.yaml", "restore:\n  tto: /x\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "restore.tto") {
		t.Errorf("typo in another section: %v", err)
	}
}

// TestConfigFormatRule: a shared replica (TAILER_REPLICA or a top-level
// key) must not break 'export --format stalwart', which refuses --replica
// on the command line; values for the other format are left out.
func TestConfigFormatRule(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "c.yaml", "replica: s3://b/p\nprogress: 9s\nrestore:\n  out: /o\n  to: /t\n")
	cmd, _, err := resolve(t, []string{"export", "--format", "stalwart", "--config", file}, map[string]string{"TAILER_REPLICA": "s3://env/p"})
	if err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags()
	if f.Changed("replica") || !f.Changed("progress") || f.Lookup("progress").Value.String() != "9s" {
		t.Errorf("export --format stalwart: replica changed %v, progress %s", f.Changed("replica"), f.Lookup("progress").Value)
	}
	cmd, _, err = resolve(t, []string{"restore", "--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f = cmd.Flags()
	if f.Changed("out") || f.Changed("progress") || f.Lookup("to").Value.String() != "/t" {
		t.Errorf("restore (tailer format): out %v progress %v to %s", f.Changed("out"), f.Changed("progress"), f.Lookup("to").Value)
	}
	// The format itself may come from the file.
	cmd, _, err = resolve(t, []string{"restore", "--config", writeFile(t, dir, "s.yaml", "restore:\n  format: stalwart\n  out: /o\n  to: /t\n")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f = cmd.Flags(); f.Changed("to") || f.Lookup("out").Value.String() != "/o" {
		t.Errorf("restore format from the file: to %v out %s", f.Changed("to"), f.Lookup("out").Value)
	}
}

// TestFormatOnlyMatchesCommands keeps formatOnly in step with what export
// and restore refuse: every flag is given on the command line with each
// format, and refused exactly when the table says it goes with the other.
// Each invocation stops at an argument check before touching any store.
func TestFormatOnlyMatchesCommands(t *testing.T) {
	defer func(f func(string) (string, bool)) { lookupEnv = f }(lookupEnv)
	lookupEnv = fakeEnv(nil)
	dir := t.TempDir()
	refusal := func(flag string) *regexp.Regexp {
		return regexp.MustCompile(`^--` + regexp.QuoteMeta(flag) + ` (goes with --format stalwart|is for --format tailer)`)
	}
	for _, name := range []string{"export", "restore"} {
		var local []*pflag.Flag
		for _, fl := range commands(newRootCmd())[name] {
			if newRootCmd().PersistentFlags().Lookup(fl.Name) == nil && fl.Name != "format" && fl.Name != flagStalwartConfig {
				local = append(local, fl)
			}
		}
		for i, fl := range local {
			for _, format := range []string{formatTailer, formatStalwart} {
				v, _, _ := sample(t, fl.Value.Type())
				if fl.Value.Type() == "string" {
					v = filepath.Join(dir, fmt.Sprintf("%s-%d-%s", name, i, format))
					if fl.Name == "replica" {
						v = "file://" + v
					}
				}
				root := newRootCmd()
				root.SetArgs([]string{name, "--format", format, "--" + fl.Name + "=" + v, "--log-format", "json"})
				root.SetOut(io.Discard)
				root.SetErr(io.Discard)
				err := root.ExecuteContext(context.Background())
				if err == nil {
					t.Fatalf("%s --format %s --%s: ran to completion; this test needs every case to stop at an argument check", name, format, fl.Name)
				}
				refused := refusal(fl.Name).MatchString(err.Error())
				want, inTable := formatOnly[name][fl.Name]
				if refused != (inTable && want != format) {
					t.Errorf("%s --format %s --%s: refused %v (%v), formatOnly says %q: update formatOnly in config.go", name, format, fl.Name, refused, err, want)
				}
			}
		}
	}
}

// TestStalwartConfig: --stalwart-config fills --db unless --db was given
// with the same or a higher precedence.
func TestStalwartConfig(t *testing.T) {
	dir := t.TempDir()
	sc := writeFile(t, dir, "config.json", `{"@type":"RocksDb","path":"/var/lib/stalwart/","cacheSize":134217728}`)
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag", []string{"run", "--stalwart-config", sc}, nil, "/var/lib/stalwart"},
		{"--db wins", []string{"run", "--stalwart-config", sc, "--db", "/d"}, nil, "/d"},
		{"flag over a file db", []string{"run", "--stalwart-config", sc, "--config", writeFile(t, dir, "a.yaml", "db: /file\n")}, nil, "/var/lib/stalwart"},
		{"file db over file stalwart-config", []string{"export", "--config", writeFile(t, dir, "b.yaml", "db: /file\nstalwart-config: "+sc+"\n")}, nil, "/file"},
		{"env over file db", []string{"run", "--config", writeFile(t, dir, "c.yaml", "db: /file\n")}, map[string]string{"TAILER_STALWART_CONFIG": sc}, "/var/lib/stalwart"},
		{"TAILER_DB over env stalwart-config", []string{"run"}, map[string]string{"TAILER_STALWART_CONFIG": sc, "TAILER_DB": "/env"}, "/env"},
		{"top level, digest", []string{"digest", "--config", writeFile(t, dir, "d.yaml", "stalwart-config: "+sc+"\n")}, nil, "/var/lib/stalwart"},
	} {
		cmd, settings, err := resolve(t, c.args, c.env)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := cmd.Flags().Lookup("db").Value.String(); got != c.want {
			t.Errorf("%s: db %q (%v), want %q", c.name, got, settings["db"], c.want)
		}
	}
	// Commands without --db have no --stalwart-config.
	for _, name := range []string{"list", "restore", "verify"} {
		if newRootCmd().PersistentFlags().Lookup(flagStalwartConfig) != nil {
			t.Errorf("root has --stalwart-config")
		}
		if c, _, _ := newRootCmd().Find([]string{name}); c.Flags().Lookup(flagStalwartConfig) != nil {
			t.Errorf("%s has --stalwart-config", name)
		}
	}
	_, _, err := resolve(t, []string{"run", "--stalwart-config", writeFile(t, dir, "pg.json", `{"@type":"PostgreSql"}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "not RocksDb") {
		t.Errorf("PostgreSql data store: %v", err)
	}
}

// TestSecretKeyNotOnCommandLine: the S3 secret key is refused on the
// command line (ps and shell history show it) and taken from the
// environment or the file; errors never show it.
func TestSecretKeyNotOnCommandLine(t *testing.T) {
	_, _, err := resolve(t, []string{"list", "--s3-secret-access-key", "hunter2"}, nil)
	if err == nil || !strings.Contains(err.Error(), "TAILER_S3_SECRET_ACCESS_KEY") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("secret on the command line: %v", err)
	}
	cmd, _, err := resolve(t, []string{"list"}, map[string]string{"TAILER_S3_SECRET_ACCESS_KEY": "hunter2", "TAILER_S3_ACCESS_KEY_ID": "AKID"})
	if err != nil || cmd.Flags().Lookup(flagSecretKey).Value.String() != "hunter2" || cmd.Flags().Lookup(flagAccessKeyID).Value.String() != "AKID" {
		t.Errorf("secret from the environment: %v", err)
	}
	dir := t.TempDir()
	_, _, err = resolve(t, []string{"run", "--config", writeFile(t, dir, "s.yaml", "s3-secret-access-key: ${SECRET}x\npoll: ${SECRET}\n")},
		map[string]string{"SECRET": "hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "--poll") {
		t.Errorf("error shows an expanded value: %v", err)
	}
	var help strings.Builder
	root := newRootCmd()
	root.SetOut(&help)
	root.SetArgs([]string{"run", "--help"})
	root.Execute()
	if strings.Contains(help.String(), flagSecretKey+" string") {
		t.Errorf("--%s is listed in help: it must not be used on the command line", flagSecretKey)
	}
}

// TestConfigSkipsHelp: a broken TAILER_CONFIG must not break 'tailer help'.
func TestConfigSkipsHelp(t *testing.T) {
	defer func(f func(string) (string, bool)) { lookupEnv = f }(lookupEnv)
	lookupEnv = fakeEnv(map[string]string{"TAILER_CONFIG": "/nonexistent/tailer.yaml"})
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"help", "run"})
	if err := root.Execute(); err != nil {
		t.Errorf("tailer help with a missing config file: %v", err)
	}
}

// TestNoFlagNamedLikeACommand: a top-level key is a flag, a mapping is a
// section; a flag named like a command would make the file ambiguous.
func TestNoFlagNamedLikeACommand(t *testing.T) {
	root := newRootCmd()
	for name, flags := range commands(root) {
		for _, fl := range flags {
			if c, _, err := root.Find([]string{fl.Name}); err == nil && c != root {
				t.Errorf("%s --%s is also a command: config keys would be ambiguous", name, fl.Name)
			}
		}
	}
}

// TestExampleConfig loads deploy/tailer.example.yaml as tailer would and
// checks it documents every global flag and every flag of run (the
// sidecar the file is mostly for). That every flag of every command can be
// set from a file is TestConfigMirrorsEveryFlag's business.
func TestExampleConfig(t *testing.T) {
	const path = "../../deploy/tailer.example.yaml"
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	if err := f.Check(configSchema(root)); err != nil {
		t.Fatal(err)
	}
	cmd, settings, err := resolve(t, []string{"run", "--config", path}, nil)
	if err != nil {
		t.Fatalf("resolve run with the example (no environment): %v", err)
	}
	if cmd.Flags().Lookup("replica").Value.String() == "" || cmd.Flags().Lookup("db").Value.String() == "" {
		t.Errorf("the example gives run no replica or db: %v", settings)
	}
	data, _ := os.ReadFile(path)
	// Keys, set or commented out ("# poll: 1s").
	keyRE := regexp.MustCompile(`(?m)^(\s*)#?\s?([a-z0-9-]+):`)
	documented := map[string]bool{}
	for _, m := range keyRE.FindAllStringSubmatch(string(data), -1) {
		documented[m[2]] = true
	}
	var missing []string
	for _, fl := range commands(root)["run"] {
		if !documented[fl.Name] {
			missing = append(missing, fl.Name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("deploy/tailer.example.yaml does not document: %s", strings.Join(missing, ", "))
	}
	// Secrets are referenced, never written in the example.
	for _, line := range strings.Split(string(data), "\n") {
		if k := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "#")); strings.HasPrefix(k, flagSecretKey+":") && !strings.Contains(k, "${") {
			t.Errorf("the example writes a secret literally: %q", line)
		}
	}
}

// TestReadmeConfigExample: the YAML example of the README's Configuration
// section is a valid config file for run.
func TestReadmeConfigExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no Configuration section")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("the Configuration section has no yaml example")
	}
	dir := t.TempDir()
	sc := writeFile(t, dir, "config.json", `{"@type":"RocksDb","path":"/var/lib/stalwart/"}`)
	file := writeFile(t, dir, "tailer.yaml", strings.ReplaceAll(block, "/etc/stalwart/config.json", sc))
	for _, name := range []string{"run", "restore", "list"} {
		if _, _, err := resolve(t, []string{name, "--config", file}, nil); err != nil {
			t.Errorf("%s with the README's example: %v", name, err)
		}
	}
	cmd, _, _ := resolve(t, []string{"run", "--config", file}, nil)
	if db := cmd.Flags().Lookup("db").Value.String(); db != "/var/lib/stalwart" {
		t.Errorf("run's db from the README example: %q", db)
	}
}
