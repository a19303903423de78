package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tailer-backup/tailer/internal/config"
)

// Flags the configuration machinery adds.
const (
	flagConfig         = "config"
	flagStalwartConfig = "stalwart-config"
	flagAccessKeyID    = "s3-access-key-id"
	flagSecretKey      = "s3-secret-access-key"
)

// s3Keys are static S3 credentials. They are optional: without them the
// AWS SDK's own chain applies (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
// profiles, instance roles), which is what the deployment examples use.
// They exist so a config file can carry its own credentials, like the
// replica it names.
type s3Keys struct{ id, secret string }

// setupConfig makes every command configurable from a YAML file and from
// TAILER_* environment variables, in one place, so no command needs code
// of its own: it adds --config (and the S3 key settings) to the root,
// --stalwart-config to every command that has --db, and a
// PersistentPreRunE that fills, before the command runs, each flag the
// command line left unset. newRootCmd calls it once every command has
// been added. (A subcommand defining its own PersistentPreRunE would
// shadow this one: cobra runs only the nearest.)
func setupConfig(root *cobra.Command, g *globals) {
	pf := root.PersistentFlags()
	pf.String(flagConfig, "", "YAML file with settings for any flag (top-level keys for every command, a section per command); flags and TAILER_<FLAG> variables override it")
	pf.StringVar(&g.s3Keys.id, flagAccessKeyID, "", "S3 access key id, with s3-secret-access-key in the --config file or TAILER_S3_SECRET_ACCESS_KEY (default: the AWS SDK's credentials: AWS_ACCESS_KEY_ID, profiles, roles)")
	pf.StringVar(&g.s3Keys.secret, flagSecretKey, "", "S3 secret key: only from the config file or TAILER_S3_SECRET_ACCESS_KEY, never on the command line")
	pf.SetAnnotation(flagSecretKey, config.SecretAnnotation, []string{"true"})
	pf.MarkHidden(flagSecretKey)
	for _, c := range root.Commands() {
		if c.LocalFlags().Lookup("db") != nil {
			c.Flags().String(flagStalwartConfig, "", "Stalwart 0.16's config.json: take --db from its RocksDb.path when --db is not given")
		}
	}
	prev := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		settings, file, err := applyConfig(cmd, lookupEnv)
		if err != nil {
			return err
		}
		if settings != nil {
			// Every flag has its final value now: refuse one out of
			// its declared range (see limits.go) before anything starts.
			if err := checkLimits(cmd.Flags(), settings); err != nil {
				return err
			}
		}
		logConfig(g, file, settings)
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// lookupEnv reads the environment; tests replace it so the developer's
// own TAILER_* variables do not leak in.
var lookupEnv = os.LookupEnv

// formatOnly names, per command, the flags that go with one --format only
// (export and restore refuse them with the other one, see checkFormat). A
// value for one of them from the environment or the file is left out when
// the other format is in effect: a shared "replica:" must not make
// 'tailer export --format stalwart' fail. TestFormatOnlyMatchesCommands
// keeps this table in step with the commands.
var formatOnly = map[string]map[string]string{
	"export":  {"replica": formatTailer, "out": formatStalwart, "progress": formatStalwart, "blobs": formatStalwart, "blob-depth": formatStalwart},
	"restore": {"to": formatTailer, "digests": formatTailer, "blobs-to": formatTailer, "blob-depth": formatTailer, "out": formatStalwart, "progress": formatStalwart},
}

// applyConfig fills the flags of cmd that the command line did not set:
// from TAILER_<FLAG>, then the --config file (cmd's section, then the top
// level), then --stalwart-config for --db. It returns how every flag got
// its value, and the file it read (nil without one). Values are applied
// as if typed, so commands see them as Changed.
func applyConfig(cmd *cobra.Command, getenv func(string) (string, bool)) (map[string]config.Setting, *config.File, error) {
	if !cmd.Runnable() || cmd.Name() == "help" || isCompletion(cmd) {
		return nil, nil, nil
	}
	fs := cmd.Flags()
	if fl := fs.Lookup(flagSecretKey); fl != nil && fl.Changed {
		return nil, nil, fmt.Errorf("--%s on the command line is visible to every user of the machine (ps, shell history): set %s, or put it in the --config file",
			flagSecretKey, config.EnvName(flagSecretKey))
	}
	// The file's own name comes from --config or TAILER_CONFIG only.
	pre := &config.Resolver{Getenv: getenv}
	if _, err := pre.Flag(fs, flagConfig); err != nil {
		return nil, nil, err
	}
	var file *config.File
	if name := fs.Lookup(flagConfig).Value.String(); name != "" {
		f, err := config.Load(name)
		if err != nil {
			return nil, nil, err
		}
		if err := f.Check(configSchema(cmd.Root())); err != nil {
			return nil, nil, err
		}
		file = f
	}
	r := &config.Resolver{
		File:   file,
		Path:   commandPath(cmd),
		Getenv: getenv,
		Ignore: map[string]bool{"help": true, flagConfig: true},
		Skip: func(flag string, _ config.Source) bool {
			want, ok := formatOnly[cmd.Name()][flag]
			if !ok {
				return false
			}
			return fs.Lookup("format").Value.String() != want
		},
	}
	if fs.Lookup("format") != nil {
		if _, err := r.Flag(fs, "format"); err != nil {
			return nil, nil, err
		}
	}
	list, err := r.All(fs)
	if err != nil {
		return nil, nil, err
	}
	settings := map[string]config.Setting{}
	for _, s := range list {
		settings[s.Flag] = s
	}
	if err := stalwartDB(fs, settings); err != nil {
		return nil, nil, err
	}
	return settings, file, nil
}

// stalwartDB fills --db from --stalwart-config's RocksDb.path unless --db
// was given with at least the same precedence: --db on the command line
// beats everything, and a --stalwart-config on the command line beats a
// db: in the file.
func stalwartDB(fs *pflag.FlagSet, settings map[string]config.Setting) error {
	sc := fs.Lookup(flagStalwartConfig)
	if sc == nil || sc.Value.String() == "" || fs.Lookup("db") == nil {
		return nil
	}
	scs, dbs := settings[flagStalwartConfig], settings["db"]
	if dbs.Source >= scs.Source {
		return nil
	}
	path, err := config.StalwartDataPath(sc.Value.String())
	if err != nil {
		return err
	}
	if err := fs.Set("db", path); err != nil {
		return err
	}
	settings["db"] = config.Setting{Flag: "db", Source: scs.Source, Where: "RocksDb.path in " + sc.Value.String()}
	return nil
}

// logConfig logs, at debug level, where each flag not given on the
// command line came from: names and sources only, never values (a value
// may be a secret, and the debug log is what gets pasted into tickets).
func logConfig(g *globals, file *config.File, settings map[string]config.Setting) {
	log, err := g.logger()
	if err != nil {
		return // the command reports the bad --log-format/--log-level
	}
	var attrs []any
	if file != nil {
		attrs = append(attrs, "file", file.Path)
		if s, ok := settings[flagSecretKey]; ok && s.Source == config.FromFile {
			if st, err := os.Stat(file.Path); err == nil && st.Mode().Perm()&0o077 != 0 {
				log.Warn("the config file holds the S3 secret key and is readable by other users: chmod 600 it", "file", file.Path)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		if s := settings[name]; s.Source != config.FromDefault && s.Where != "--"+name {
			attrs = append(attrs, name, s.Where)
		}
	}
	log.Debug("settings from the environment and the config file", attrs...)
}

// configSchema lists the keys a config file may hold: at the top level,
// every flag of every command; in a command's section, that command's
// flags (its own and the global ones).
func configSchema(root *cobra.Command) *config.Schema {
	top := &config.Schema{Flags: map[string]bool{}, Sections: map[string]*config.Schema{}}
	var walk func(c *cobra.Command, into *config.Schema)
	walk = func(c *cobra.Command, into *config.Schema) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || isCompletion(sub) {
				continue
			}
			s := &config.Schema{Flags: map[string]bool{}, Sections: map[string]*config.Schema{}, What: sub.CommandPath()}
			for _, fs := range []*pflag.FlagSet{sub.LocalFlags(), sub.InheritedFlags()} {
				fs.VisitAll(func(fl *pflag.Flag) {
					if fl.Name == "help" || fl.Name == flagConfig {
						return
					}
					s.Flags[fl.Name] = true
					top.Flags[fl.Name] = true
				})
			}
			into.Sections[sub.Name()] = s
			walk(sub, s)
		}
	}
	walk(root, top)
	root.PersistentFlags().VisitAll(func(fl *pflag.Flag) {
		if fl.Name != flagConfig {
			top.Flags[fl.Name] = true
		}
	})
	return top
}

// commandPath is cmd's names below the root: ["run"], ["restore"].
func commandPath(cmd *cobra.Command) []string {
	var path []string
	for c := cmd; c.HasParent(); c = c.Parent() {
		path = append([]string{c.Name()}, path...)
	}
	return path
}

func isCompletion(c *cobra.Command) bool {
	for ; c != nil; c = c.Parent() {
		if c.Name() == "completion" || strings.HasPrefix(c.Name(), "__complete") {
			return true
		}
	}
	return false
}
