package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.NoError(t, run([]string{"-lines", "10", "-addrs", "4", "-seed", "3"}, &stdout, &stderr))
	require.Equal(t, 10, strings.Count(stdout.String(), "\n"))
	require.Contains(t, stderr.String(), "10 lines, 4 addresses")

	out := filepath.Join(t.TempDir(), "d.log")
	require.NoError(t, run([]string{"-lines", "10", "-addrs", "4", "-seed", "3", "-o", out}, &stdout, &stderr))
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, stdout.String(), string(data))

	for _, bad := range [][]string{{"-addrs", "0"}, {"-lines", "-1"}, {"extra"}, {"-nope"}} {
		require.Error(t, run(bad, &stdout, &stderr), "%v", bad)
	}
}
