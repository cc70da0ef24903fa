package v1

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// TestParseTimeStrictRFC3339: what RFC 3339 allows is taken, in UTC; what
// Go's parser takes beyond it, and times whose UTC year cannot be written
// back, are refused with the reason.
func TestParseTimeStrictRFC3339(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"2026-11-01T10:00:00Z":                   "2026-11-01T10:00:00Z",
		"2026-11-01T10:00:00.5Z":                 "2026-11-01T10:00:00.5Z",
		"2026-11-01T10:00:00+23:59":              "2026-10-31T10:01:00Z",
		"2026-11-01T10:00:00-00:00":              "2026-11-01T10:00:00Z",
		"0001-01-01T00:00:00Z":                   "0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999Z":         "9999-12-31T23:59:59.999999999Z",
		"9999-12-31T23:00:00+01:00":              "9999-12-31T22:00:00Z",
		"0001-01-01T10:00:00+09:59":              "0001-01-01T00:01:00Z",
		"2026-11-01T10:00:00.123456789123+00:00": "2026-11-01T10:00:00.123456789Z",
	} {
		got, err := ParseTime(in)
		require.NoError(t, err, in)
		require.Equal(t, time.UTC, got.Location())
		require.Equal(t, want, got.Format(time.RFC3339Nano), in)
	}
	for in, reason := range map[string]string{
		"9999-12-31T23:00:00-23:59": "year 10000 in UTC",
		"0001-01-01T00:00:00+01:00": "year 0 in UTC",
		"0000-01-01T00:00:00Z":      "year 0 in UTC",
		"2026-11-01T10:00:00+00:60": "offset +00:60",
		"2026-11-01T10:00:00+24:00": "offset +24:00",
		"2026-11-01T10:00:00-99:99": "offset -99:99",
		"2026-11-01T10:00:00,5Z":    "comma before the fraction",
		"2026-11-01T10:00:00.Z":     "not an RFC 3339 time",
		"2026-11-01T10:00:00":       "not an RFC 3339 time",
		"2026-11-01T10:00:00+0100":  "not an RFC 3339 time",
		"2026-11-01 10:00:00Z":      "not an RFC 3339 time",
		"2026-11-01T24:00:00Z":      "not an RFC 3339 time",
		"2026-02-30T10:00:00Z":      "not an RFC 3339 time",
		"+2026-11-01T10:00:00Z":     "not an RFC 3339 time",
		"":                          "not an RFC 3339 time",
	} {
		_, err := ParseTime(in)
		require.ErrorIs(t, err, types.ErrInvalidInput, in)
		require.Contains(t, err.Error(), reason, in)
		require.Contains(t, err.Error(), `"`+in+`"`, "the input is quoted")
	}
}

// TestParseWindowOutOfRange: a window whose start or stop leaves the
// representable years is a clear 400 from POST /, never a 202 whose
// Location GET then refuses.
func TestParseWindowOutOfRange(t *testing.T) {
	t.Parallel()
	q := url.Values{"start": {"9999-12-31T23:00:00-23:59"}, "stop": {"9999-12-31T23:30:00-23:59"}}.Encode()
	// Nothing behind the handler is reached: the window is refused first.
	g := &Graph{}
	rec := httptest.NewRecorder()
	g.Post(rec, httptest.NewRequest(http.MethodPost, "/?"+q, nil))
	require.Equal(t, http.StatusBadRequest, rec.Code)
	var body struct{ Message string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Contains(t, body.Message, `query parameter "start"`)
	require.Contains(t, body.Message, "year 10000 in UTC")
}

// TestParseWindowTooLongDoesNotOverflow: a window of thousands of years is
// reported by its real length, not by a saturated Duration.
func TestParseWindowTooLongDoesNotOverflow(t *testing.T) {
	t.Parallel()
	_, _, err := ParseWindow("start=0001-01-01T00:00:00Z&stop=9999-12-31T23:59:00Z", 744*time.Hour)
	require.ErrorIs(t, err, types.ErrInvalidInput)
	require.Contains(t, err.Error(), "window of 3652058d23h59m is longer than the limit of 744h0m0s")
	require.NotContains(t, err.Error(), "2562047h")

	_, _, err = ParseWindow("start=2026-11-01T10:00:00Z&stop=2026-11-01T11:30:00Z", time.Hour)
	require.ErrorContains(t, err, "window of 1h30m0s is longer than the limit of 1h0m0s")
	_, _, err = ParseWindow("start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z", time.Hour)
	require.NoError(t, err, "a window of exactly the limit is taken")
}

// TestDecodeJobRefusesWhatParseTimeRefuses: the worker's body is read with
// the same rules as the API's window.
func TestDecodeJobRefusesWhatParseTimeRefuses(t *testing.T) {
	t.Parallel()
	for _, start := range []string{"9999-12-31T23:00:00-23:59", "2026-11-01T10:00:00+00:60", "2026-11-01T10:00:00,5Z"} {
		body := `{"id":"8e0b8d9c-6b0b-5b0e-9b8a-000000000001","start":"` + start + `","stop":"2026-11-01T11:00:00Z"}`
		_, err := DecodeJob(strings.NewReader(body))
		require.ErrorIs(t, err, types.ErrInvalidInput, start)
		require.Contains(t, err.Error(), "job start", start)
	}
}
