package runtime

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/stretchr/testify/require"
)

// envOf returns a getenv reading from m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// varErrors returns the variables named by Load's error, in order.
func varErrors(t *testing.T, err error) []string {
	t.Helper()
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	var vars []string
	for _, e := range joined.Unwrap() {
		var ve *VarError
		require.ErrorAs(t, e, &ve, "every error is a *VarError: %v", e)
		vars = append(vars, ve.Var)
	}
	return vars
}

func TestLoadDefaultsMatchSeed(t *testing.T) {
	t.Parallel()
	c, err := Load(envOf(nil))
	require.NoError(t, err)

	// The seed's README examples.
	require.Equal(t, 8080, c.Port)
	require.Equal(t, ":8080", c.HTTPServerAddress)
	require.Equal(t, 10*time.Second, c.GraphProgressTimeout)
	require.Equal(t, time.Second, c.DigesterPollingInterval)
	require.Equal(t, 10*time.Second, c.DigesterPollingTimeout)
	require.True(t, c.UseIAM)
	require.Equal(t, 5*time.Second, c.ConnStateReportInterval)
	require.Equal(t, "http.server.connstate.hijacked", c.ConnStateHijackedCounter)
	require.Equal(t, "http.server.connstate.closed", c.ConnStateClosedCounter)
	require.Equal(t, "http.server.connstate.idle.gauge", c.ConnStateIdleGauge)
	require.Equal(t, "http.server.connstate.idle", c.ConnStateIdleCounter)
	require.Equal(t, "http.server.connstate.active.gauge", c.ConnStateActiveGauge)
	require.Equal(t, "http.server.connstate.active", c.ConnStateActiveCounter)
	require.Equal(t, "http.server.connstate.new.gauge", c.ConnStateNewGauge)
	require.Equal(t, "http.server.connstate.new", c.ConnStateNewCounter)
	require.Equal(t, "STDOUT", c.LoggerOutput)
	require.Equal(t, "INFO", c.LoggerLevel)
	require.Equal(t, "DATADOG", c.StatsOutput)
	require.Equal(t, 32768, c.DatadogPacketSize)
	require.Empty(t, c.DatadogTags)
	require.Equal(t, 10*time.Second, c.DatadogFlushInterval)
	require.Equal(t, "localhost:8125", c.DatadogAddress)
	require.Equal(t, []string{"OS"}, c.SignalsInstalled)
	require.Equal(t, []int{15, 2}, c.OSSignals)

	// Unset optional modules select the embedded defaults.
	require.Empty(t, c.GraphStorageBucket)
	require.Empty(t, c.GraphProgressBucket)
	require.Nil(t, c.DigesterEndpoint)
	require.Nil(t, c.StreamApplianceEndpoint)
	require.Empty(t, c.S3Endpoint())

	// Standalone and limits.
	require.Equal(t, "./data", c.DataDir)
	require.Equal(t, 2, c.Workers)
	require.Equal(t, 1000, c.QueueCapacity)
	require.Empty(t, c.FlowLogsDir)
	require.Empty(t, c.FlowLogsScanAccounts)
	require.Empty(t, c.FlowLogsScanRegions)
	require.Equal(t, 31*24*time.Hour, c.MaxWindow)
	require.Equal(t, int64(8<<30), c.MaxDigestBytes)
	require.Equal(t, 65536, c.MaxLineBytes)
	require.Equal(t, 2000000, c.MaxFlows)
	require.Equal(t, CompressionOff, c.GraphStorageCompression)
	require.Equal(t, int64(65536), c.MaxBodyBytes)
	require.Equal(t, 30*time.Second, c.ShutdownTimeout)
	require.Equal(t, 30*time.Second, c.RequestTimeout)
	require.Equal(t, 3, c.HTTPRetries)
}

func TestLoadDeclaresEverySeedVariable(t *testing.T) {
	t.Parallel()
	params, err := env.GetFieldParams(&Config{})
	require.NoError(t, err)
	declared := map[string]bool{}
	for _, p := range params {
		require.False(t, declared[p.Key], "variable %s declared twice", p.Key)
		declared[p.Key] = true
	}
	seed := []string{
		"PORT", "GRAPH_STORAGE_BUCKET", "GRAPH_STORAGE_BUCKET_REGION", "GRAPH_PROGRESS_BUCKET",
		"GRAPH_PROGRESS_BUCKET_REGION", "GRAPH_PROGRESS_TIMEOUT", "DIGESTER_ENDPOINT",
		"DIGESTER_POLLING_INTERVAL", "DIGESTER_POLLING_TIMEOUT", "STREAM_APPLIANCE_ENDPOINT", "USE_IAM",
		"AWS_CREDENTIALS_FILE", "AWS_CREDENTIALS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"RUNTIME_HTTPSERVER_ADDRESS", "RUNTIME_CONNSTATE_REPORTINTERVAL", "RUNTIME_CONNSTATE_HIJACKEDCOUNTER",
		"RUNTIME_CONNSTATE_CLOSEDCOUNTER", "RUNTIME_CONNSTATE_IDLEGAUGE", "RUNTIME_CONNSTATE_IDLECOUNTER",
		"RUNTIME_CONNSTATE_ACTIVEGAUGE", "RUNTIME_CONNSTATE_ACTIVECOUNTER", "RUNTIME_CONNSTATE_NEWGAUGE",
		"RUNTIME_CONNSTATE_NEWCOUNTER", "RUNTIME_LOGGER_OUTPUT", "RUNTIME_LOGGER_LEVEL", "RUNTIME_STATS_OUTPUT",
		"RUNTIME_STATS_DATADOG_PACKETSIZE", "RUNTIME_STATS_DATADOG_TAGS", "RUNTIME_STATS_DATADOG_FLUSHINTERVAL",
		"RUNTIME_STATS_DATADOG_ADDRESS", "RUNTIME_SIGNALS_INSTALLED", "RUNTIME_SIGNALS_OS_SIGNALS",
		// AWS SDK, standalone and limits.
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "GRAPHERD_DATA_DIR", "GRAPHERD_WORKERS",
		"GRAPHERD_QUEUE_CAPACITY", "FLOW_LOGS_DIR", "VPC_FLOW_LOGS_BUCKET", "VPC_FLOW_LOGS_BUCKET_REGION",
		"VPC_FLOW_LOGS_PREFIX", "VPC_FLOW_LOGS_SCAN_ACCOUNTS", "VPC_FLOW_LOGS_SCAN_REGIONS",
		"GRAPHERD_MAX_WINDOW", "GRAPHERD_MAX_DIGEST_BYTES", "GRAPHERD_MAX_LINE_BYTES", "GRAPHERD_MAX_BODY_BYTES",
		"GRAPHERD_SHUTDOWN_TIMEOUT", "GRAPHERD_HTTP_TIMEOUT", "GRAPHERD_HTTP_RETRIES",
		// Jobs, the worker route and queue engines.
		"GRAPHERD_JOB_TIMEOUT", "GRAPHERD_WORKER_TOKEN", "GRAPHERD_ROLE", "GRAPHERD_QUEUE_URL",
		"GRAPHERD_QUEUE_MAX_DELIVER", "GRAPHERD_QUEUE_ACK_WAIT", "GRAPHERD_QUEUE_RETRY_DELAY",
		// Views.
		"GRAPHERD_VIEW_MAX_NODES", "GRAPHERD_VIEW_MAX_EDGES", "GRAPHERD_VIEW_MAX_SVG_NODES", "GRAPHERD_VIEW_MAX_SVG_EDGES", "GRAPHERD_VIEW_SVG_TIMEOUT",
		// Limits and storage options of the digest and graph.
		"GRAPHERD_MAX_FLOWS", "GRAPH_STORAGE_COMPRESSION", "GRAPHERD_DIGEST_MEMORY_BYTES", "GRAPHERD_SPILL_DIR",
	}
	for _, k := range seed {
		require.True(t, declared[k], "variable %s is not declared", k)
	}
	require.Len(t, declared, len(seed), "every declared variable is listed here")
}

func TestLoadReadsOnlyDeclaredVariablesThroughGetenv(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	asked := map[string]int{}
	_, err := Load(func(k string) string {
		mu.Lock()
		defer mu.Unlock()
		asked[k]++
		return ""
	})
	require.NoError(t, err)
	params, err := env.GetFieldParams(&Config{})
	require.NoError(t, err)
	var want []string
	for _, p := range params {
		want = append(want, p.Key)
	}
	got := slices.Sorted(maps.Keys(asked))
	slices.Sort(want)
	require.Equal(t, want, got)
	for k, n := range asked {
		require.Equal(t, 1, n, "%s read once", k)
	}
}

func TestLoadNilGetenv(t *testing.T) {
	t.Parallel()
	_, err := Load(nil)
	require.Error(t, err)
}

func TestLoadValidValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"port sets address", map[string]string{"PORT": "9090"}, func(t *testing.T, c *Config) {
			require.Equal(t, 9090, c.Port)
			require.Equal(t, ":9090", c.HTTPServerAddress)
		}},
		{"port zero picks a free port", map[string]string{"PORT": "0"}, func(t *testing.T, c *Config) {
			require.Equal(t, ":0", c.HTTPServerAddress)
		}},
		{"address wins over port", map[string]string{"PORT": "9090", "RUNTIME_HTTPSERVER_ADDRESS": "127.0.0.1:7000"}, func(t *testing.T, c *Config) {
			require.Equal(t, "127.0.0.1:7000", c.HTTPServerAddress)
		}},
		{"ipv6 address", map[string]string{"RUNTIME_HTTPSERVER_ADDRESS": "[::1]:0"}, func(t *testing.T, c *Config) {
			require.Equal(t, "[::1]:0", c.HTTPServerAddress)
		}},
		{"values are trimmed", map[string]string{"PORT": " 8081\n"}, func(t *testing.T, c *Config) {
			require.Equal(t, 8081, c.Port)
		}},
		{"buckets with regions", map[string]string{
			"GRAPH_STORAGE_BUCKET": "graphs", "GRAPH_STORAGE_BUCKET_REGION": "us-west-2",
			"GRAPH_PROGRESS_BUCKET": "progress", "GRAPH_PROGRESS_BUCKET_REGION": "eu-west-1",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "graphs", c.GraphStorageBucket)
			require.Equal(t, "us-west-2", c.GraphStorageBucketRegion)
			require.Equal(t, "progress", c.GraphProgressBucket)
			require.Equal(t, "eu-west-1", c.GraphProgressBucketRegion)
		}},
		{"s3-compatible endpoint defaults regions", map[string]string{
			"GRAPH_STORAGE_BUCKET": "graphs", "GRAPH_PROGRESS_BUCKET": "progress",
			"VPC_FLOW_LOGS_BUCKET": "logs", "AWS_ENDPOINT_URL": "http://127.0.0.1:7070",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "us-east-1", c.GraphStorageBucketRegion)
			require.Equal(t, "us-east-1", c.GraphProgressBucketRegion)
			require.Equal(t, "us-east-1", c.FlowLogsBucketRegion)
			require.Equal(t, "http://127.0.0.1:7070", c.S3Endpoint())
		}},
		{"s3 endpoint wins over general endpoint", map[string]string{
			"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_S3": "https://s3.example.com",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "https://s3.example.com", c.S3Endpoint())
		}},
		{"explicit region kept on s3-compatible", map[string]string{
			"GRAPH_STORAGE_BUCKET": "graphs", "GRAPH_STORAGE_BUCKET_REGION": "local", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:7070",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "local", c.GraphStorageBucketRegion)
		}},
		{"milliseconds", map[string]string{
			"GRAPH_PROGRESS_TIMEOUT": "250", "DIGESTER_POLLING_INTERVAL": "5", "DIGESTER_POLLING_TIMEOUT": "60000",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, 250*time.Millisecond, c.GraphProgressTimeout)
			require.Equal(t, 5*time.Millisecond, c.DigesterPollingInterval)
			require.Equal(t, time.Minute, c.DigesterPollingTimeout)
		}},
		{"polling timeout -1 polls until the request ends", map[string]string{"DIGESTER_POLLING_TIMEOUT": "-1"}, func(t *testing.T, c *Config) {
			require.Zero(t, c.DigesterPollingTimeout)
		}},
		{"endpoints", map[string]string{
			"DIGESTER_ENDPOINT": "https://digester.example.com/base", "STREAM_APPLIANCE_ENDPOINT": "http://127.0.0.1:8080",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "https://digester.example.com/base", c.DigesterEndpoint.String())
			require.Equal(t, "http://127.0.0.1:8080", c.StreamApplianceEndpoint.String())
		}},
		{"USE_IAM false with static keys", map[string]string{
			"USE_IAM": "false", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
		}, func(t *testing.T, c *Config) {
			require.False(t, c.UseIAM)
			require.Equal(t, "AKIAEXAMPLE", c.AWSAccessKeyID)
			require.Equal(t, "secret", c.AWSSecretAccessKey)
		}},
		{"USE_IAM FALSE with shared file", map[string]string{
			"USE_IAM": "FALSE", "AWS_CREDENTIALS_FILE": "/etc/creds", "AWS_CREDENTIALS_PROFILE": "prod",
		}, func(t *testing.T, c *Config) {
			require.False(t, c.UseIAM)
			require.Equal(t, "/etc/creds", c.AWSCredentialsFile)
			require.Equal(t, "prod", c.AWSCredentialsProfile)
		}},
		{"USE_IAM 0", map[string]string{"USE_IAM": "0", "AWS_CREDENTIALS_PROFILE": "prod"}, func(t *testing.T, c *Config) { require.False(t, c.UseIAM) }},
		{"USE_IAM 1", map[string]string{"USE_IAM": "1"}, func(t *testing.T, c *Config) { require.True(t, c.UseIAM) }},
		{"USE_IAM True", map[string]string{"USE_IAM": "True"}, func(t *testing.T, c *Config) { require.True(t, c.UseIAM) }},
		{"connstate", map[string]string{
			"RUNTIME_CONNSTATE_REPORTINTERVAL": "250ms", "RUNTIME_CONNSTATE_HIJACKEDCOUNTER": "h",
			"RUNTIME_CONNSTATE_CLOSEDCOUNTER": "c", "RUNTIME_CONNSTATE_IDLEGAUGE": "ig", "RUNTIME_CONNSTATE_IDLECOUNTER": "ic",
			"RUNTIME_CONNSTATE_ACTIVEGAUGE": "ag", "RUNTIME_CONNSTATE_ACTIVECOUNTER": "ac",
			"RUNTIME_CONNSTATE_NEWGAUGE": "ng", "RUNTIME_CONNSTATE_NEWCOUNTER": "nc",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, 250*time.Millisecond, c.ConnStateReportInterval)
			require.Equal(t, []string{"h", "c", "ig", "ic", "ag", "ac", "ng", "nc"}, []string{
				c.ConnStateHijackedCounter, c.ConnStateClosedCounter, c.ConnStateIdleGauge, c.ConnStateIdleCounter,
				c.ConnStateActiveGauge, c.ConnStateActiveCounter, c.ConnStateNewGauge, c.ConnStateNewCounter,
			})
		}},
		{"logger in any case", map[string]string{"RUNTIME_LOGGER_OUTPUT": "null", "RUNTIME_LOGGER_LEVEL": "debug"}, func(t *testing.T, c *Config) {
			require.Equal(t, "NULL", c.LoggerOutput)
			require.Equal(t, "DEBUG", c.LoggerLevel)
		}},
		{"stats", map[string]string{
			"RUNTIME_STATS_OUTPUT": "nullstat", "RUNTIME_STATS_DATADOG_PACKETSIZE": "1432",
			"RUNTIME_STATS_DATADOG_TAGS": "env:prod, team:sec  service:grapherd", "RUNTIME_STATS_DATADOG_FLUSHINTERVAL": "1s",
			"RUNTIME_STATS_DATADOG_ADDRESS": "127.0.0.1:9125",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "NULLSTAT", c.StatsOutput)
			require.Equal(t, 1432, c.DatadogPacketSize)
			require.Equal(t, []string{"env:prod", "team:sec", "service:grapherd"}, c.DatadogTags)
			require.Equal(t, time.Second, c.DatadogFlushInterval)
			require.Equal(t, "127.0.0.1:9125", c.DatadogAddress)
		}},
		{"stats over a unix socket", map[string]string{"RUNTIME_STATS_DATADOG_ADDRESS": "unix:///var/run/datadog/dsd.socket"}, func(t *testing.T, c *Config) {
			require.Equal(t, "unix:///var/run/datadog/dsd.socket", c.DatadogAddress)
		}},
		{"empty tags are none", map[string]string{"RUNTIME_STATS_DATADOG_TAGS": " , "}, func(t *testing.T, c *Config) {
			require.Empty(t, c.DatadogTags)
		}},
		{"signals", map[string]string{"RUNTIME_SIGNALS_INSTALLED": "os", "RUNTIME_SIGNALS_OS_SIGNALS": "1 10,12"}, func(t *testing.T, c *Config) {
			require.Equal(t, []string{"OS"}, c.SignalsInstalled)
			require.Equal(t, []int{1, 10, 12}, c.OSSignals)
		}},
		{"separators only means default signals", map[string]string{"RUNTIME_SIGNALS_OS_SIGNALS": " , "}, func(t *testing.T, c *Config) {
			require.Equal(t, []int{15, 2}, c.OSSignals)
		}},
		{"standalone", map[string]string{
			"GRAPHERD_DATA_DIR": "/var/lib/grapherd", "GRAPHERD_WORKERS": "64", "GRAPHERD_QUEUE_CAPACITY": "1",
			"FLOW_LOGS_DIR": "testdata/flowlogs",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "/var/lib/grapherd", c.DataDir)
			require.Equal(t, 64, c.Workers)
			require.Equal(t, 1, c.QueueCapacity)
			require.Equal(t, "testdata/flowlogs", c.FlowLogsDir)
		}},
		{"flow logs bucket", map[string]string{
			"VPC_FLOW_LOGS_BUCKET": "logs", "VPC_FLOW_LOGS_BUCKET_REGION": "us-west-2", "VPC_FLOW_LOGS_PREFIX": "org/",
			"VPC_FLOW_LOGS_SCAN_ACCOUNTS": "123456789012,210987654321", "VPC_FLOW_LOGS_SCAN_REGIONS": "us-east-1 us-gov-west-1",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, "logs", c.FlowLogsBucket)
			require.Equal(t, "us-west-2", c.FlowLogsBucketRegion)
			require.Equal(t, "org/", c.FlowLogsPrefix)
			require.Equal(t, []string{"123456789012", "210987654321"}, c.FlowLogsScanAccounts)
			require.Equal(t, []string{"us-east-1", "us-gov-west-1"}, c.FlowLogsScanRegions)
		}},
		{"limits", map[string]string{
			"GRAPHERD_MAX_WINDOW": "24h", "GRAPHERD_MAX_DIGEST_BYTES": "1048576", "GRAPHERD_MAX_LINE_BYTES": "1024",
			"GRAPHERD_MAX_BODY_BYTES": "4096", "GRAPHERD_SHUTDOWN_TIMEOUT": "1m30s", "GRAPHERD_HTTP_TIMEOUT": "5s",
			"GRAPHERD_HTTP_RETRIES": "0", "GRAPHERD_MAX_FLOWS": "1000", "GRAPH_STORAGE_COMPRESSION": "GZIP",
			"GRAPHERD_DIGEST_MEMORY_BYTES": "16777216", "GRAPHERD_SPILL_DIR": "/var/tmp/grapherd",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, 1000, c.MaxFlows)
			require.Equal(t, int64(16<<20), c.DigestMemoryBytes)
			require.Equal(t, "/var/tmp/grapherd", c.SpillDir)
			require.Equal(t, CompressionGzip, c.GraphStorageCompression)
			require.Equal(t, 24*time.Hour, c.MaxWindow)
			require.Equal(t, int64(1<<20), c.MaxDigestBytes)
			require.Equal(t, 1024, c.MaxLineBytes)
			require.Equal(t, int64(4096), c.MaxBodyBytes)
			require.Equal(t, 90*time.Second, c.ShutdownTimeout)
			require.Equal(t, 5*time.Second, c.RequestTimeout)
			require.Zero(t, c.HTTPRetries)
		}},
		{"views", map[string]string{
			"GRAPHERD_VIEW_MAX_NODES": "500", "GRAPHERD_VIEW_MAX_EDGES": "900", "GRAPHERD_VIEW_MAX_SVG_NODES": "50",
			"GRAPHERD_VIEW_MAX_SVG_EDGES": "70", "GRAPHERD_VIEW_SVG_TIMEOUT": "5s",
		}, func(t *testing.T, c *Config) {
			require.Equal(t, []int{500, 900, 50, 70}, []int{c.ViewMaxNodes, c.ViewMaxEdges, c.ViewMaxSVGNodes, c.ViewMaxSVGEdges})
			require.Equal(t, 5*time.Second, c.ViewSVGTimeout)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(envOf(tt.env))
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestLoadInvalidValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value string
		extra      map[string]string
		reason     string
	}{
		{"PORT", "http", nil, `"http" is not a whole number`},
		{"PORT", "70000", nil, "between 0 and 65535"},
		{"PORT", "-1", nil, "between 0 and 65535"},
		{"RUNTIME_HTTPSERVER_ADDRESS", "8080", nil, "not a host:port"},
		{"RUNTIME_HTTPSERVER_ADDRESS", "localhost:http", nil, "not a host:port"},
		{"GRAPH_STORAGE_BUCKET", "a/b", map[string]string{"GRAPH_STORAGE_BUCKET_REGION": "us-east-1"}, "not a bucket name"},
		{"GRAPH_STORAGE_BUCKET_REGION", "us east", map[string]string{"GRAPH_STORAGE_BUCKET": "b"}, "not a region"},
		{"GRAPH_PROGRESS_BUCKET", "a b", map[string]string{"GRAPH_PROGRESS_BUCKET_REGION": "us-east-1"}, "not a bucket name"},
		{"GRAPH_PROGRESS_BUCKET_REGION", "x/y", nil, "not a region"},
		{"GRAPH_PROGRESS_TIMEOUT", "abc", nil, `"abc" is not a number of milliseconds`},
		{"GRAPH_PROGRESS_TIMEOUT", "10s", nil, "not a number of milliseconds"},
		{"GRAPH_PROGRESS_TIMEOUT", "0", nil, "greater than 0"},
		{"GRAPH_PROGRESS_TIMEOUT", "-1", nil, "greater than 0"},
		{"GRAPH_PROGRESS_TIMEOUT", "99999999999999999", nil, "too large"},
		{"GRAPH_PROGRESS_TIMEOUT", "99999999999999999999", nil, "too large"},
		{"PORT", "99999999999999999999", nil, `"99999999999999999999" is out of range`},
		{"DIGESTER_ENDPOINT", "digester:8080", nil, "not an http:// or https:// URL"},
		{"DIGESTER_ENDPOINT", "/relative", nil, "not an http:// or https:// URL"},
		{"DIGESTER_ENDPOINT", "ftp://host", nil, "not an http:// or https:// URL"},
		{"DIGESTER_ENDPOINT", "http://", nil, "has no host"},
		{"DIGESTER_ENDPOINT", "http://[::1", nil, "is not a URL"},
		{"DIGESTER_POLLING_INTERVAL", "1.5", nil, "not a number of milliseconds"},
		{"DIGESTER_POLLING_INTERVAL", "0", nil, "greater than 0"},
		{"DIGESTER_POLLING_TIMEOUT", "-2", nil, "or -1 to poll until the request ends"},
		{"DIGESTER_POLLING_TIMEOUT", "0", nil, "or -1 to poll until the request ends"},
		{"DIGESTER_POLLING_TIMEOUT", "soon", nil, "not a number of milliseconds"},
		{"STREAM_APPLIANCE_ENDPOINT", "127.0.0.1:8080", nil, "is not a URL; want an http:// or https:// URL"},
		{"STREAM_APPLIANCE_ENDPOINT", "unix:///tmp/sock", nil, "not an http:// or https:// URL"},
		{"USE_IAM", "yes", nil, `"yes" is not one of true, false, 1, 0`},
		{"USE_IAM", "t", nil, "is not one of true, false, 1, 0"},
		{"USE_IAM", "false", nil, "false needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_CREDENTIALS_FILE"},
		{"USE_IAM", "0", map[string]string{"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:7070"}, "or AWS_CREDENTIALS_FILE (and AWS_CREDENTIALS_PROFILE)"},
		{"AWS_ACCESS_KEY_ID", "", map[string]string{"USE_IAM": "false", "AWS_SECRET_ACCESS_KEY": "s"}, "required with AWS_SECRET_ACCESS_KEY"},
		{"AWS_SECRET_ACCESS_KEY", "", map[string]string{"USE_IAM": "false", "AWS_ACCESS_KEY_ID": "AKIA"}, "required with AWS_ACCESS_KEY_ID"},
		{"AWS_ENDPOINT_URL", "localhost:9000", nil, "not an http:// or https:// URL"},
		{"AWS_ENDPOINT_URL_S3", "http://[::1", nil, "is not a URL"},
		{"AWS_ENDPOINT_URL_SQS", "http://[::1", nil, "is not a URL"},
		{"GRAPH_STORAGE_BUCKET_REGION", "", map[string]string{"GRAPH_STORAGE_BUCKET": "graphs"}, "required when GRAPH_STORAGE_BUCKET is set"},
		{"GRAPH_PROGRESS_BUCKET_REGION", "", map[string]string{"GRAPH_PROGRESS_BUCKET": "p"}, "required when GRAPH_PROGRESS_BUCKET is set"},
		{"VPC_FLOW_LOGS_BUCKET_REGION", "", map[string]string{"VPC_FLOW_LOGS_BUCKET": "l"}, "required when VPC_FLOW_LOGS_BUCKET is set"},
		{"RUNTIME_CONNSTATE_REPORTINTERVAL", "5", nil, `"5" is not a duration`},
		{"RUNTIME_CONNSTATE_REPORTINTERVAL", "0s", nil, "greater than 0"},
		{"RUNTIME_CONNSTATE_HIJACKEDCOUNTER", "a|b", nil, "not a metric name"},
		{"RUNTIME_CONNSTATE_CLOSEDCOUNTER", "a b", nil, "not a metric name"},
		{"RUNTIME_CONNSTATE_IDLEGAUGE", "a:b", nil, "not a metric name"},
		{"RUNTIME_CONNSTATE_IDLECOUNTER", "a@b", nil, "not a metric name"},
		{"RUNTIME_CONNSTATE_ACTIVEGAUGE", "a#b", nil, "not a metric name"},
		{"RUNTIME_CONNSTATE_ACTIVECOUNTER", "a,b", nil, "not a metric name"},
		{"RUNTIME_CONNSTATE_NEWGAUGE", "a|1|c", nil, "not a metric name"},
		{"RUNTIME_CONNSTATE_NEWCOUNTER", "x\ty", nil, "not a metric name"},
		{"RUNTIME_LOGGER_OUTPUT", "STDERR", nil, `"STDERR" is not one of STDOUT, NULL`},
		{"RUNTIME_LOGGER_LEVEL", "TRACE", nil, "is not one of DEBUG, INFO, WARN, ERROR"},
		{"RUNTIME_STATS_OUTPUT", "PROMETHEUS", nil, "is not one of NULLSTAT, DATADOG"},
		{"RUNTIME_STATS_DATADOG_PACKETSIZE", "big", nil, "not a whole number"},
		{"RUNTIME_STATS_DATADOG_PACKETSIZE", "0", nil, "between 1 and 65507"},
		{"RUNTIME_STATS_DATADOG_PACKETSIZE", "70000", nil, "between 1 and 65507"},
		{"RUNTIME_STATS_DATADOG_TAGS", "env:prod|x", nil, "must not contain"},
		{"RUNTIME_STATS_DATADOG_FLUSHINTERVAL", "10", nil, "not a duration"},
		{"RUNTIME_STATS_DATADOG_FLUSHINTERVAL", "-1s", nil, "greater than 0"},
		{"RUNTIME_STATS_DATADOG_ADDRESS", "localhost", nil, "not a host:port"},
		{"RUNTIME_STATS_DATADOG_ADDRESS", ":8125", nil, "host is empty"},
		{"RUNTIME_STATS_DATADOG_ADDRESS", "unix://", nil, "socket path is empty"},
		{"RUNTIME_SIGNALS_INSTALLED", "OS,CUSTOM", nil, `"CUSTOM" is not a signal source`},
		{"RUNTIME_SIGNALS_OS_SIGNALS", "15 TERM", nil, `"15 TERM" is not a list of whole numbers`},
		{"RUNTIME_SIGNALS_OS_SIGNALS", "15 0", nil, "0 is not a signal number between 1 and 64"},
		{"RUNTIME_SIGNALS_OS_SIGNALS", "65", nil, "65 is not a signal number"},
		{"GRAPHERD_DATA_DIR", "a\x00b", nil, "not a folder name"},
		{"GRAPHERD_WORKERS", "0", nil, "between 1 and 64"},
		{"GRAPHERD_WORKERS", "65", nil, "between 1 and 64"},
		{"GRAPHERD_WORKERS", "two", nil, "not a whole number"},
		{"GRAPHERD_QUEUE_CAPACITY", "0", nil, "between 1 and 1000000"},
		{"GRAPHERD_QUEUE_CAPACITY", "1000000000", nil, "between 1 and 1000000"},
		{"FLOW_LOGS_DIR", "logs", map[string]string{"VPC_FLOW_LOGS_BUCKET": "b", "VPC_FLOW_LOGS_BUCKET_REGION": "us-east-1"}, "choose one flow log source"},
		{"FLOW_LOGS_DIR", "a\x00", nil, "not a folder name"},
		{"VPC_FLOW_LOGS_BUCKET", "a/b", map[string]string{"VPC_FLOW_LOGS_BUCKET_REGION": "us-east-1"}, "not a bucket name"},
		{"VPC_FLOW_LOGS_BUCKET_REGION", "a b", map[string]string{"VPC_FLOW_LOGS_BUCKET": "b"}, "not a region"},
		{"VPC_FLOW_LOGS_PREFIX", "a\nb", nil, "not a key prefix"},
		{"VPC_FLOW_LOGS_SCAN_ACCOUNTS", "123456789012 12345", nil, `"12345" is not a 12-digit AWS account id`},
		{"VPC_FLOW_LOGS_SCAN_ACCOUNTS", "12345678901a", nil, "12-digit"},
		{"VPC_FLOW_LOGS_SCAN_REGIONS", "us-east-1,../x", nil, `"../x" is not an AWS region`},
		{"GRAPHERD_MAX_WINDOW", "31d", nil, "not a duration"},
		{"GRAPHERD_MAX_WINDOW", "0s", nil, "greater than 0"},
		{"GRAPHERD_MAX_DIGEST_BYTES", "8GiB", nil, "not a whole number"},
		{"GRAPHERD_MAX_DIGEST_BYTES", "0", nil, "at least 1"},
		{"GRAPHERD_MAX_LINE_BYTES", "0", nil, "between 1 and"},
		{"GRAPHERD_MAX_LINE_BYTES", "1073741824", nil, "between 1 and"},
		{"GRAPHERD_MAX_BODY_BYTES", "-5", nil, "at least 1"},
		{"GRAPHERD_MAX_FLOWS", "0", nil, "between 1 and"},
		{"GRAPHERD_MAX_FLOWS", "2M", nil, "not a whole number"},
		{"GRAPHERD_DIGEST_MEMORY_BYTES", "1000", nil, "between 1048576 and 1099511627776"},
		{"GRAPHERD_DIGEST_MEMORY_BYTES", "1099511627777", nil, "between 1048576 and 1099511627776"},
		{"GRAPHERD_DIGEST_MEMORY_BYTES", "64MiB", nil, "not a whole number"},
		{"GRAPHERD_SPILL_DIR", "/tmp/a\x00b", nil, "not a folder name"},
		{"GRAPH_STORAGE_COMPRESSION", "zstd", nil, "is not one of off, gzip"},
		{"GRAPHERD_SHUTDOWN_TIMEOUT", "30", nil, "not a duration"},
		{"GRAPHERD_SHUTDOWN_TIMEOUT", "-1s", nil, "greater than 0"},
		{"GRAPHERD_HTTP_TIMEOUT", "0s", nil, "greater than 0"},
		{"GRAPHERD_HTTP_RETRIES", "-1", nil, "between 0 and 10"},
		{"GRAPHERD_HTTP_RETRIES", "11", nil, "between 0 and 10"},
		{"GRAPHERD_VIEW_MAX_NODES", "0", nil, "between 1 and"},
		{"GRAPHERD_VIEW_MAX_EDGES", "many", nil, "not a whole number"},
		{"GRAPHERD_VIEW_MAX_SVG_NODES", "-1", nil, "between 1 and"},
		{"GRAPHERD_VIEW_MAX_SVG_EDGES", "0", nil, "between 1 and"},
		{"GRAPHERD_VIEW_SVG_TIMEOUT", "0s", nil, "greater than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{tt.key: tt.value}
			maps.Copy(m, tt.extra)
			c, err := Load(envOf(m))
			require.Error(t, err)
			require.Nil(t, c)
			require.Equal(t, []string{tt.key}, varErrors(t, err), "exactly one error, naming the variable")
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, tt.key+": "), "starts with the variable: %q", msg)
			require.Contains(t, msg, tt.reason)
			require.NotContains(t, msg, "\n", "one line")
		})
	}
}

func TestLoadExactMessage(t *testing.T) {
	t.Parallel()
	_, err := Load(envOf(map[string]string{"GRAPH_PROGRESS_TIMEOUT": "abc"}))
	require.EqualError(t, err, `GRAPH_PROGRESS_TIMEOUT: "abc" is not a number of milliseconds`)
}

func TestLoadJoinsAllErrorsOneLineEach(t *testing.T) {
	t.Parallel()
	_, err := Load(envOf(map[string]string{
		"PORT":                       "x",
		"GRAPH_PROGRESS_TIMEOUT":     "abc",
		"USE_IAM":                    "maybe",
		"RUNTIME_LOGGER_LEVEL":       "LOUD",
		"RUNTIME_SIGNALS_OS_SIGNALS": "99",
		"GRAPHERD_WORKERS":           "0",
	}))
	require.Error(t, err)
	vars := varErrors(t, err)
	require.Equal(t, []string{
		"PORT", "GRAPH_PROGRESS_TIMEOUT", "USE_IAM", "RUNTIME_LOGGER_LEVEL", "RUNTIME_SIGNALS_OS_SIGNALS", "GRAPHERD_WORKERS",
	}, vars)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, len(vars))
	for i, line := range lines {
		require.True(t, strings.HasPrefix(line, vars[i]+": "), "line %d names its variable: %q", i, line)
	}
}

func TestLoadErrorsNeverEchoSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		env    map[string]string
		secret string
	}{
		{"userinfo in endpoint", map[string]string{"DIGESTER_ENDPOINT": "ftp://user:hunter2@host"}, "hunter2"},
		{"userinfo in unparsable url", map[string]string{"AWS_ENDPOINT_URL": "http://u:hunter2@[::1"}, "hunter2"},
		{"opaque userinfo", map[string]string{"STREAM_APPLIANCE_ENDPOINT": "user:hunter2@host"}, "hunter2"},
		{"long value cut", map[string]string{"RUNTIME_LOGGER_LEVEL": strings.Repeat("A", 500) + "tail"}, "tail"},
		{"control characters quoted", map[string]string{"RUNTIME_LOGGER_OUTPUT": "a\nforged: line"}, "\nforged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(envOf(tt.env))
			require.Error(t, err)
			require.NotContains(t, err.Error(), tt.secret)
			require.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestConfigLogAttrsMaskSecrets(t *testing.T) {
	t.Parallel()
	c, err := Load(envOf(map[string]string{
		"USE_IAM":                    "false",
		"AWS_ACCESS_KEY_ID":          "AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY":      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"DIGESTER_ENDPOINT":          "https://bob:digestpass@digester.example.com/v1",
		"STREAM_APPLIANCE_ENDPOINT":  "http://alice@bus.example.com",
		"AWS_ENDPOINT_URL_S3":        "http://root:s3pass@127.0.0.1:7070",
		"RUNTIME_STATS_DATADOG_TAGS": "env:test",
	}))
	require.NoError(t, err)

	attrs := map[string]slog.Value{}
	for _, a := range c.LogAttrs() {
		attrs[a.Key] = a.Value
	}
	params, err := env.GetFieldParams(&Config{})
	require.NoError(t, err)
	require.Len(t, attrs, len(params), "one attribute per variable")
	require.Equal(t, "[REDACTED]", attrs["AWS_SECRET_ACCESS_KEY"].String())
	require.Equal(t, "AKIA[REDACTED]", attrs["AWS_ACCESS_KEY_ID"].String())
	require.Equal(t, "https://REDACTED@digester.example.com/v1", attrs["DIGESTER_ENDPOINT"].String())
	require.Equal(t, "http://REDACTED@bus.example.com", attrs["STREAM_APPLIANCE_ENDPOINT"].String())
	require.Equal(t, "http://REDACTED@127.0.0.1:7070", attrs["AWS_ENDPOINT_URL_S3"].String())
	require.Equal(t, "10s", attrs["GRAPH_PROGRESS_TIMEOUT"].String(), "durations are logged readably")

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	out := buf.String()
	for _, secret := range []string{"wJalrXUtnFEMI", "IOSFODNN7", "digestpass", "s3pass", "alice", "bob"} {
		require.NotContains(t, out, secret)
	}
	require.Contains(t, out, `"GRAPH_STORAGE_BUCKET":""`)
	require.Contains(t, out, `"RUNTIME_STATS_DATADOG_TAGS":["env:test"]`)
	require.Contains(t, out, `"RUNTIME_SIGNALS_OS_SIGNALS":[15,2]`)

	// Masking must not change the config itself.
	require.Equal(t, "https://bob:digestpass@digester.example.com/v1", c.DigesterEndpoint.String())
	require.Equal(t, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", c.AWSSecretAccessKey)
}

func TestVarErrorMatchesWithErrorsAs(t *testing.T) {
	t.Parallel()
	_, err := Load(envOf(map[string]string{"GRAPHERD_WORKERS": "100"}))
	var ve *VarError
	require.True(t, errors.As(err, &ve))
	require.Equal(t, "GRAPHERD_WORKERS", ve.Var)
	require.Equal(t, `"100" must be between 1 and 64`, ve.Reason)
}

func TestLoadJobAndQueueSettings(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string) (*Config, error) {
		return Load(func(k string) string { return env[k] })
	}
	cfg, err := load(nil)
	require.NoError(t, err)
	require.Equal(t, time.Hour, cfg.JobTimeout)
	require.Equal(t, RoleAll, cfg.Role)
	require.Equal(t, 5, cfg.QueueMaxDeliver)
	require.Zero(t, cfg.QueueAckWait, "the engine's own ack wait")
	require.Equal(t, 10*time.Second, cfg.QueueRetryDelay)
	require.Empty(t, cfg.QueueURL)

	cfg, err = load(map[string]string{"GRAPHERD_ROLE": "Worker", "GRAPHERD_QUEUE_URL": "nats://127.0.0.1:4222", "GRAPHERD_WORKER_TOKEN": "s3cret"})
	require.NoError(t, err)
	require.Equal(t, RoleWorker, cfg.Role)
	require.NotContains(t, slog.GroupValue(cfg.LogAttrs()...).String(), "s3cret", "the token is never logged")

	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GRAPHERD_ROLE": "api"}, "GRAPHERD_ROLE: \"api\" needs GRAPHERD_QUEUE_URL"},
		{map[string]string{"GRAPHERD_ROLE": "both"}, "GRAPHERD_ROLE: \"both\" is not one of all, api, worker"},
		{map[string]string{"GRAPHERD_QUEUE_URL": "amqp://x"}, "GRAPHERD_QUEUE_URL: \"amqp://x\" is not a nats://"},
		{map[string]string{"GRAPHERD_QUEUE_MAX_DELIVER": "0"}, "GRAPHERD_QUEUE_MAX_DELIVER: \"0\" must be between 1 and 1000"},
		{map[string]string{"GRAPHERD_QUEUE_ACK_WAIT": "-1s"}, "GRAPHERD_QUEUE_ACK_WAIT: \"-1s\" must be a duration from 0"},
		{map[string]string{"GRAPHERD_QUEUE_ACK_WAIT": "13h"}, "GRAPHERD_QUEUE_ACK_WAIT: \"13h\" must be a duration from 0"},
		{map[string]string{"GRAPHERD_QUEUE_RETRY_DELAY": "0s"}, "GRAPHERD_QUEUE_RETRY_DELAY: \"0s\" must be a duration greater than 0"},
		{map[string]string{"GRAPHERD_JOB_TIMEOUT": "0s"}, "GRAPHERD_JOB_TIMEOUT: \"0s\" must be a duration greater than 0"},
		{map[string]string{"GRAPHERD_WORKER_TOKEN": "a b"}, "GRAPHERD_WORKER_TOKEN: must not contain spaces"},
	} {
		_, err := load(tc.env)
		require.ErrorContains(t, err, tc.want, "%v", tc.env)
	}
}
