// Package marker holds the built-in types.Marker backends: S3 (the seed's
// default, compatible with the original service's marks), a folder on the
// local filesystem and memory. Each sets a mark atomically, so of many
// concurrent Mark calls for one graph exactly one wins, and takes over an
// expired or failed mark just as atomically.
//
// A mark is stored as the seed stored it: an RFC 3339 timestamp of when the
// job was queued, under <id>_in_progress. Its owner token follows on a
// second line in a mark file, and in the object's metadata in S3, so the
// original service still reads the body as a timestamp; a mark without an
// owner (the original service's) is owned by the empty token. A failure
// record replaces it under the same name as JSON,
// {"state":"failed","at":"<RFC 3339>","reason":"...","owner":"..."}, which
// the original service reads as an expired mark.
package marker

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	// markSuffix names a graph's mark, as the seed named it.
	markSuffix = "_in_progress"
	// maxReasonLength bounds a stored failure reason, so an enormous error
	// message cannot make a mark large.
	maxReasonLength = 1024
	// stateFailed is the state field of a failure record.
	stateFailed = "failed"
	// maxAttempts bounds how often Mark retries after losing a race to an
	// Unmark or Fail that changed the mark it was about to take over.
	maxAttempts = 8
)

// validateID checks a graph id before it becomes a key or a file name.
func validateID(id string) error { return types.ValidateID(id) }

// markKey is the key or file name of the mark for id.
func markKey(id string) string { return id + markSuffix }

// errInProgress says a live mark exists for id.
// errNoMark is Refresh's error when there is no in-progress mark to extend.
func errNoMark(id string) error {
	return fmt.Errorf("graph %s has no in-progress mark: %w", id, types.ErrNotFound)
}

func errInProgress(id string) error { return fmt.Errorf("graph %s: %w", id, types.ErrInProgress) }

// clock returns now, or time.Now when now is nil.
func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}

// failureRecord is the stored form of a failed mark.
type failureRecord struct {
	State  string    `json:"state"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Owner  string    `json:"owner,omitempty"`
}

// newToken returns a fresh owner token: 26 random base32 characters.
func newToken() string { return rand.Text() }

// errNotOwner says token does not own the mark of id.
func errNotOwner(id string) error {
	return fmt.Errorf("graph %s: %w", id, types.ErrNotOwner)
}

// stored is a mark as read, with its owner.
type stored struct {
	types.Mark
	owner string
}

// takeable reports whether a Mark (claim nil) or a Claim with *claim may
// replace cur, a mark read with the timeout applied: any mark that is not
// live, and a live one whose owner is the claimer.
func takeable(cur stored, claim *string) bool {
	return cur.State != types.MarkInProgress || (claim != nil && cur.owner == *claim)
}

// owns reports whether token may clear or fail cur, a mark read without
// expiry: no (readable) mark, or a mark token owns.
func owns(cur stored, token string) bool {
	return cur.State == types.MarkNone || cur.owner == token
}

// encodeInProgress is the body of an in-progress mark set at t, as the seed
// wrote it.
func encodeInProgress(t time.Time) []byte {
	return []byte(t.UTC().Format(time.RFC3339Nano))
}

// encodeOwned is the body of an in-progress mark set at t by owner, with the
// owner on a second line; a mark without an owner is just the timestamp.
func encodeOwned(t time.Time, owner string) []byte {
	b := encodeInProgress(t)
	if owner == "" {
		return b
	}
	return append(append(b, '\n'), owner...)
}

// encodeFailed is the body of a failure record.
func encodeFailed(at time.Time, owner, reason string) ([]byte, error) {
	b, err := json.Marshal(failureRecord{State: stateFailed, At: at.UTC(), Reason: cleanReason(reason), Owner: owner})
	if err != nil {
		return nil, fmt.Errorf("encode failure record: %w", err)
	}
	return b, nil
}

// cleanReason makes reason valid UTF-8 no longer than maxReasonLength bytes.
func cleanReason(reason string) string {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if len(reason) <= maxReasonLength {
		return reason
	}
	cut := maxReasonLength
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// decode reads a stored mark as of now. A mark whose in-progress timestamp
// is timeout or more in the past, or a body that is neither a timestamp nor
// a failure record, reads as MarkNone: it holds nothing up and Mark replaces
// it. A non-positive timeout means in-progress marks never expire. The
// owner of an expired mark is kept: it may still refresh its own mark.
func decode(body []byte, now time.Time, timeout time.Duration) stored {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var rec failureRecord
		if err := json.Unmarshal(body, &rec); err != nil || rec.State != stateFailed {
			return stored{Mark: types.Mark{State: types.MarkNone}}
		}
		return stored{Mark: types.Mark{State: types.MarkFailed, Since: rec.At, Reason: rec.Reason}, owner: rec.Owner}
	}
	stamp, owner, _ := bytes.Cut(body, []byte("\n"))
	since, err := time.Parse(time.RFC3339Nano, string(bytes.TrimSpace(stamp)))
	if err != nil {
		return stored{Mark: types.Mark{State: types.MarkNone}}
	}
	return stored{Mark: inProgressAt(since, now, timeout), owner: string(bytes.TrimSpace(owner))}
}

// inProgressAt is the state of an in-progress mark set at since, as of now.
func inProgressAt(since, now time.Time, timeout time.Duration) types.Mark {
	if timeout > 0 && !now.Before(since.Add(timeout)) {
		return types.Mark{State: types.MarkNone}
	}
	return types.Mark{State: types.MarkInProgress, Since: since}
}
