package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildBaseline builds the tailer of git revision rev of the checkout
// holding the current directory into work (the bench's own directory):
// `git archive` of rev unpacked there, then `go build ./cmd/tailer`. The
// checkout is only read (no worktree is added, nothing is checked out).
func buildBaseline(ctx context.Context, work, rev string) (string, error) {
	top, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("baseline revision %s: the current directory is not in a git checkout of tailer: %w", rev, err)
	}
	repo := strings.TrimSpace(string(top))
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--verify", "--quiet", rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("baseline revision %q: not a commit of %s", rev, repo)
	}
	rev = strings.TrimSpace(string(out))
	src := filepath.Join(work, "baseline-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", repo, rev, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("baseline revision %s: git archive into %s: %w\n%s", rev, src, err, tail(out))
	}
	bin := filepath.Join(work, "tailer-baseline")
	build := exec.CommandContext(ctx, "go", "-C", src, "build", "-o", bin, "./cmd/tailer")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("baseline revision %s: go build ./cmd/tailer: %w\n%s", rev, err, tail(out))
	}
	os.RemoveAll(src)
	return bin, nil
}
