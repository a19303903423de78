package retention

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseAge parses a retention period: a Go duration ("36h", "90m") that
// may also use days and weeks ("7d", "2w", "1d12h", "1.5d"), because
// retention is naturally counted in days and time.ParseDuration stops at
// hours. A day is 24 hours (capture times are UTC; there are no DST days).
func ParseAge(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty duration: use e.g. 7d, 36h or 2w")
	}
	var out strings.Builder
	num := ""
	for _, r := range in {
		switch {
		case r >= '0' && r <= '9' || r == '.':
			num += string(r)
		case r == 'd' || r == 'w':
			if num == "" {
				return 0, fmt.Errorf("duration %q: %q needs a number before it", s, r)
			}
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			hours := f * 24
			if r == 'w' {
				hours *= 7
			}
			out.WriteString(strconv.FormatFloat(hours, 'f', -1, 64) + "h")
			num = ""
		default:
			out.WriteString(num)
			out.WriteRune(r)
			num = ""
		}
	}
	out.WriteString(num)
	d, err := time.ParseDuration(out.String())
	if err != nil {
		return 0, fmt.Errorf("duration %q: use e.g. 7d, 36h, 2w or 1d12h", s)
	}
	return d, nil
}
