// Package safepath turns a slash-separated relative name that came from
// outside (a bucket key) into a path under a local root, refusing any name
// that could point elsewhere. Bucket keys are untrusted input: a key such
// as "generations/g/segments/../../../../tmp/x" must not make tailer
// create or write anything outside the directory it works in.
package safepath

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrEscapes is wrapped by every error of Join: the name is not a plain
// relative path that stays under the root.
var ErrEscapes = errors.New("not a plain relative path inside the directory")

// Join returns root joined with rel, a slash-separated relative name. It
// refuses, rather than cleans, every name whose meaning is not obvious:
// empty, absolute, with an empty, "." or ".." component, a backslash or a
// NUL byte. The result is checked once more to lie strictly inside root.
// It does not resolve symbolic links: root and what tailer creates under
// it are tailer's own.
func Join(root, rel string) (string, error) {
	if err := check(rel); err != nil {
		return "", fmt.Errorf("name %q: %w %s: %v", rel, ErrEscapes, root, err)
	}
	cleanRoot := filepath.Clean(root)
	p := filepath.Join(cleanRoot, filepath.FromSlash(rel))
	inside, err := filepath.Rel(cleanRoot, p)
	if err != nil || inside == "." || inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) || filepath.IsAbs(inside) {
		return "", fmt.Errorf("name %q: %w %s", rel, ErrEscapes, root)
	}
	return p, nil
}

func check(rel string) error {
	switch {
	case rel == "":
		return errors.New("empty")
	case strings.HasPrefix(rel, "/"):
		return errors.New("absolute")
	case strings.ContainsAny(rel, "\\\x00"):
		return errors.New("contains a backslash or NUL byte")
	}
	for _, c := range strings.Split(rel, "/") {
		switch c {
		case "":
			return errors.New("has an empty component (a doubled or trailing slash)")
		case ".", "..":
			return fmt.Errorf("has a %q component", c)
		}
	}
	return nil
}
