package agent

import "github.com/tailer-backup/tailer/retention"

// BlobGuard returns the retention.BlobGuard of the i-th replica, for
// tests that apply retention themselves beside a running agent (through
// the bare replica, while the agent's wrapped one refuses uploads).
func (a *Agent) BlobGuard(i int) retention.BlobGuard { return a.blobs.guard(a.targets[i]) }
