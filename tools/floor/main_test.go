package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFloorWritesTheGraphsSize writes exactly the bytes asked for, spread
// over the lines, whatever the remainder.
func TestFloorWritesTheGraphsSize(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n", 1000)
	for _, total := range []int64{0, 999, 1000, 401319, 4 << 20} {
		var out bytes.Buffer
		require.NoError(t, floor(strings.NewReader(in), &out, total, 1000))
		require.Equal(t, total, int64(out.Len()), "total %d", total)
	}
}

func TestRunRejectsArguments(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	require.Error(t, run(nil, &bytes.Buffer{}, &stderr))
	require.Error(t, run([]string{"a", "b"}, &bytes.Buffer{}, &stderr))
}

func TestSummaryTakesTheStartsAway(t *testing.T) {
	t.Parallel()
	got := summary(170*time.Millisecond, 42*time.Millisecond, 25*time.Millisecond, 5*time.Millisecond, 7, 401319033)
	require.Equal(t, "convert: 0.170 s, floor: 0.042 s, ratio 4.0x (best of 7, 401319033 graph bytes to /dev/null)\n"+
		"starting and exiting alone: convert 0.025 s, floor 0.005 s; ratio of the rest 3.9x\n", got)
	got = summary(30*time.Millisecond, 6*time.Millisecond, 28*time.Millisecond, 6*time.Millisecond, 7, 10)
	require.Contains(t, got, "ratio of the rest none to compare\n")
}
