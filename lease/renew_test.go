package lease

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

const ttl = 300 * time.Millisecond

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// stored is the record the fake replica holds.
func stored(t *testing.T, f *fakeReplica) Record {
	t.Helper()
	raw, _, err := f.GetVersioned(context.Background(), Key)
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestKeepReportsExpiryWhileRenewalsFail is the reviewer's scenario: every
// renewal fails (or hangs), and Keep must report the lease lost once its
// confirmed validity is over, before another tailer can take it over by
// the expiry recorded in the object. The clock is the test's: the lease
// is judged by it, never by how fast the machine runs.
func TestKeepReportsExpiryWhileRenewalsFail(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode putMode
	}{
		{"renewals fail", putFail},
		{"renewals hang", putHang},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			f := &fakeReplica{attempted: make(chan putMode, 100)}
			h, err := Acquire(context.Background(), f, Options{TTL: ttl, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			<-f.attempted // Acquire's write
			held := stored(t, f)
			f.setMode(tc.mode)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			type report struct {
				err error
				at  time.Time
			}
			lost := make(chan report, 2)
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.Keep(ctx, func(err error) { lost <- report{err, clock.Now()} })
			}()

			// Renewals are attempted and fail while the clock stands
			// within the validity: the lease is still ours.
			for range 3 {
				select {
				case <-f.attempted:
				case <-time.After(30 * time.Second):
					t.Fatal("Keep made no renewal attempt that ended (a hanging renewal is not cut off)")
				}
			}
			select {
			case r := <-lost:
				t.Fatalf("lost reported within the validity: %v", r.err)
			default:
			}

			// Just before the recorded expiry, past ours: Keep must say so.
			clock.Set(held.Expires.Add(-time.Millisecond))
			var r report
			select {
			case r = <-lost:
			case <-time.After(30 * time.Second):
				t.Fatal("Keep never reported the lease lost while every renewal failed")
			}
			if !errors.Is(r.err, ErrExpired) {
				t.Fatalf("lost(%v), want ErrExpired", r.err)
			}
			if !r.at.Before(held.Expires) {
				t.Fatalf("lost reported at %s, not before the recorded expiry %s", r.at, held.Expires)
			}
			if err := h.Check(); !errors.Is(err, ErrExpired) {
				t.Fatalf("Check after lost: %v, want ErrExpired", err)
			}
			<-done // Keep returned

			// Only now may a second tailer take it, by the record's expiry.
			f.setMode(putOK)
			clock.Set(held.Expires)
			if _, err := Acquire(context.Background(), f, Options{TTL: ttl, Now: clock.Now}); err != nil {
				t.Fatalf("second tailer after expiry: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for i, d := range f.deadlines[1 : len(f.deadlines)-1] {
				if !d {
					t.Errorf("renewal %d ran without a deadline", i+1)
				}
			}
		})
	}
}

// TestFailedRenewalDoesNotExtend: only a confirmed write moves the
// validity; a failed one leaves it where the last confirmed one put it.
func TestFailedRenewalDoesNotExtend(t *testing.T) {
	clock := &fakeClock{now: t0}
	f := &fakeReplica{}
	h, err := Acquire(context.Background(), f, Options{TTL: ttl, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	want := t0.Add(ttl - DefaultMargin(ttl))
	f.setMode(putFail)
	clock.Set(t0.Add(ttl / 3))
	if err := h.Renew(context.Background()); !errors.Is(err, errInjected) {
		t.Fatalf("renew: %v, want the injected error", err)
	}
	if got := h.ValidUntil(); !got.Equal(want) {
		t.Fatalf("after a failed renewal valid until %s, want %s (last confirmed + TTL - margin)", got, want)
	}
	if err := h.Check(); err != nil {
		t.Fatalf("Check within the validity: %v", err)
	}
	clock.Set(want)
	if err := h.Check(); !errors.Is(err, ErrExpired) {
		t.Fatalf("Check at the end of the validity: %v, want ErrExpired", err)
	}
}

// TestRenewAfterLostResponse: a renewal that the replica applied but whose
// response was lost is answered "precondition failed" when sent again (or
// when the next renewal uses the old version). The object carries our
// token, so the lease is still ours; a takeover is still ErrLost.
func TestRenewAfterLostResponse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		advance  time.Duration // clock step between the lost write and the next
		takeover bool          // another tailer forces its way in between
	}{
		{"the same record is sent again", 0, false},
		{"the next renewal follows", 50 * time.Millisecond, false},
		{"taken over meanwhile", 50 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			f := &fakeReplica{}
			ctx := context.Background()
			h, err := Acquire(ctx, f, Options{TTL: ttl, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			t1 := t0.Add(ttl / 3)
			clock.Set(t1)
			f.setMode(putApplyNoResp)
			if err := h.Renew(ctx); err == nil || errors.Is(err, ErrLost) {
				t.Fatalf("renewal whose response was lost: %v, want a transient error", err)
			}
			if tc.takeover {
				if _, err := Acquire(ctx, f, Options{TTL: ttl, Now: clock.Now, Force: true}); err != nil {
					t.Fatal(err)
				}
			}
			t2 := t1.Add(tc.advance)
			clock.Set(t2)
			err = h.Renew(ctx)
			if tc.takeover {
				if !errors.Is(err, ErrLost) {
					t.Fatalf("renewal after a takeover: %v, want ErrLost", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("renewal after our own write's response was lost: %v, want it kept", err)
			}
			if got, want := h.ValidUntil(), t2.Add(ttl-DefaultMargin(ttl)); !got.Equal(want) {
				t.Fatalf("valid until %s, want %s", got, want)
			}
			if rec := stored(t, f); !rec.Renewed.Equal(t2) || rec.Token == "" {
				t.Fatalf("stored record renewed %s token %q, want renewed %s with our token", rec.Renewed, rec.Token, t2)
			}
			// The adopted version is right: a plain renewal succeeds.
			clock.Set(t2.Add(ttl / 3))
			if err := h.Renew(ctx); err != nil {
				t.Fatalf("next renewal: %v", err)
			}
		})
	}
}

// TestMargin: the default, and margins that would leave no validity.
func TestMargin(t *testing.T) {
	for _, tc := range []struct {
		ttl, want time.Duration
	}{
		{30 * time.Second, 3 * time.Second},
		{5 * time.Second, time.Second},
		{900 * time.Millisecond, 180 * time.Millisecond},
		{300 * time.Millisecond, 60 * time.Millisecond},
	} {
		if got := DefaultMargin(tc.ttl); got != tc.want || got >= tc.ttl {
			t.Errorf("DefaultMargin(%v) = %v, want %v", tc.ttl, got, tc.want)
		}
	}
	for _, m := range []time.Duration{ttl, 2 * ttl, -time.Millisecond} {
		if _, err := Acquire(context.Background(), &fakeReplica{}, Options{TTL: ttl, Margin: m}); !errors.Is(err, ErrBadMargin) {
			t.Errorf("margin %v with TTL %v: %v, want ErrBadMargin", m, ttl, err)
		}
	}
}

// TestReleaseEndsKeep: after Release, Check fails and Keep returns
// without reporting a loss.
func TestReleaseEndsKeep(t *testing.T) {
	f := &fakeReplica{}
	h, err := Acquire(context.Background(), f, Options{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	lost := make(chan error, 1)
	go func() { defer close(done); h.Keep(context.Background(), func(err error) { lost <- err }) }()
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Check(); !errors.Is(err, ErrReleased) {
		t.Fatalf("Check after Release: %v, want ErrReleased", err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Keep kept running after Release")
	}
	select {
	case err := <-lost:
		t.Fatalf("Keep reported %v after a Release", err)
	default:
	}
}
