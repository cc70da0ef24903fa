package runtime

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSafeTag: the bytes DogStatsD gives a meaning never pass, and a tag is
// bounded in length.
func TestSafeTag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"method:GET":             "method:GET",
		"method:X|#injected":     "method:X__injected",
		"a:b,c:d":                "a:b_c:d",
		"line:one\ntwo.metric:1": "line:one_two.metric:1",
		"space: ü":               "space:___",
		strings.Repeat("x", 300): strings.Repeat("x", 200),
	} {
		require.Equal(t, want, SafeTag(in), "%q", in)
	}
}

// TestDatadogStatsSanitisesTags: a tag holding DogStatsD syntax reaches a
// real listener as one tag of the same metric.
func TestDatadogStatsSanitisesTags(t *testing.T) {
	t.Parallel()
	sink := newUDPSink(t)
	s, err := NewStats(&Config{
		StatsOutput: StatsOutputDatadog, DatadogAddress: sink.addr(),
		DatadogPacketSize: 1432, DatadogFlushInterval: 10 * time.Second,
	})
	require.NoError(t, err)
	s.Count("grapherd.req", 1, "method:X|#evil:1,other:2\nfake.metric:1|c")
	require.NoError(t, s.Close())
	lines, _ := sink.collect(5*time.Second, "grapherd.req:")
	require.Contains(t, lines, "grapherd.req:1|c|#method:X__evil:1_other:2_fake.metric:1_c")
	for _, l := range lines {
		require.False(t, strings.HasPrefix(l, "fake.metric"), "no metric was injected: %q", l)
	}
}
