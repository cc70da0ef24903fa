package flowlog

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func flow(src, dst string, srcPort, dstPort int, action string, packets, bytes, start, end int64) Record {
	return Record{
		Version: 2, AccountID: "123", InterfaceID: "eni-1",
		SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst),
		SrcPort: srcPort, DstPort: dstPort, Protocol: 6,
		Packets: packets, Bytes: bytes, Start: start, End: end,
		Action: action, LogStatus: "OK",
	}
}

func TestCompactor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []Record
		want []Record
	}{
		{
			name: "ephemeral source port zeroed, flows merged, sums, earliest start and latest end",
			in: []Record{
				flow("10.0.0.1", "10.0.0.2", 50000, 443, "ACCEPT", 1, 100, 20, 30),
				flow("10.0.0.1", "10.0.0.2", 50001, 443, "ACCEPT", 2, 200, 10, 25),
				flow("10.0.0.1", "10.0.0.2", 50002, 443, "ACCEPT", 3, 300, 15, 40),
			},
			want: []Record{flow("10.0.0.1", "10.0.0.2", 0, 443, "ACCEPT", 6, 600, 10, 40)},
		},
		{
			name: "ephemeral destination port zeroed for replies",
			in: []Record{
				flow("10.0.0.2", "10.0.0.1", 443, 50000, "ACCEPT", 1, 10, 5, 6),
				flow("10.0.0.2", "10.0.0.1", 443, 50001, "ACCEPT", 1, 10, 7, 8),
			},
			want: []Record{flow("10.0.0.2", "10.0.0.1", 443, 0, "ACCEPT", 2, 20, 5, 8)},
		},
		{
			name: "equal ports: source zeroed",
			in:   []Record{flow("10.0.0.1", "10.0.0.2", 53, 53, "ACCEPT", 1, 1, 1, 1)},
			want: []Record{flow("10.0.0.1", "10.0.0.2", 0, 53, "ACCEPT", 1, 1, 1, 1)},
		},
		{
			name: "action, direction, service port, protocol, account and interface keep flows apart",
			in: []Record{
				flow("10.0.0.1", "10.0.0.2", 50000, 443, "ACCEPT", 1, 1, 1, 1),
				flow("10.0.0.1", "10.0.0.2", 50000, 443, "REJECT", 1, 1, 1, 1),
				flow("10.0.0.2", "10.0.0.1", 50000, 443, "ACCEPT", 1, 1, 1, 1),
				flow("10.0.0.1", "10.0.0.2", 50000, 80, "ACCEPT", 1, 1, 1, 1),
				with(func(r *Record) { *r = flow("10.0.0.1", "10.0.0.2", 50000, 443, "ACCEPT", 1, 1, 1, 1); r.Protocol = 17 }),
				with(func(r *Record) {
					*r = flow("10.0.0.1", "10.0.0.2", 50000, 443, "ACCEPT", 1, 1, 1, 1)
					r.AccountID = "456"
				}),
				with(func(r *Record) {
					*r = flow("10.0.0.1", "10.0.0.2", 50000, 443, "ACCEPT", 1, 1, 1, 1)
					r.InterfaceID = "eni-2"
				}),
				flow("::ffff:10.0.0.1", "10.0.0.2", 50000, 443, "ACCEPT", 1, 1, 1, 1),
			},
			want: []Record{
				flow("10.0.0.1", "10.0.0.2", 0, 80, "ACCEPT", 1, 1, 1, 1),
				flow("10.0.0.1", "10.0.0.2", 0, 443, "ACCEPT", 1, 1, 1, 1),
				flow("10.0.0.1", "10.0.0.2", 0, 443, "REJECT", 1, 1, 1, 1),
				with(func(r *Record) { *r = flow("10.0.0.1", "10.0.0.2", 0, 443, "ACCEPT", 1, 1, 1, 1); r.Protocol = 17 }),
				flow("10.0.0.2", "10.0.0.1", 0, 443, "ACCEPT", 1, 1, 1, 1),
				flow("::ffff:10.0.0.1", "10.0.0.2", 0, 443, "ACCEPT", 1, 1, 1, 1),
				with(func(r *Record) {
					*r = flow("10.0.0.1", "10.0.0.2", 0, 443, "ACCEPT", 1, 1, 1, 1)
					r.InterfaceID = "eni-2"
				}),
				with(func(r *Record) { *r = flow("10.0.0.1", "10.0.0.2", 0, 443, "ACCEPT", 1, 1, 1, 1); r.AccountID = "456" }),
			},
		},
		{
			name: "sorted by start first",
			in: []Record{
				flow("10.0.0.9", "10.0.0.2", 40000, 2, "ACCEPT", 1, 1, 1, 9),
				flow("10.0.0.1", "10.0.0.2", 40000, 2, "ACCEPT", 1, 1, 5, 6),
				flow("10.0.0.5", "10.0.0.2", 40000, 2, "ACCEPT", 1, 1, 1, 2),
			},
			want: []Record{
				flow("10.0.0.5", "10.0.0.2", 0, 2, "ACCEPT", 1, 1, 1, 2),
				flow("10.0.0.9", "10.0.0.2", 0, 2, "ACCEPT", 1, 1, 1, 9),
				flow("10.0.0.1", "10.0.0.2", 0, 2, "ACCEPT", 1, 1, 5, 6),
			},
		},
		{
			name: "sums saturate instead of overflowing",
			in: []Record{
				flow("10.0.0.1", "10.0.0.2", 40000, 2, "ACCEPT", maxInt64, maxInt64-1, 1, 1),
				flow("10.0.0.1", "10.0.0.2", 40000, 2, "ACCEPT", 1, 5, 1, 1),
			},
			want: []Record{flow("10.0.0.1", "10.0.0.2", 0, 2, "ACCEPT", maxInt64, maxInt64, 1, 1)},
		},
		{
			name: "empty strings merge with missing",
			in: []Record{
				with(func(r *Record) { *r = flow("10.0.0.1", "10.0.0.2", 40000, 2, "", 1, 1, 1, 1); r.AccountID = "" }),
				with(func(r *Record) { *r = flow("10.0.0.1", "10.0.0.2", 40000, 2, "-", 1, 1, 1, 1); r.AccountID = "-" }),
			},
			want: []Record{with(func(r *Record) { *r = flow("10.0.0.1", "10.0.0.2", 0, 2, "-", 2, 2, 1, 1); r.AccountID = "-" })},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewCompactor()
			for i := range tt.in {
				c.Add(&tt.in[i])
			}
			require.Equal(t, len(tt.want), c.Len())
			require.Equal(t, tt.want, records(c))

			var want bytes.Buffer
			for i := range tt.want {
				want.Write(AppendDigestLine(nil, &tt.want[i]))
			}
			var got bytes.Buffer
			n, err := c.WriteTo(&got)
			require.NoError(t, err)
			require.Equal(t, want.String(), got.String())
			require.EqualValues(t, got.Len(), n)
		})
	}
}

// randomRecords returns n records over a few flows, in a random order.
func randomRecords(seed uint64, n int) []Record {
	rng := rand.New(rand.NewPCG(seed, seed))
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.1.11.1", "10.11.1.1", "2001:db8::10", "2001:db8:1::"}
	recs := make([]Record, n)
	for i := range recs {
		action := "ACCEPT"
		if rng.IntN(3) == 0 {
			action = "REJECT"
		}
		start := int64(1000 + rng.IntN(100))
		recs[i] = flow(addrs[rng.IntN(len(addrs))], addrs[rng.IntN(len(addrs))],
			32768+rng.IntN(1000), []int{22, 80, 443}[rng.IntN(3)], action,
			int64(rng.IntN(10)), int64(rng.IntN(1000)), start, start+int64(rng.IntN(60)))
	}
	return recs
}

func TestCompactorDeterministicAndConcurrent(t *testing.T) {
	t.Parallel()
	recs := randomRecords(1, 20000)

	sequential := NewCompactor()
	for i := range recs {
		sequential.Add(&recs[i])
	}
	var want bytes.Buffer
	_, err := sequential.WriteTo(&want)
	require.NoError(t, err)

	// Same records, shuffled and added from several goroutines: same digest.
	shuffled := append([]Record(nil), recs...)
	rand.New(rand.NewPCG(2, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	concurrent := NewCompactor()
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(shuffled); i += workers {
				concurrent.Add(&shuffled[i])
				if i%1000 == 0 {
					_ = concurrent.Len()
				}
			}
		})
	}
	wg.Wait()
	var got bytes.Buffer
	_, err = concurrent.WriteTo(&got)
	require.NoError(t, err)
	require.Equal(t, want.String(), got.String())

	// The totals are conserved and the digest reads back as records.
	var packets, bytesSum int64
	for _, r := range recs {
		packets += r.Packets
		bytesSum += r.Bytes
	}
	back, st, err := readAll(t, strings.NewReader(got.String()))
	require.NoError(t, err)
	require.Zero(t, st.Skipped)
	require.Len(t, back, concurrent.Len())
	for _, r := range back {
		packets -= r.Packets
		bytesSum -= r.Bytes
		require.True(t, r.SrcPort == 0 || r.DstPort == 0)
	}
	require.Zero(t, packets)
	require.Zero(t, bytesSum)
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestCompactorWriteError(t *testing.T) {
	t.Parallel()
	c := NewCompactor()
	r := v2Record()
	c.Add(&r)
	_, err := c.WriteTo(failWriter{})
	require.ErrorIs(t, err, errWrite)
}

// records returns the merged records in the order WriteTo writes them.
func records(c *Compactor) []Record {
	var recs []Record
	_ = c.Each(func(rec *Record) error {
		recs = append(recs, *rec)
		return nil
	})
	return recs
}

// TestCompactorBound refuses new flows past its bound, naming it, while
// records of flows it holds still merge.
func TestCompactorBound(t *testing.T) {
	t.Parallel()
	c := NewBoundedCompactor(2)
	a, b, d := v2Record(), v2Record(), v2Record()
	b.DstPort = 22
	d.DstPort = 8080
	require.NoError(t, c.Add(&a))
	require.NoError(t, c.Add(&b))
	err := c.Add(&d)
	require.ErrorIs(t, err, ErrTooManyFlows)
	require.Contains(t, err.Error(), "more than 2 distinct flows")
	require.NoError(t, c.Add(&a), "a flow already held still merges")
	require.Equal(t, 2, c.Len())
	var packets []int64
	require.NoError(t, c.Each(func(r *Record) error {
		packets = append(packets, r.Packets)
		return nil
	}))
	require.ElementsMatch(t, []int64{2 * a.Packets, b.Packets}, packets)

	unbounded := NewBoundedCompactor(0)
	for i := range 100 {
		r := v2Record()
		r.DstPort = i
		require.NoError(t, unbounded.Add(&r))
	}
	require.Equal(t, 100, unbounded.Len())
}

// TestCompactorAddAll merges a batch exactly as Add merges each record, and
// stops at the bound.
func TestCompactorAddAll(t *testing.T) {
	t.Parallel()
	recs := randomRecords(3, 5000)
	one, all := NewCompactor(), NewCompactor()
	for i := range recs {
		require.NoError(t, one.Add(&recs[i]))
	}
	require.NoError(t, all.AddAll(recs[:1234]))
	require.NoError(t, all.AddAll(recs[1234:]))
	var want, got bytes.Buffer
	_, err := one.WriteTo(&want)
	require.NoError(t, err)
	_, err = all.WriteTo(&got)
	require.NoError(t, err)
	require.Equal(t, want.String(), got.String())

	bounded := NewBoundedCompactor(3)
	require.ErrorIs(t, bounded.AddAll(recs), ErrTooManyFlows)
	require.Equal(t, 3, bounded.Len())
}
