package main

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseOptions(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"-engines", "sqs", "-workers", "1,3", "-jobs", "20"})
	require.NoError(t, err)
	require.Equal(t, []string{"sqs"}, o.engines)
	require.Equal(t, []int{1, 3}, o.workers)
	require.Equal(t, 20, o.jobs)
	for _, bad := range [][]string{
		{"-engines", "kafka"}, {"-workers", "0"}, {"-workers", "x"}, {"-jobs", "0"}, {"-jobs", "601"},
	} {
		_, err := parseOptions(bad)
		require.Error(t, err, bad)
	}
}

func TestWindowsAreDistinctAndInTheSampleDay(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := range 600 {
		q, err := url.ParseQuery(windowQuery(i))
		require.NoError(t, err)
		start, err := time.Parse(time.RFC3339, q.Get("start"))
		require.NoError(t, err)
		stop, err := time.Parse(time.RFC3339, q.Get("stop"))
		require.NoError(t, err)
		require.Equal(t, 15*time.Minute, stop.Sub(start))
		require.Equal(t, 1, stop.Day())
		require.False(t, seen[q.Encode()], "window %d repeats", i)
		seen[q.Encode()] = true
	}
}
