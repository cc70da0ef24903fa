package digester

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestBuiltinPing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, (&Builtin{Source: Dir{Path: dir}}).Ping(ctx))
	require.ErrorContains(t, (&Builtin{Source: Dir{Path: filepath.Join(dir, "missing")}}).Ping(ctx), "flow log folder")
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.ErrorContains(t, (&Builtin{Source: Dir{Path: file}}).Ping(ctx), "is not a folder")
	err := (&Builtin{}).Ping(ctx)
	require.ErrorIs(t, err, types.ErrNoSource)
	require.ErrorContains(t, err, "FLOW_LOGS_DIR")
}
