package runtime

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// udpSink is a loopback DogStatsD listener that records every datagram.
type udpSink struct {
	conn    *net.UDPConn
	packets chan string
}

func newUDPSink(t *testing.T) *udpSink {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s := &udpSink{conn: conn, packets: make(chan string, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			s.packets <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return s
}

func (s *udpSink) addr() string { return s.conn.LocalAddr().String() }

// collect reads packets until every wanted prefix has a matching line or
// the timeout passes, and returns all lines and packets seen.
func (s *udpSink) collect(timeout time.Duration, want ...string) (lines, packets []string) {
	deadline := time.After(timeout)
	found := func() bool {
		for _, w := range want {
			ok := false
			for _, l := range lines {
				if strings.HasPrefix(l, w) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}
	for !found() {
		select {
		case p := <-s.packets:
			packets = append(packets, p)
			lines = append(lines, strings.Split(strings.TrimRight(p, "\n"), "\n")...)
		case <-deadline:
			return lines, packets
		}
	}
	return lines, packets
}

func TestNopStats(t *testing.T) {
	t.Parallel()
	for _, out := range []string{"", "NULLSTAT", "nullstat"} {
		s, err := NewStats(&Config{StatsOutput: out})
		require.NoError(t, err)
		require.IsType(t, NopStats{}, s)
		s.Count("a", 1)
		s.Gauge("b", 1)
		s.Timing("c", time.Second)
		require.NoError(t, s.Close())
	}
}

func TestNewStatsUnknownOutput(t *testing.T) {
	t.Parallel()
	_, err := NewStats(&Config{StatsOutput: "PROMETHEUS"})
	require.ErrorContains(t, err, "PROMETHEUS")
}

func TestDatadogStatsSendsDogStatsDLines(t *testing.T) {
	t.Parallel()
	sink := newUDPSink(t)
	s, err := NewStats(&Config{
		StatsOutput:          StatsOutputDatadog,
		DatadogAddress:       sink.addr(),
		DatadogPacketSize:    1432,
		DatadogTags:          []string{"env:test", "team:sec"},
		DatadogFlushInterval: 10 * time.Second,
	})
	require.NoError(t, err)
	s.Count("grapherd.jobs", 2, "result:ok")
	s.Count("grapherd.jobs", 3, "result:ok")
	s.Gauge("grapherd.queue", 7)
	s.Timing("grapherd.graph", 1500*time.Millisecond, "kind:dot")
	require.NoError(t, s.Close(), "close flushes")
	require.NoError(t, s.Close(), "closing twice is harmless")

	lines, _ := sink.collect(5*time.Second, "grapherd.jobs:", "grapherd.queue:", "grapherd.graph:")
	byName := map[string]string{}
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ":")
		byName[name] = l
	}
	require.Regexp(t, `^grapherd\.jobs:5\|c\|#env:test,team:sec,result:ok(\||$)`, byName["grapherd.jobs"], "counts aggregate, global tags first")
	require.Regexp(t, `^grapherd\.queue:7\|g\|#env:test,team:sec(\||$)`, byName["grapherd.queue"])
	require.Regexp(t, `^grapherd\.graph:1500(\.0+)?\|ms\|#env:test,team:sec,kind:dot(\||$)`, byName["grapherd.graph"])
}

func TestDatadogStatsHonoursPacketSize(t *testing.T) {
	t.Parallel()
	sink := newUDPSink(t)
	const packetSize = 512
	s, err := NewStats(&Config{
		StatsOutput:          StatsOutputDatadog,
		DatadogAddress:       sink.addr(),
		DatadogPacketSize:    packetSize,
		DatadogFlushInterval: 10 * time.Second,
	})
	require.NoError(t, err)
	const n = 200
	for i := range n {
		s.Timing(fmt.Sprintf("grapherd.timing.%03d", i), time.Millisecond)
	}
	require.NoError(t, s.Close())

	lines, packets := sink.collect(5*time.Second, "grapherd.timing.199:")
	var got int
	for _, l := range lines {
		if strings.HasPrefix(l, "grapherd.timing.") {
			got++
		}
	}
	require.Equal(t, n, got, "every sample arrives")
	require.Greater(t, len(packets), 1, "the samples did not fit one packet")
	for _, p := range packets {
		require.LessOrEqual(t, len(p), packetSize)
	}
}

func TestDatadogStatsHonoursFlushInterval(t *testing.T) {
	t.Parallel()
	sink := newUDPSink(t)
	s, err := NewStats(&Config{
		StatsOutput:          StatsOutputDatadog,
		DatadogAddress:       sink.addr(),
		DatadogPacketSize:    32768,
		DatadogFlushInterval: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	s.Timing("grapherd.flushed", time.Second)
	lines, _ := sink.collect(2*time.Second, "grapherd.flushed:")
	require.NotEmpty(t, lines, "a partly filled buffer is flushed on the interval, without Close")
}

func TestNewStatsBadAddress(t *testing.T) {
	t.Parallel()
	_, err := NewStats(&Config{StatsOutput: StatsOutputDatadog, DatadogAddress: "no-port"})
	require.Error(t, err)
}
