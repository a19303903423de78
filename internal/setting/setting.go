// Package setting lets a library name, in its errors, a setting its
// caller gave (a Config field, an option) in the library's own words,
// while a front end renames it in its own: cmd/tailer says "--db" where
// package agent says "the store directory (Config.DB)". Library packages
// thus never name CLI flags, and the CLI's messages still do.
//
// An Error's text is Before + the setting's name + After. A front end
// finds every Error in an error's chain (Find) and replaces each one's
// text by Phrase(its own name for Key).
package setting

import "errors"

// Error is the part of an error message that names a setting. It can be
// the whole error or one wrapped piece of it (fmt.Errorf with %w).
type Error struct {
	// Key identifies the setting for a front end: "DB", "Scratch",
	// "AllowPartial"... It is stable; the wording is not.
	Key string
	// Name is the setting in the library's words.
	Name string
	// Before and After are the text around the name.
	Before, After string
}

// Error renders the message with the library's name for the setting.
func (e *Error) Error() string { return e.Phrase(e.Name) }

// Phrase renders the message with name in place of the setting's name.
func (e *Error) Phrase(name string) string { return e.Before + name + e.After }

// Missing is the error for a required setting not given: "no NAME
// given: ADVICE".
func Missing(key, name, advice string) *Error {
	return &Error{Key: key, Name: name, Before: "no ", After: " given: " + advice}
}

// Bad is the error for a setting given a value that cannot work: "NAME
// VALUE PROBLEM".
func Bad(key, name, value, problem string) *Error {
	return &Error{Key: key, Name: name, After: " " + value + " " + problem}
}

// Find returns every Error in err's chain, outermost first, following
// both Unwrap() error and Unwrap() []error.
func Find(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		for err != nil {
			if e, ok := err.(*Error); ok {
				out = append(out, e)
			}
			switch u := err.(type) {
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					walk(x)
				}
				return
			default:
				err = errors.Unwrap(err)
			}
		}
	}
	walk(err)
	return out
}
