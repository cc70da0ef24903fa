package flowlogtest

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
)

func TestAddrsDistinct(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		n         int
		ipv6Every int
		wantV6    int
	}{
		{name: "one", n: 1, wantV6: 0},
		{name: "default mix", n: 20000, wantV6: 2000},
		{name: "ipv4 only", n: 5000, ipv6Every: -1, wantV6: 0},
		{name: "all ipv6", n: 3000, ipv6Every: 1, wantV6: 3000},
		{name: "not a power of two", n: 1000003, wantV6: 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addrs := Addrs(tt.n, 42, tt.ipv6Every)
			require.Len(t, addrs, tt.n)
			seen := make(map[netip.Addr]bool, len(addrs))
			v6 := 0
			for _, a := range addrs {
				require.True(t, a.IsValid())
				require.False(t, seen[a], "duplicate %v", a)
				seen[a] = true
				if a.Is6() {
					v6++
				}
			}
			require.Equal(t, tt.wantV6, v6)
		})
	}
}

func TestWriteDigest(t *testing.T) {
	t.Parallel()
	spec := Spec{Lines: 5000, Addrs: 300, Seed: 9}
	var a, b bytes.Buffer
	n, err := WriteDigest(&a, spec)
	require.NoError(t, err)
	require.EqualValues(t, a.Len(), n)
	_, err = WriteDigest(&b, spec)
	require.NoError(t, err)
	require.Equal(t, a.String(), b.String(), "same spec, same bytes")

	var c bytes.Buffer
	_, err = WriteDigest(&c, Spec{Lines: 5000, Addrs: 300, Seed: 10})
	require.NoError(t, err)
	require.NotEqual(t, a.String(), c.String(), "another seed, another digest")

	r, err := flowlog.NewReader(&a)
	require.NoError(t, err)
	addrs := map[netip.Addr]bool{}
	actions := map[string]int{}
	families := map[bool]int{}
	for r.Next() {
		rec := r.Record()
		addrs[rec.SrcAddr], addrs[rec.DstAddr] = true, true
		actions[rec.Action]++
		families[rec.SrcAddr.Is4()]++
	}
	require.NoError(t, r.Err())
	require.Equal(t, flowlog.Stats{Lines: 5000, Used: 5000}, r.Stats())
	require.Len(t, addrs, 300, "5000 lines over 300 addresses touch them all")
	require.Greater(t, actions["ACCEPT"], actions["REJECT"])
	require.Positive(t, actions["REJECT"])
	require.Positive(t, families[false], "some IPv6")
	require.Greater(t, families[true], families[false])
}
