package runtime

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
)

// Stats is the small metrics interface the service is written against, so a
// test or an embedding program can count without a DogStatsD listener. Tags
// are "key:value" strings. Implementations must be safe for concurrent use
// and must not block the caller on the network.
type Stats interface {
	// Count adds value to the counter name.
	Count(name string, value int64, tags ...string)
	// Gauge sets the gauge name to value.
	Gauge(name string, value float64, tags ...string)
	// Timing records one duration sample for name.
	Timing(name string, d time.Duration, tags ...string)
	// Close flushes what is buffered and releases the client.
	Close() error
}

// NopStats drops every metric: RUNTIME_STATS_OUTPUT=NULLSTAT, and the
// default for code given no Stats.
type NopStats struct{}

var _ Stats = NopStats{}

// Count implements Stats by doing nothing.
func (NopStats) Count(string, int64, ...string) {}

// Gauge implements Stats by doing nothing.
func (NopStats) Gauge(string, float64, ...string) {}

// Timing implements Stats by doing nothing.
func (NopStats) Timing(string, time.Duration, ...string) {}

// Close implements Stats by doing nothing.
func (NopStats) Close() error { return nil }

// NewStats returns the stats client RUNTIME_STATS_OUTPUT asks for: NopStats
// for NULLSTAT (or an empty value, as in a zero Config), or a DogStatsD
// client sending to RUNTIME_STATS_DATADOG_ADDRESS with the configured packet
// size, static tags and flush interval. The client sends from its own
// goroutines; Close flushes and stops them.
func NewStats(c *Config) (Stats, error) {
	switch strings.ToUpper(c.StatsOutput) {
	case "", StatsOutputNull:
		return NopStats{}, nil
	case StatsOutputDatadog:
	default:
		return nil, fmt.Errorf("new stats: unknown output %q", c.StatsOutput)
	}
	opts := []statsd.Option{statsd.WithTags(c.DatadogTags)}
	if c.DatadogPacketSize > 0 {
		opts = append(opts, statsd.WithMaxBytesPerPayload(c.DatadogPacketSize))
	}
	if c.DatadogFlushInterval > 0 {
		opts = append(opts, statsd.WithBufferFlushInterval(c.DatadogFlushInterval))
	}
	client, err := statsd.New(c.DatadogAddress, opts...)
	if err != nil {
		return nil, fmt.Errorf("new stats: dogstatsd client for %q: %w", c.DatadogAddress, err)
	}
	return &datadogStats{client: client}, nil
}

// datadogStats adapts the DogStatsD client to Stats. Send errors (a full
// buffer, no listener) are dropped: metrics must never fail a request.
type datadogStats struct {
	client *statsd.Client
}

// Count implements Stats.
func (d *datadogStats) Count(name string, value int64, tags ...string) {
	_ = d.client.Count(name, value, tags, 1)
}

// Gauge implements Stats.
func (d *datadogStats) Gauge(name string, value float64, tags ...string) {
	_ = d.client.Gauge(name, value, tags, 1)
}

// Timing implements Stats.
func (d *datadogStats) Timing(name string, dur time.Duration, tags ...string) {
	_ = d.client.Timing(name, dur, tags, 1)
}

// Close implements Stats: it flushes the buffered metrics and stops the
// client. Closing twice is harmless.
func (d *datadogStats) Close() error {
	if err := d.client.Close(); err != nil && !errors.Is(err, statsd.ErrNoClient) {
		return fmt.Errorf("close dogstatsd client: %w", err)
	}
	return nil
}
