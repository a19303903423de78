package spool

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
)

// errNotHeld stands for a lapsed single-writer lease.
var errNotHeld = errors.New("lease expired")

// TestShipperGuard: the guard is consulted before every upload; once it
// refuses, nothing more is uploaded, Drain says why, and the objects stay
// in the spool.
func TestShipperGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		allowed int // uploads the guard lets through before refusing
	}{
		{"refuses from the start", 0},
		{"refuses after two uploads", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSpool(t, t.TempDir())
			keys, _ := addN(t, s, "k", 4)
			fake := newFake(s, 0)
			sh, _, _ := newTestShipper(t, s, fake)
			var checks atomic.Int64
			sh.Guard(func() error {
				if checks.Add(1) > int64(tc.allowed) {
					return errNotHeld
				}
				return nil
			})
			err := sh.Drain(context.Background())
			if !errors.Is(err, ErrGuarded) || !errors.Is(err, errNotHeld) {
				t.Fatalf("Drain = %v, want ErrGuarded wrapping the guard's error", err)
			}
			if got := fake.uploaded(); !slices.Equal(got, keys[:tc.allowed]) {
				t.Fatalf("uploaded %v, want %v", got, keys[:tc.allowed])
			}
			wantPending(t, s, keys[tc.allowed:]...)
		})
	}
}
