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
	opts := []statsd.Option{statsd.WithTags(safeTags(c.DatadogTags))}
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

// maxTagBytes bounds one tag sent to DogStatsD.
const maxTagBytes = 200

// SafeTag returns tag fit to send as one DogStatsD tag: every byte the
// protocol gives a meaning ('|' ends the tags, '#' starts them, ',' splits
// them, line breaks end the metric) and every byte outside printable ASCII
// becomes '_', and the tag is cut to 200 bytes. The DogStatsD client applies
// it to every tag, so a value taken from a request can never add a tag or a
// metric of its own; keeping cardinality bounded is the caller's part.
func SafeTag(tag string) string {
	if len(tag) <= maxTagBytes && !strings.ContainsFunc(tag, unsafeTagRune) {
		return tag
	}
	b := []byte(tag[:min(len(tag), maxTagBytes)])
	for i, c := range b {
		if unsafeTagRune(rune(c)) {
			b[i] = '_'
		}
	}
	return string(b)
}

func unsafeTagRune(r rune) bool {
	return r < 0x21 || r > 0x7e || r == '|' || r == '#' || r == ','
}

// safeTags applies SafeTag to each tag, copying only when one changes.
func safeTags(tags []string) []string {
	for i, t := range tags {
		if st := SafeTag(t); st != t {
			out := append([]string(nil), tags...)
			for j := i; j < len(out); j++ {
				out[j] = SafeTag(out[j])
			}
			return out
		}
	}
	return tags
}

// datadogStats adapts the DogStatsD client to Stats. Send errors (a full
// buffer, no listener) are dropped: metrics must never fail a request.
type datadogStats struct {
	client *statsd.Client
}

// Count implements Stats.
func (d *datadogStats) Count(name string, value int64, tags ...string) {
	_ = d.client.Count(name, value, safeTags(tags), 1)
}

// Gauge implements Stats.
func (d *datadogStats) Gauge(name string, value float64, tags ...string) {
	_ = d.client.Gauge(name, value, safeTags(tags), 1)
}

// Timing implements Stats.
func (d *datadogStats) Timing(name string, dur time.Duration, tags ...string) {
	_ = d.client.Timing(name, dur, safeTags(tags), 1)
}

// Close implements Stats: it flushes the buffered metrics and stops the
// client. Closing twice is harmless.
func (d *datadogStats) Close() error {
	if err := d.client.Close(); err != nil && !errors.Is(err, statsd.ErrNoClient) {
		return fmt.Errorf("close dogstatsd client: %w", err)
	}
	return nil
}
