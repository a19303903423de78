package agent

import (
	"testing"
	"time"

	"github.com/tailer-backup/tailer/segment"
)

func TestSealRule(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	with := func(bytes int, oldest time.Time) *pending {
		p := &pending{}
		p.add(segment.Batch{Seq: 1, Data: make([]byte, bytes)}, oldest, nil, nil)
		return p
	}
	r := sealRule{maxDelay: 200 * time.Millisecond, minInterval: 0, maxBytes: 1000}
	slow := sealRule{maxDelay: 200 * time.Millisecond, minInterval: time.Second, maxBytes: 1000}
	cases := []struct {
		name    string
		rule    sealRule
		p       *pending
		lastCut time.Time
		now     time.Time
		due     bool
		wait    time.Duration
	}{
		{"idle: nothing pending, no seal, no deadline", r, &pending{}, time.Time{}, ms(5000), false, 0},
		{"idle after a cut", slow, &pending{}, ms(0), ms(5000), false, 0},
		{"young batch waits for max-delay", r, with(10, ms(0)), time.Time{}, ms(50), false, 150 * time.Millisecond},
		{"max-delay reached", r, with(10, ms(0)), time.Time{}, ms(200), true, 0},
		{"max-delay passed", r, with(10, ms(0)), time.Time{}, ms(900), true, 0},
		{"size limit reached at once", r, with(1000, ms(0)), time.Time{}, ms(0), true, 0},
		{"size limit overrides min-put-interval", slow, with(1500, ms(100)), ms(50), ms(100), true, 0},
		{"below the size limit", r, with(999, ms(0)), time.Time{}, ms(1), false, 199 * time.Millisecond},
		{"min-put-interval holds back an old batch", slow, with(10, ms(100)), ms(0), ms(400), false, 600 * time.Millisecond},
		{"min-put-interval passed", slow, with(10, ms(100)), ms(0), ms(1000), true, 0},
		{"min-put-interval shorter than max-delay changes nothing", sealRule{maxDelay: 200 * time.Millisecond, minInterval: 50 * time.Millisecond, maxBytes: 1000},
			with(10, ms(100)), ms(90), ms(200), false, 100 * time.Millisecond},
		{"no cut yet: min-put-interval does not apply", slow, with(10, ms(0)), time.Time{}, ms(200), true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			due, wait := c.rule.due(c.p, c.lastCut, c.now)
			if due != c.due || wait != c.wait {
				t.Fatalf("due %v wait %v, want due %v wait %v", due, wait, c.due, c.wait)
			}
		})
	}
}

// TestPendingAdd: the oldest capture time and the family table are
// those of the first batch, the size the sum.
func TestPendingAdd(t *testing.T) {
	t0 := time.Unix(100, 0)
	var p pending
	fams := []segment.Family{{ID: 0, Name: "default"}}
	p.add(segment.Batch{Seq: 1, Data: make([]byte, 3)}, t0, nil, fams)
	p.add(segment.Batch{Seq: 2, Data: make([]byte, 4)}, t0.Add(time.Second), nil, nil)
	if !p.oldest.Equal(t0) || p.bytes != 7 || len(p.batches) != 2 || len(p.families) != 1 {
		t.Fatalf("pending %+v", p)
	}
}
