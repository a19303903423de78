package report

import (
	"github.com/tailer-backup/tailer/uploader"
	"github.com/tailer-backup/tailer/uploader/spool"
)

// SpoolStatus is one directory of `tailer run`'s spool as status reports
// it: what it holds that the replica has not confirmed yet.
type SpoolStatus struct {
	Dir string `json:"dir"`
	// Replica is the replica the directory records as its owner (its URL
	// as last shown), "" when an older tailer did not record it.
	Replica string `json:"replica,omitempty"`
	Objects int    `json:"objects"`
	Bytes   int64  `json:"bytes"`
}

// Spools reads the spool directories under root: the one of each replica
// in rs (by index; nil when it has none yet) and the orphans, which no
// replica in rs owns. Their objects are uploaded only by a `tailer run`
// given their replica.
func Spools(root string, rs []uploader.Replica) (own []*SpoolStatus, orphans []SpoolStatus, err error) {
	infos, err := spool.ListSpools(root)
	if err != nil {
		return nil, nil, err
	}
	own = make([]*SpoolStatus, len(rs))
	for _, i := range infos {
		s := SpoolStatus{Dir: i.Dir, Objects: i.Objects, Bytes: i.Bytes}
		if i.Owner != nil {
			s.Replica = i.Owner.Replica
		}
		mine := false
		for k, r := range rs {
			if i.OwnedBy(r) && own[k] == nil {
				own[k], mine = &s, true
				break
			}
		}
		if !mine {
			orphans = append(orphans, s)
		}
	}
	return own, orphans, nil
}
