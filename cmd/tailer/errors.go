package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/tailer-backup/tailer/internal/setting"
)

// cliNames is how tailer's command line names the settings library
// packages name in their own words in errors (setting.Error's Key): the
// one place where a library's "store directory (Config.DB)" becomes
// "--db".
var cliNames = map[string]string{
	"DB":            "--db",
	"Replicas":      "--replica",
	"Scratch":       "--scratch",
	"Spool":         "--spool",
	"Out":           "--out",
	"To":            "--to",
	"Seq":           "--seq",
	"Time":          "--time",
	"Change":        "--account/--change-id",
	"AllowPartial":  "--allow-partial",
	"Temp":          "--temp",
	"ForceTakeover": "--force-takeover",
	"MaxAge":        "a maximum age (--retention 7d)",
	"KeepExports":   "a number of exports to keep (--retain-exports N)",
	"EncryptionKey": "--encryption-key-file FILE or " + envEncryptionKey,
	"ListAccounts":  "'tailer list --accounts'",
}

// phrased is an error whose message names tailer's flags; it wraps the
// library's error, so errors.Is and errors.As see through it.
type phrased struct {
	msg string
	err error
}

func (p *phrased) Error() string { return p.msg }
func (p *phrased) Unwrap() error { return p.err }

// phrase rewrites err's message so that every setting a library names in
// its own words is named by its flag.
func phrase(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, e := range setting.Find(err) {
		if name, ok := cliNames[e.Key]; ok {
			if lib := e.Error(); strings.Contains(msg, lib) {
				msg, changed = strings.Replace(msg, lib, e.Phrase(name), 1), true
			}
		}
	}
	if !changed {
		return err
	}
	return &phrased{msg: msg, err: err}
}

// phraseErrors makes every command of the tree under c return its errors
// phrased (see phrase).
func phraseErrors(c *cobra.Command) {
	wrap := func(f func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
		if f == nil {
			return nil
		}
		return func(cmd *cobra.Command, args []string) error { return phrase(f(cmd, args)) }
	}
	c.PersistentPreRunE = wrap(c.PersistentPreRunE)
	c.PreRunE = wrap(c.PreRunE)
	c.RunE = wrap(c.RunE)
	c.PostRunE = wrap(c.PostRunE)
	c.PersistentPostRunE = wrap(c.PersistentPostRunE)
	for _, sub := range c.Commands() {
		phraseErrors(sub)
	}
}
