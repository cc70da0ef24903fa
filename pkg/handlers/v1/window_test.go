package v1

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestComputeIDMatchesOriginalService(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	stop := time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)
	// The original service named graphs by the UUIDv5 of time.String() of
	// start then stop, in the namespace UUIDv5(nil, "graph").
	ns := uuid.NewSHA1(uuid.Nil, []byte("graph"))
	want := uuid.NewSHA1(ns, []byte("2026-11-01 10:00:00 +0000 UTC2026-11-01 11:00:00 +0000 UTC")).String()
	require.Equal(t, want, ComputeID(start, stop))

	// The same instants written with another offset name the same graph.
	plus2 := time.FixedZone("", 2*3600)
	require.Equal(t, want, ComputeID(start.In(plus2), stop.In(plus2)))
	require.NotEqual(t, want, ComputeID(stop, start))
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v.UTC()
	}
	tests := []struct {
		name      string
		query     string
		max       time.Duration
		start     time.Time
		stop      time.Time
		errSubstr string
	}{
		{name: "utc", query: "start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z", start: at("2026-11-01T10:00:00Z"), stop: at("2026-11-01T11:00:00Z")},
		{name: "truncated to the minute with nanoseconds", query: "start=2026-11-01T10:00:59.999999999Z&stop=2026-11-01T11:00:30Z", start: at("2026-11-01T10:00:00Z"), stop: at("2026-11-01T11:00:00Z")},
		{name: "offset becomes utc", query: "start=2026-11-01T12:00:00%2B02:00&stop=2026-11-01T13:00:00%2B02:00", start: at("2026-11-01T10:00:00Z"), stop: at("2026-11-01T11:00:00Z")},
		{name: "equal start and stop", query: "start=2026-11-01T10:00:00Z&stop=2026-11-01T10:00:00Z", start: at("2026-11-01T10:00:00Z"), stop: at("2026-11-01T10:00:00Z")},
		{name: "missing start", query: "stop=2026-11-01T11:00:00Z", errSubstr: `"start" is required`},
		{name: "missing stop", query: "start=2026-11-01T11:00:00Z", errSubstr: `"stop" is required`},
		{name: "empty query", query: "", errSubstr: `"start" is required`},
		{name: "not a time", query: "start=yesterday&stop=2026-11-01T11:00:00Z", errSubstr: `"start" is "yesterday", not an RFC 3339 time`},
		{name: "date only", query: "start=2026-11-01&stop=2026-11-02", errSubstr: "not an RFC 3339 time"},
		{name: "start after stop", query: "start=2026-11-01T12:00:00Z&stop=2026-11-01T11:00:00Z", errSubstr: "is after stop"},
		{name: "start after stop once in utc", query: "start=2026-11-01T11:30:00Z&stop=2026-11-01T12:00:00%2B02:00", errSubstr: "is after stop"},
		{name: "repeated", query: "start=2026-11-01T10:00:00Z&start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z", errSubstr: "given 2 times"},
		{name: "bad escaping", query: "start=%zz&stop=x", errSubstr: "not valid URL encoding"},
		{name: "too long", query: "start=" + strings.Repeat("a", MaxQueryBytes), errSubstr: "longer than the limit"},
		{name: "window over limit", query: "start=2026-10-01T00:00:00Z&stop=2026-11-02T00:00:00Z", max: 31 * 24 * time.Hour, errSubstr: "longer than the limit of 744h0m0s"},
		{name: "window at limit", query: "start=2026-10-01T00:00:00Z&stop=2026-11-01T00:00:00Z", max: 31 * 24 * time.Hour, start: at("2026-10-01T00:00:00Z"), stop: at("2026-11-01T00:00:00Z")},
		{name: "control characters quoted", query: "start=" + url.QueryEscape("x\n{\"level\":\"ERROR\"}") + "&stop=x", errSubstr: `"x\n{\"level\":\"ERROR\"}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start, stop, err := ParseWindow(tt.query, tt.max)
			if tt.errSubstr != "" {
				require.ErrorIs(t, err, types.ErrInvalidInput)
				require.Contains(t, err.Error(), tt.errSubstr)
				return
			}
			require.NoError(t, err)
			require.True(t, tt.start.Equal(start), "start %s", start)
			require.True(t, tt.stop.Equal(stop), "stop %s", stop)
			require.Equal(t, time.UTC, start.Location())
		})
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{
		"start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z",
		"start=2026-11-01T10:00:00.5%2B01:00&stop=2026-11-01T11:00:00Z",
		"start=&stop=", "start=%zz", ";;&&==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		start, stop, err := ParseWindow(q, 744*time.Hour)
		if err != nil {
			require.True(t, errors.Is(err, types.ErrInvalidInput), "error %v does not wrap ErrInvalidInput", err)
			require.NotContains(t, err.Error(), "\n", "an error message must stay on one line")
			return
		}
		require.False(t, start.After(stop))
		require.LessOrEqual(t, stop.Sub(start), 744*time.Hour)
		require.Zero(t, start.Second())
		require.Zero(t, stop.Nanosecond())
	})
}

func TestDecodeJob(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	stop := start.Add(time.Hour)
	id := ComputeID(start, stop)
	good, err := EncodeJob(types.Job{ID: id, Start: start, Stop: stop})
	require.NoError(t, err)

	job, err := DecodeJob(strings.NewReader(string(good)))
	require.NoError(t, err)
	require.Equal(t, id, job.ID)
	require.True(t, job.Start.Equal(start) && job.Stop.Equal(stop))

	tests := []struct {
		name, body, errSubstr string
	}{
		{"empty", "", "not a JSON object"},
		{"not json", "id=1", "not a JSON object"},
		{"array", "[]", "not a JSON object"},
		{"trailing data", string(good) + "{}", "data after the JSON object"},
		{"missing id", `{"start":"2026-11-01T10:00:00Z","stop":"2026-11-01T11:00:00Z"}`, "is not a graph id"},
		{"path in id", `{"id":"../../etc/passwd","start":"2026-11-01T10:00:00Z","stop":"2026-11-01T11:00:00Z"}`, "is not a graph id"},
		{"braced uuid", `{"id":"{` + id + `}","start":"2026-11-01T10:00:00Z","stop":"2026-11-01T11:00:00Z"}`, "is not a graph id"},
		{"bad start", `{"id":"` + id + `","start":"now","stop":"2026-11-01T11:00:00Z"}`, "start \"now\" is not an RFC 3339 time"},
		{"bad stop", `{"id":"` + id + `","start":"2026-11-01T10:00:00Z","stop":7}`, "not a JSON object"},
		{"reversed", `{"id":"` + id + `","start":"2026-11-01T11:00:00Z","stop":"2026-11-01T10:00:00Z"}`, "is after stop"},
		{"id of another window", `{"id":"` + id + `","start":"2026-11-01T10:00:00Z","stop":"2026-11-01T12:00:00Z"}`, "is not the id of the window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeJob(strings.NewReader(tt.body))
			require.ErrorIs(t, err, types.ErrInvalidInput)
			require.Contains(t, err.Error(), tt.errSubstr)
		})
	}
}

func FuzzDecodeJob(f *testing.F) {
	f.Add(`{"id":"9a6b1b33-2b0b-5f5b-a0d5-3c2a8f0e1f00","start":"2026-11-01T10:00:00Z","stop":"2026-11-01T11:00:00Z"}`)
	f.Add(`{"id":1}`)
	f.Add(`{}{}`)
	f.Fuzz(func(t *testing.T, body string) {
		job, err := DecodeJob(strings.NewReader(body))
		if err != nil {
			require.ErrorIs(t, err, types.ErrInvalidInput)
			return
		}
		// Whatever is accepted names its own window, so it is a safe key.
		require.Equal(t, ComputeID(job.Start, job.Stop), job.ID)
	})
}
