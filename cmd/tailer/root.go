package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tailer-backup/tailer/uploader"
)

// errReported is returned by commands that already printed their error.
var errReported = errors.New("reported")

// globals are the flags every subcommand shares.
type globals struct {
	logFormat string
	logLevel  string
	endpoint  string
	region    string
	pathStyle string
	s3Keys    s3Keys   // static S3 credentials, see config.go
	keyFiles  []string // --encryption-key-file, the first one writes
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "tailer",
		Short: "Hot, point-in-time backup of a live Stalwart RocksDB store",
		Long: `tailer backs up the RocksDB store of a running Stalwart mail server without
stopping it or taking its lock. It opens the store as a RocksDB secondary,
ships every WAL batch (sealed in checksummed zstd segments) plus periodic
full exports to S3-compatible storage or a directory, through a durable
local spool, and restores the store as it was at any sequence number.

Replica URLs:
  s3://BUCKET/PREFIX   AWS S3 or S3-compatible (MinIO). Endpoint, region and
                       credentials come from the AWS environment
                       (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID,
                       AWS_SECRET_ACCESS_KEY, profiles), or from
                       ?endpoint=http://127.0.0.1:9000&region=us-east-1&path-style=true
                       or --s3-endpoint/--s3-region/--s3-path-style.
  file:///ABS/DIR      a local directory with the same layout.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.logFormat, "log-format", "auto", "log format: text, json, or auto (text on a terminal, JSON otherwise)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.endpoint, "s3-endpoint", "", "S3 endpoint URL (overrides AWS_ENDPOINT_URL_S3 and the URL's ?endpoint=)")
	pf.StringVar(&g.region, "s3-region", "", "S3 region (overrides AWS_REGION and the URL's ?region=)")
	pf.StringVar(&g.pathStyle, "s3-path-style", "", "S3 path-style addressing: true or false (default: true when an endpoint is set)")
	pf.StringArrayVar(&g.keyFiles, "encryption-key-file", nil, "encrypt every object with AES-256-GCM before it leaves the machine, with the key in FILE: the base64 of 32 random bytes (make one with 'head -c 32 /dev/urandom | base64 > key'; keep a copy: without it nothing restores), or 'passphrase: ' and a passphrase of at least 12 characters; repeat it to rotate keys: the first encrypts, all decrypt; or set "+envEncryptionKey+" to one key")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newRunCmd(g), newExportCmd(g), newRestoreCmd(g), newListCmd(g), newDigestCmd(g), newChangesCmd(g), newVerifyCmd(g),
		newPruneCmd(g), newCompactCmd(g), newStatusCmd(g), newBenchCmd(g))
	setupConfig(root, g) // --config, TAILER_* and --stalwart-config for every command
	phraseErrors(root)   // library errors name settings by their flags (errors.go)
	return root
}

// logger builds the process logger on stderr.
func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var w io.Writer = stderrLine // shared with export's and restore's progress line
	switch g.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if term.IsTerminal(int(os.Stderr.Fd())) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text, json or auto", g.logFormat)
}

// replicaOptions turns the S3 flags into uploader options.
func (g *globals) replicaOptions(log *slog.Logger) (uploader.Options, error) {
	o := uploader.Options{Endpoint: g.endpoint, Region: g.region, Logger: log,
		AccessKeyID: g.s3Keys.id, SecretAccessKey: g.s3Keys.secret}
	switch strings.ToLower(g.pathStyle) {
	case "":
	case "true", "1", "yes":
		t := true
		o.PathStyle = &t
	case "false", "0", "no":
		f := false
		o.PathStyle = &f
	default:
		return o, fmt.Errorf("--s3-path-style %q: use true or false", g.pathStyle)
	}
	return o, nil
}

// setup builds the logger and opens the replica URL with the global S3
// overrides: what every command that reads or writes a replica needs first.
func (g *globals) setup(cmd *cobra.Command, rawURL string) (*slog.Logger, uploader.Replica, error) {
	log, err := g.logger()
	if err != nil {
		return nil, nil, err
	}
	if rawURL == "" {
		return nil, nil, errors.New("no --replica given: e.g. --replica s3://backups/stalwart or --replica file:///var/backups/stalwart")
	}
	o, err := g.replicaOptions(log)
	if err != nil {
		return nil, nil, err
	}
	r, err := uploader.Open(cmd.Context(), rawURL, o)
	if err != nil {
		return log, nil, err
	}
	if readsOnly[cmd.Name()] {
		if err := checkFileReplica(r); err != nil {
			return log, nil, err
		}
	}
	keys, err := g.encryptionKeys(log)
	if err != nil {
		return log, nil, err
	}
	if keys == nil {
		// Still wrapped: an encrypted object read without the key then
		// says which flag is missing instead of looking corrupt.
		return log, uploader.Unencrypted(r), nil
	}
	if r, err = uploader.Encrypted(r, keys...); err != nil {
		return log, nil, err
	}
	log.Debug("client-side encryption on", "replica", r.String(), "keys", len(keys), "write_key_is_passphrase", keys[0].IsPassphrase())
	return log, r, nil
}

// envEncryptionKey holds an encryption key (base64, or "passphrase: …"),
// for deployments that pass secrets as environment variables (a
// Kubernetes Secret).
const envEncryptionKey = "TAILER_ENCRYPTION_KEY"

// encryptionKeys reads the keys from --encryption-key-file (each file one
// key, the first one the write key) or TAILER_ENCRYPTION_KEY; nil when
// neither is set. Its errors and logs never contain key material.
func (g *globals) encryptionKeys(log *slog.Logger) ([]uploader.Key, error) {
	env, hasEnv := lookupEnv(envEncryptionKey)
	hasEnv = hasEnv && env != ""
	switch {
	case len(g.keyFiles) > 0 && hasEnv:
		return nil, fmt.Errorf("both --encryption-key-file and %s are set: use one", envEncryptionKey)
	case hasEnv:
		k, err := uploader.ParseKey([]byte(env))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envEncryptionKey, err)
		}
		return []uploader.Key{k}, nil
	}
	var keys []uploader.Key
	for _, f := range g.keyFiles {
		k, err := readKeyFile(log, f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// readKeyFile reads one --encryption-key-file.
func readKeyFile(log *slog.Logger, name string) (uploader.Key, error) {
	if name == "" {
		return uploader.Key{}, errors.New("--encryption-key-file with an empty file name")
	}
	st, err := os.Stat(name)
	if err != nil {
		return uploader.Key{}, fmt.Errorf("--encryption-key-file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("the encryption key file is readable by other users: chmod 600 it", "file", name)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return uploader.Key{}, fmt.Errorf("--encryption-key-file: %w", err)
	}
	k, err := uploader.ParseKey(b)
	if err != nil {
		return uploader.Key{}, fmt.Errorf("--encryption-key-file %s: %w", name, err)
	}
	return k, nil
}

// readsOnly lists the commands that only read a replica. For them a file
// replica whose directory does not exist is a wrong URL (the S3 backend
// reports a missing bucket the same way), not an empty replica: only run
// and export create it.
var readsOnly = map[string]bool{"list": true, "restore": true, "verify": true, "changes": true}

// checkFileReplica refuses a file:// replica whose directory is missing.
func checkFileReplica(r uploader.Replica) error {
	dir, ok := strings.CutPrefix(r.String(), "file://")
	if !ok {
		return nil
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("replica directory %s does not exist: check the --replica URL ('tailer run' and 'tailer export' create it)", dir)
	case err != nil:
		return fmt.Errorf("replica directory %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("replica %s is not a directory: check the --replica URL", dir)
	}
	return nil
}

func roundDur(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
