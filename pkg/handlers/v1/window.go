package v1

import (
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// MaxQueryBytes bounds the raw query string of an API request. A valid window
// needs well under 200 bytes.
const MaxQueryBytes = 1024

// graphNamespace is the UUIDv5 namespace of graph ids, the same as the
// original service's so graphs it stored are found again.
var graphNamespace = uuid.NewSHA1(uuid.Nil, []byte("graph"))

// ComputeID returns the id of the graph for [start, stop): a UUIDv5 over Go's
// time.String of start then stop, taken in UTC so that the same instant
// written with another offset names the same graph.
func ComputeID(start, stop time.Time) string {
	name := start.UTC().String() + stop.UTC().String()
	return uuid.NewSHA1(graphNamespace, []byte(name)).String()
}

// ParseWindow reads the start and stop query parameters: RFC 3339 times
// (fractional seconds allowed), truncated to the minute and returned in UTC.
// Start may not be after stop, and the window may not be longer than
// maxWindow when maxWindow is positive. Errors wrap types.ErrInvalidInput.
func ParseWindow(rawQuery string, maxWindow time.Duration) (start, stop time.Time, err error) {
	if len(rawQuery) > MaxQueryBytes {
		return start, stop, invalidf("query is %d bytes, longer than the limit of %d", len(rawQuery), MaxQueryBytes)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return start, stop, invalidf("query is not valid URL encoding")
	}
	if start, err = parseTime(q, "start"); err != nil {
		return start, stop, err
	}
	if stop, err = parseTime(q, "stop"); err != nil {
		return start, stop, err
	}
	if start.After(stop) {
		return start, stop, invalidf("start %s is after stop %s", start.Format(time.RFC3339), stop.Format(time.RFC3339))
	}
	if maxWindow > 0 && stop.Sub(start) > maxWindow {
		return start, stop, invalidf("window of %s is longer than the limit of %s", stop.Sub(start), maxWindow)
	}
	return start, stop, nil
}

func parseTime(q url.Values, name string) (time.Time, error) {
	values, ok := q[name]
	switch {
	case !ok || len(values) == 0 || values[0] == "":
		return time.Time{}, invalidf("query parameter %q is required (an RFC 3339 time such as 2026-11-01T10:00:00Z)", name)
	case len(values) > 1:
		return time.Time{}, invalidf("query parameter %q is given %d times", name, len(values))
	}
	t, err := time.Parse(time.RFC3339Nano, values[0])
	if err != nil {
		return time.Time{}, invalidf("query parameter %q is %s, not an RFC 3339 time such as 2026-11-01T10:00:00Z", name, quoteInput(values[0]))
	}
	return t.UTC().Truncate(time.Minute), nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", types.ErrInvalidInput, fmt.Sprintf(format, args...))
}

// quoteInput quotes untrusted input for a message, escaping control
// characters and cutting it short so it cannot forge or flood a log line.
func quoteInput(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
