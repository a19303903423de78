package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tailer-backup/tailer/bench"
)

// newBenchCmd is `tailer bench`: the measurements of issue 8 on this
// machine, in one run, so an operator can compare tailer with what they
// use today and we can see which goal is met.
func newBenchCmd(g *globals) *cobra.Command {
	var (
		quick, asJSON, keep bool
		size, work          string
		only                []string
		rate, rounds        int
		lagDur, idleDur     time.Duration
		overDur, poll       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--json] [--size 64MiB]",
		Short: "Measure lag, overhead, export, restore, memory and S3 cost on this machine",
		Long: `bench measures, in one run and side by side:

  lag       commit on a Stalwart-like primary → segment confirmed by MinIO,
            p50/p99/max at a steady --rate and at full speed
  overhead  load generator throughput with 'tailer run' ÷ without (same
            seed and duration, alternated --overhead-rounds times)
  export    'tailer export' time and bytes vs a RocksDB checkpoint + tar | zstd -3
  restore   'tailer restore' time vs copying the checkpoint back, untar, and
            RocksDB's BackupEngine restore
  memory    peak RSS of the tailer process exporting and restoring stores
            of --size and 4× --size
  cost      S3 PUT/GET/LIST per hour tailing at --rate and idle, and per restore

It starts its own MinIO on 127.0.0.1 (the binary scripts/install-deps.sh
installs) and needs tar and zstd. The default run takes a few minutes and
uses 128 MiB and 512 MiB stores (the goals are stated for ≥ 1 GiB and 4 GiB:
--size 1GiB, longer); --quick is a ~1 minute smoke run. The work directory
needs room for about 6× the large store. Prefer the ratios: they are
measured within one run; absolute figures move with the machine's load.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			o := bench.Defaults()
			if quick {
				o = bench.Quick()
			}
			set := cmd.Flags().Changed
			if set("size") {
				if o.Size, err = bench.ParseSize(size); err != nil {
					return err
				}
			}
			if set("rate") {
				o.Rate = rate
			}
			if set("lag-duration") {
				o.LagDuration = lagDur
			}
			if set("idle-duration") {
				o.IdleDuration = idleDur
			}
			if set("overhead-duration") {
				o.OverheadDuration = overDur
			}
			if set("overhead-rounds") {
				o.OverheadRounds = rounds
			}
			for _, f := range []string{"only", "poll", "size", "rate", "lag-duration", "idle-duration", "overhead-duration", "overhead-rounds"} {
				if set(f) {
					o.Mode += " (custom)"
					break
				}
			}
			for _, p := range only {
				if p != "tailing" && p != "overhead" && p != "stores" {
					return fmt.Errorf("--only %q: use tailing, overhead or stores", p)
				}
			}
			o.Only = only
			o.Poll, o.Work, o.Keep, o.Log, o.Progress = poll, work, keep, log, os.Stderr
			if o.Bin, err = os.Executable(); err != nil {
				return fmt.Errorf("find the tailer binary to run as a subprocess: %w", err)
			}
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&quick, "quick", false, "a ~1 minute smoke run (small stores, short phases), for CI")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON instead of tables")
	f.StringSliceVar(&only, "only", nil, "run only these parts: tailing (lag, cost), overhead, stores (export, restore, memory)")
	f.StringVar(&size, "size", "128MiB", "the small store's size; the large one is 4× (the issue's goals: 1GiB)")
	f.IntVar(&rate, "rate", 1000, "the steady load, tx/s")
	f.DurationVar(&lagDur, "lag-duration", 20*time.Second, "load in each lag phase (steady, full speed)")
	f.DurationVar(&idleDur, "idle-duration", 30*time.Second, "the idle phase (PUTs must be 0)")
	f.DurationVar(&overDur, "overhead-duration", 10*time.Second, "each run of the overhead comparison")
	f.IntVar(&rounds, "overhead-rounds", 3, "with/without pairs in the overhead comparison")
	f.DurationVar(&poll, "poll", 0, "tailer's --poll during the lag phases (default: run's default, 1s)")
	// Durations, sizes and counts declare their valid range (limits.go);
	// a new one needs a limit call here and a row in TestLimits.
	limit(f, "size", positive("128MiB").parsedBy(parseSize))
	limit(f, "rate", positive("1000"))
	limit(f, "lag-duration", positive("20s"))
	limit(f, "idle-duration", positive("30s"))
	limit(f, "overhead-duration", positive("10s"))
	limit(f, "overhead-rounds", atLeast(1, "3"))
	limit(f, "poll", nonNegative("250ms; 0 is run's default"))
	f.StringVar(&work, "work", "", "where the bench makes its own temporary directory (default: the system's); only that one is removed at the end")
	f.BoolVar(&keep, "keep", false, "keep the bench's temporary directory")
	return cmd
}
