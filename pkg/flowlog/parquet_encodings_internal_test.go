package flowlog

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/stretchr/testify/require"
)

// TestDeltaDecoderMatchesEncoder decodes what parquet-go's
// DELTA_BINARY_PACKED encoder makes of runs of integers that wrap, jump
// and repeat, and finds where they end.
func TestDeltaDecoderMatchesEncoder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	var enc delta.BinaryPackedEncoding
	for _, n := range []int{0, 1, 2, 31, 32, 33, 127, 128, 129, 1000, 5000} {
		i64 := make([]int64, n)
		i32 := make([]int32, n)
		for i := range i64 {
			switch i % 5 {
			case 0:
				i64[i] = rng.Int64()
			case 1:
				i64[i] = math.MinInt64 + int64(i)
			case 2:
				i64[i] = math.MaxInt64 - int64(rng.IntN(3))
			default:
				i64[i] = int64(rng.IntN(70000))
			}
			i32[i] = int32(i64[i])
		}
		b64, err := enc.EncodeInt64(nil, i64)
		require.NoError(t, err)
		b32, err := enc.EncodeInt32(nil, i32)
		require.NoError(t, err)
		for _, tc := range []struct {
			data []byte
			want func(int) int64
			wrap func(uint64) int64
		}{
			{b64, func(i int) int64 { return i64[i] }, func(v uint64) int64 { return int64(v) }},
			{b32, func(i int) int64 { return int64(i32[i]) }, func(v uint64) int64 { return int64(int32(v)) }},
		} {
			// What follows the values must be found where it starts.
			data := append(append([]byte(nil), tc.data...), 0xAB)
			var d deltaDecoder
			require.NoError(t, d.reset(data, uint64(n)))
			end, err := d.end()
			require.NoError(t, err)
			require.Equal(t, len(tc.data), end, "%d values", n)
			for i := range n {
				v, err := d.next()
				require.NoError(t, err)
				require.Equal(t, tc.want(i), tc.wrap(v), "value %d of %d", i, n)
			}
			_, err = d.next()
			require.ErrorIs(t, err, errParquetData, "a value past the count")
			if n > 0 {
				require.ErrorIs(t, d.reset(data, uint64(n-1)), errParquetData, "more values than the page holds")
			}
			for cut := 0; cut < len(tc.data); cut += 1 + len(tc.data)/64 {
				if d.reset(tc.data[:cut], uint64(n)) != nil {
					continue
				}
				_, err := d.end()
				require.ErrorIs(t, err, errParquetData, "%d values cut to %d bytes of %d", n, cut, len(tc.data))
			}
		}
	}
}

// TestRLEDecoderMatchesEncoder decodes what parquet-go's RLE/bit-packing
// hybrid encoder makes of levels and of dictionary indexes of every
// width, runs and scatter alike, and fails on a run cut short.
func TestRLEDecoderMatchesEncoder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for w := uint(1); w <= 32; w++ {
		enc := rle.Encoding{BitWidth: int(w)}
		vals := make([]int32, 3000)
		for i := range vals {
			if i/100%2 == 0 {
				vals[i] = int32(i / 100) // runs
			} else {
				vals[i] = int32(rng.Uint64() & (1<<w - 1))
			}
			vals[i] &= int32(uint32(1<<w - 1))
		}
		data, err := enc.EncodeInt32(nil, vals)
		require.NoError(t, err)
		var d rleDecoder
		d.reset(data, w)
		for i, want := range vals {
			got, err := d.next()
			require.NoError(t, err)
			require.Equal(t, uint64(uint32(want)), got, "width %d value %d", w, i)
		}
		d.reset(data[:len(data)/2], w)
		var err2 error
		for range vals {
			if _, err2 = d.next(); err2 != nil {
				break
			}
		}
		require.ErrorIs(t, err2, errParquetData, "width %d cut in half", w)
	}
	// A run of 2^62 values costs nothing: only what is asked for is read.
	var d rleDecoder
	d.reset([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 1}, 1)
	for range 1000 {
		v, err := d.next()
		require.NoError(t, err)
		require.Equal(t, uint64(1), v)
	}
}
