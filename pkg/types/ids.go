package types

import "fmt"

// MaxIDLength bounds a graph id; the service's ids are 36-byte UUIDs.
const MaxIDLength = 64

// ValidateID rejects any graph id that is not a UUID-like string of letters,
// digits and '-', so an id can never name another key, escape a folder or
// smuggle control characters into a log line. Every backend checks ids with
// it before using them. Errors wrap ErrInvalidInput.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty graph id", ErrInvalidInput)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: graph id longer than %d bytes", ErrInvalidInput, MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Errorf("%w: graph id %q: only letters, digits and '-' are allowed", ErrInvalidInput, id)
		}
	}
	return nil
}
