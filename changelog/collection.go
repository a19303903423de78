package changelog

import (
	"fmt"
	"strconv"
	"strings"
)

// Collection is the collection byte of a changelog key. It is a distinct
// type so that printing one gives its Stalwart name rather than a number.
type Collection uint8

// Stalwart 0.12+ collection ids, as written in `l` keys. The values are an
// on-disk contract of Stalwart and never change.
const (
	Email                     Collection = 0
	Thread                    Collection = 1
	Calendar                  Collection = 2
	AddressBook               Collection = 3
	FileNode                  Collection = 4
	Identity                  Collection = 5
	EmailSubmission           Collection = 6
	SieveScript               Collection = 7
	CalendarEventNotification Collection = 8
	ShareNotification         Collection = 9
	VanishedEmail             Collection = 251
	VanishedCalendar          Collection = 252
	VanishedAddressBook       Collection = 253
	VanishedFileNode          Collection = 254
)

// name returns the String name of a known collection, "" otherwise. A
// switch rather than a table keeps the package free of global variables.
func (c Collection) name() string {
	switch c {
	case Email:
		return "email"
	case Thread:
		return "thread"
	case Calendar:
		return "calendar"
	case AddressBook:
		return "address-book"
	case FileNode:
		return "file-node"
	case Identity:
		return "identity"
	case EmailSubmission:
		return "email-submission"
	case SieveScript:
		return "sieve-script"
	case CalendarEventNotification:
		return "calendar-event-notification"
	case ShareNotification:
		return "share-notification"
	case VanishedEmail:
		return "vanished-email"
	case VanishedCalendar:
		return "vanished-calendar"
	case VanishedAddressBook:
		return "vanished-address-book"
	case VanishedFileNode:
		return "vanished-file-node"
	}
	return ""
}

// String returns the collection's name in lower-case kebab case
// ("email", "vanished-email", ...) so CLI output and flags use words, and
// "collection(N)" for an id this package does not know, so that one still
// prints unambiguously and ParseCollection reads it back.
func (c Collection) String() string {
	if n := c.name(); n != "" {
		return n
	}
	return fmt.Sprintf("collection(%d)", uint8(c))
}

// Known reports whether c is one of the collections above. Entries of
// other collections are kept opaque and counted, not rejected: a newer
// Stalwart may add collections.
func (c Collection) Known() bool { return c.name() != "" }

// IsVanished reports whether c is a vanished-items collection, whose
// values are bare lists of item ids rather than change sets.
func (c Collection) IsVanished() bool { return c >= VanishedEmail && c <= VanishedFileNode }

// HasChangeSets reports whether c's values are change sets (the seven
// counts then the ids): every known collection except ShareNotification
// and the vanished ones.
func (c Collection) HasChangeSets() bool { return c <= CalendarEventNotification }

// ParseCollection is the inverse of String, for command-line flags: it
// accepts the names String returns in any case, with or without the dashes
// ("AddressBook", "address_book" and "address-book" are the same),
// "collection(N)", and plain numbers 0..255.
func ParseCollection(name string) (Collection, error) {
	s := strings.TrimSpace(name)
	if inner, ok := strings.CutPrefix(strings.ToLower(s), "collection("); ok {
		if num, ok := strings.CutSuffix(inner, ")"); ok {
			s = num
		}
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return Collection(n), nil
	}
	want := normalizeName(s)
	if want != "" {
		for c := 0; c < 256; c++ {
			if n := Collection(c).name(); n != "" && normalizeName(n) == want {
				return Collection(c), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown collection %q: want a name such as email, thread, calendar, address-book, vanished-email, or a number 0..255", name)
}

// normalizeName lower-cases s and drops '-' and '_', so that names match
// whatever word separator a user types.
func normalizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r != '-' && r != '_' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
