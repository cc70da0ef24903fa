package marker_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// benchmarkCycle runs the marks of one job (mark, claim, refresh, clear)
// on many windows at once, as a busy worker pool does.
func benchmarkCycle(b *testing.B, m types.Marker) {
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := uuid.NewString()
		for pb.Next() {
			api, err := m.Mark(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			token, err := m.Claim(ctx, id, api)
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Refresh(ctx, id, token); err != nil {
				b.Fatal(err)
			}
			if err := m.Unmark(ctx, id, token); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFileCycle(b *testing.B) {
	benchmarkCycle(b, &marker.File{Dir: b.TempDir(), Timeout: time.Minute})
}

func BenchmarkMemoryCycle(b *testing.B) {
	benchmarkCycle(b, &marker.Memory{Timeout: time.Minute})
}
