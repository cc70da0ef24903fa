package marker_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker/markertest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	markertest.Run(t, func(t *testing.T, timeout time.Duration, now func() time.Time) types.Marker {
		return &marker.Memory{Timeout: timeout, Now: now}
	})
}

// TestNoTimeout shows that a marker without a timeout keeps marks until they
// are cleared, for every backend.
func TestNoTimeout(t *testing.T) {
	t.Parallel()
	backends := []struct {
		name string
		new  func(t *testing.T, now func() time.Time) types.Marker
	}{
		{"memory", func(t *testing.T, now func() time.Time) types.Marker { return &marker.Memory{Now: now} }},
		{"file", func(t *testing.T, now func() time.Time) types.Marker {
			return &marker.File{Dir: t.TempDir(), Now: now}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			c := markertest.NewClock(time.Now())
			m := b.new(t, c.Now)
			id := uuid.NewString()
			require.NoError(t, second(m.Mark(context.Background(), id)))
			c.Advance(100 * 365 * 24 * time.Hour)
			mark, err := m.Check(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, types.MarkInProgress, mark.State)
			require.ErrorIs(t, second(m.Mark(context.Background(), id)), types.ErrInProgress)
		})
	}
}

// second returns the error of a call that also returns a token.
func second(_ string, err error) error { return err }
