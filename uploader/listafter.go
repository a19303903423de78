package uploader

import (
	"context"
	"sort"
)

// AfterLister is implemented by replicas that can begin a listing after a
// given key on the server (S3's StartAfter). A reader that only needs what
// is new, such as the warm standby polling every second, then pays for the
// few newest keys instead of paging through the replica's whole history.
type AfterLister interface {
	// ListAfter is List restricted to keys that sort after startAfter.
	ListAfter(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error)
}

// ListAfter returns the objects whose key starts with prefix and sorts
// strictly after startAfter, sorted by key: on the server when r is an
// AfterLister, else by filtering a full List.
func ListAfter(ctx context.Context, r Replica, prefix, startAfter string) ([]ObjectInfo, error) {
	if l, ok := r.(AfterLister); ok {
		return l.ListAfter(ctx, prefix, startAfter)
	}
	objs, err := r.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(objs), func(i int) bool { return objs[i].Key > startAfter })
	return objs[i:], nil
}
