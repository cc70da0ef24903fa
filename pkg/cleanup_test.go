package grapherd

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStartRemovesCrashLeftovers: the file storage a service builds removes
// the temporary graphs a killed process left, older than the progress
// timeout, before it serves; a younger one (a live write) stays.
func TestStartRemovesCrashLeftovers(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	graphs := filepath.Join(data, "graphs")
	require.NoError(t, os.MkdirAll(graphs, 0o755))
	leftover := filepath.Join(graphs, ".graph-2718.tmp")
	live := filepath.Join(graphs, ".graph-3141.tmp")
	for _, p := range []string{leftover, live} {
		require.NoError(t, os.WriteFile(p, []byte("digraph { partial"), 0o644))
	}
	past := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(leftover, past, past))

	serve(t, &Service{Digester: staticDigest(sampleV2)}, map[string]string{
		"GRAPHERD_DATA_DIR":      data,
		"GRAPH_PROGRESS_TIMEOUT": "30000",
		"RUNTIME_STATS_OUTPUT":   "NULLSTAT",
	})
	require.NoFileExists(t, leftover)
	require.FileExists(t, live)
}
