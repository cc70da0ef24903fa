package v1

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
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
// (see ParseTime), truncated to the minute and returned in UTC. Start may
// not be after stop, and the window may not be longer than maxWindow when
// maxWindow is positive. Errors wrap types.ErrInvalidInput.
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
	// start.Add cannot overflow for years 1 to 9999 and a maxWindow that
	// fits a Duration, where stop.Sub saturates for a window of more than
	// 292 years.
	if maxWindow > 0 && stop.After(start.Add(maxWindow)) {
		return start, stop, invalidf("window of %s is longer than the limit of %s", windowLength(start, stop), maxWindow)
	}
	return start, stop, nil
}

// windowLength writes stop-start as a Duration when it fits one, else (more
// than 292 years) as days, hours and minutes counted in whole seconds.
func windowLength(start, stop time.Time) string {
	if d := stop.Sub(start); d < time.Duration(math.MaxInt64) {
		return d.String()
	}
	return span(stop.Unix() - start.Unix())
}

// span writes a number of seconds as days, hours, minutes and seconds
// ("3652058d23h59m"), leaving out the parts that are zero.
func span(seconds int64) string {
	if seconds <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		secs int64
	}{{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}} {
		if n := seconds / u.secs; n > 0 {
			b.WriteString(strconv.FormatInt(n, 10) + u.unit)
			seconds -= n * u.secs
		}
	}
	return b.String()
}

func parseTime(q url.Values, name string) (time.Time, error) {
	values, ok := q[name]
	switch {
	case !ok || len(values) == 0 || values[0] == "":
		return time.Time{}, invalidf("query parameter %q is required (an RFC 3339 time such as 2026-11-01T10:00:00Z)", name)
	case len(values) > 1:
		return time.Time{}, invalidf("query parameter %q is given %d times", name, len(values))
	}
	t, terr := parseRFC3339(values[0])
	if terr != nil {
		return time.Time{}, invalidf("query parameter %q is %s", name, terr.text())
	}
	return t.Truncate(time.Minute), nil
}

// The years a time may fall in, in UTC: those RFC 3339 and
// time.Time.MarshalJSON can write, so that a job queued for the window can
// always be encoded and its Location fetched.
const (
	minYear = 1
	maxYear = 9999
)

// timeError says why a string is not a time the service takes. It wraps
// types.ErrInvalidInput.
type timeError struct {
	input, reason string
}

// text is the quoted input and the reason, to follow "... is ".
func (e *timeError) text() string { return quoteInput(e.input) + ", " + e.reason }
func (e *timeError) Error() string {
	return types.ErrInvalidInput.Error() + ": " + quoteInput(e.input) + ": " + e.reason
}
func (e *timeError) Unwrap() error { return types.ErrInvalidInput }

// notRFC3339 is the reason given for a string that is no RFC 3339 time.
const notRFC3339 = "not an RFC 3339 time such as 2026-11-01T10:00:00Z"

// ParseTime reads s as an RFC 3339 date-time (fractional seconds allowed)
// and returns it in UTC. It refuses what RFC 3339 does not allow although
// Go's time.Parse takes it (an offset such as +00:60 or +24:00, a comma
// before the fraction of a second), and a time whose UTC year falls outside
// 0001 to 9999, which could be parsed but neither written back as RFC 3339
// nor encoded as a job. The API's window and the worker's job body both read
// times with it. Errors wrap types.ErrInvalidInput and quote s.
func ParseTime(s string) (time.Time, error) {
	t, terr := parseRFC3339(s)
	if terr != nil {
		return time.Time{}, terr
	}
	return t, nil
}

// parseRFC3339 is ParseTime with its own error type, for callers that word
// the message themselves.
func parseRFC3339(s string) (time.Time, *timeError) {
	if reason := checkRFC3339(s); reason != "" {
		return time.Time{}, &timeError{input: s, reason: reason}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// A field out of range: a 13th month, a 31st of June, hour 24.
		return time.Time{}, &timeError{input: s, reason: notRFC3339}
	}
	t = t.UTC()
	if y := t.Year(); y < minYear || y > maxYear {
		return time.Time{}, &timeError{input: s, reason: fmt.Sprintf("in the year %d in UTC, and times must fall in the years %04d to %d in UTC", y, minYear, maxYear)}
	}
	return t, nil
}

// checkRFC3339 checks the syntax of an RFC 3339 date-time,
// YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm), with an offset of at
// most 23:59, and returns why s does not follow it, or "" when it does. The
// ranges of the date and time fields are left to time.Parse.
func checkRFC3339(s string) string {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) <= len(layout) {
		return notRFC3339
	}
	for i := 0; i < len(layout); i++ {
		if layout[i] == 'd' && !isDigit(s[i]) || layout[i] != 'd' && s[i] != layout[i] {
			return notRFC3339
		}
	}
	rest := s[len(layout):]
	switch rest[0] {
	case ',':
		return "with a comma before the fraction of a second, where RFC 3339 has a full stop"
	case '.':
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 {
			return notRFC3339
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
		return ""
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && isDigit(rest[1]) && isDigit(rest[2]) &&
		rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5]):
		hours, minutes := (rest[1]-'0')*10+rest[2]-'0', (rest[4]-'0')*10+rest[5]-'0'
		if hours > 23 || minutes > 59 {
			return "with the offset " + rest + ", and RFC 3339 offsets are at most 23:59"
		}
		return ""
	}
	return notRFC3339
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

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
