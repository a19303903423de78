package config

import (
	"fmt"
	"strings"
)

// Expand replaces ${VAR} and ${VAR:-default} in s with getenv's values;
// $$ is a literal $, and a $ followed by anything else is kept as is (a
// password or a path may hold one). An unset variable without a default
// is an error: an empty replica or path from a forgotten export would
// otherwise fail later, far from its cause. ${VAR:-default} uses default
// when VAR is unset or empty, as the shell does.
//
// expanded reports whether a variable was substituted: such a value may
// hold a secret from the environment, so callers keep it out of messages.
func Expand(s string, getenv func(string) (string, bool)) (out string, expanded bool, err error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", false, fmt.Errorf("unterminated ${ (write $$ for a literal $)")
			}
			ref := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validName(name) {
				return "", false, fmt.Errorf("${%s}: not a variable name (letters, digits, _; write $$ for a literal $)", name)
			}
			v, ok := getenv(name)
			switch {
			case ok && (v != "" || !hasDef):
			case hasDef:
				v = def
			default:
				return "", false, fmt.Errorf("${%s} is not set (set it, or write ${%s:-default})", name, name)
			}
			b.WriteString(v)
			expanded = true
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), expanded, nil
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// EnvName is the environment variable for a flag: TAILER_ and the flag's
// name in upper case with dashes as underscores (--s3-endpoint:
// TAILER_S3_ENDPOINT).
func EnvName(flag string) string {
	return "TAILER_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
