package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"
)

// Accepted values of the enumerated settings, in their canonical (upper case)
// spelling. Load accepts them in any case and stores them like this.
const (
	// LoggerOutputStdout writes JSON logs to the process's standard output.
	LoggerOutputStdout = "STDOUT"
	// LoggerOutputNull discards all logs.
	LoggerOutputNull = "NULL"
	// StatsOutputNull discards all metrics.
	StatsOutputNull = "NULLSTAT"
	// StatsOutputDatadog sends metrics as DogStatsD datagrams.
	StatsOutputDatadog = "DATADOG"
	// SignalsOS installs the operating-system signal handler, the only one
	// there is.
	SignalsOS = "OS"
	// DefaultS3Region is the region assumed for a bucket on an S3-compatible
	// server (AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 set) when no region is
	// given: such servers rarely care, but request signing needs one.
	DefaultS3Region = "us-east-1"
)

// Bounds enforced by Load. They keep a typo in the environment from turning
// into an allocation the machine cannot make or a loop that never ends.
const (
	maxWorkers        = 64
	maxQueueCapacity  = 1_000_000
	maxHTTPRetries    = 10
	maxSignal         = 64
	maxUDPPayload     = 65507
	maxLineBytesLimit = 64 << 20
	maxShownValue     = 64
)

// Config is the whole configuration of the service, read from the
// environment by Load. The env tags name the variables (the seed's names, the
// AWS SDK's standard endpoint variables, and the GRAPHERD_* / VPC_FLOW_LOGS_*
// additions); envDefault holds the value used when a variable is unset or
// empty, written the way an operator would write it. Fields tagged unit:"ms"
// are whole numbers of milliseconds in the environment, as in the seed.
//
// Every field is set and validated once by Load; the rest of the program reads
// the struct and never the environment.
type Config struct {
	// Port is the HTTP port, used for the listen address when
	// RUNTIME_HTTPSERVER_ADDRESS is unset. 0 picks a free port.
	Port int `env:"PORT" envDefault:"8080"`
	// HTTPServerAddress is the listen address; ":" + PORT when unset.
	HTTPServerAddress string `env:"RUNTIME_HTTPSERVER_ADDRESS"`

	// GraphStorageBucket is the S3 bucket holding graphs; empty selects the
	// local filesystem under DataDir.
	GraphStorageBucket string `env:"GRAPH_STORAGE_BUCKET"`
	// GraphStorageBucketRegion is the region of GraphStorageBucket.
	GraphStorageBucketRegion string `env:"GRAPH_STORAGE_BUCKET_REGION"`
	// GraphProgressBucket is the S3 bucket holding progress marks; empty
	// selects the local filesystem under DataDir.
	GraphProgressBucket string `env:"GRAPH_PROGRESS_BUCKET"`
	// GraphProgressBucketRegion is the region of GraphProgressBucket.
	GraphProgressBucketRegion string `env:"GRAPH_PROGRESS_BUCKET_REGION"`
	// GraphProgressTimeout is how long a progress mark stays valid.
	GraphProgressTimeout time.Duration `env:"GRAPH_PROGRESS_TIMEOUT" envDefault:"10000" unit:"ms"`

	// DigesterEndpoint is the base URL of a vpcflow-digesterd; nil selects
	// the built-in digester.
	DigesterEndpoint *url.URL `env:"DIGESTER_ENDPOINT"`
	// DigesterPollingInterval is the wait between two polls of the digester.
	DigesterPollingInterval time.Duration `env:"DIGESTER_POLLING_INTERVAL" envDefault:"1000" unit:"ms"`
	// DigesterPollingTimeout bounds the whole polling. 0 (written -1 in the
	// environment, as in the seed) means poll until the request's context
	// ends.
	DigesterPollingTimeout time.Duration `env:"DIGESTER_POLLING_TIMEOUT" envDefault:"10000" unit:"ms"`

	// StreamApplianceEndpoint is where the HTTP queuer POSTs jobs; nil
	// selects the in-process queue.
	StreamApplianceEndpoint *url.URL `env:"STREAM_APPLIANCE_ENDPOINT"`

	// UseIAM selects the AWS SDK's default credential chain; false selects
	// the static keys or the shared credentials file below.
	UseIAM bool `env:"USE_IAM" envDefault:"true"`
	// AWSCredentialsFile is the shared credentials file used when UseIAM is
	// false.
	AWSCredentialsFile string `env:"AWS_CREDENTIALS_FILE"`
	// AWSCredentialsProfile is the profile read from AWSCredentialsFile.
	AWSCredentialsProfile string `env:"AWS_CREDENTIALS_PROFILE"`
	// AWSAccessKeyID is the static access key used when UseIAM is false.
	AWSAccessKeyID string `env:"AWS_ACCESS_KEY_ID"`
	// AWSSecretAccessKey is the static secret key used when UseIAM is false.
	// It is never logged.
	AWSSecretAccessKey string `env:"AWS_SECRET_ACCESS_KEY"`
	// AWSEndpointURL is the AWS SDK's general endpoint override, for
	// S3-compatible servers.
	AWSEndpointURL string `env:"AWS_ENDPOINT_URL"`
	// AWSEndpointURLS3 is the AWS SDK's S3 endpoint override; it wins over
	// AWSEndpointURL for S3.
	AWSEndpointURLS3 string `env:"AWS_ENDPOINT_URL_S3"`
	// AWSEndpointURLSQS is the AWS SDK's SQS endpoint override, for an
	// SQS-compatible server; it wins over AWSEndpointURL for SQS.
	AWSEndpointURLSQS string `env:"AWS_ENDPOINT_URL_SQS"`

	// ConnStateReportInterval is how often the connection gauges and
	// counters are reported.
	ConnStateReportInterval time.Duration `env:"RUNTIME_CONNSTATE_REPORTINTERVAL" envDefault:"5s"`
	// ConnStateHijackedCounter names the counter of hijacked connections.
	ConnStateHijackedCounter string `env:"RUNTIME_CONNSTATE_HIJACKEDCOUNTER" envDefault:"http.server.connstate.hijacked"`
	// ConnStateClosedCounter names the counter of closed connections.
	ConnStateClosedCounter string `env:"RUNTIME_CONNSTATE_CLOSEDCOUNTER" envDefault:"http.server.connstate.closed"`
	// ConnStateIdleGauge names the gauge of idle connections.
	ConnStateIdleGauge string `env:"RUNTIME_CONNSTATE_IDLEGAUGE" envDefault:"http.server.connstate.idle.gauge"`
	// ConnStateIdleCounter names the counter of connections turning idle.
	ConnStateIdleCounter string `env:"RUNTIME_CONNSTATE_IDLECOUNTER" envDefault:"http.server.connstate.idle"`
	// ConnStateActiveGauge names the gauge of active connections.
	ConnStateActiveGauge string `env:"RUNTIME_CONNSTATE_ACTIVEGAUGE" envDefault:"http.server.connstate.active.gauge"`
	// ConnStateActiveCounter names the counter of connections turning active.
	ConnStateActiveCounter string `env:"RUNTIME_CONNSTATE_ACTIVECOUNTER" envDefault:"http.server.connstate.active"`
	// ConnStateNewGauge names the gauge of new (not yet active) connections.
	ConnStateNewGauge string `env:"RUNTIME_CONNSTATE_NEWGAUGE" envDefault:"http.server.connstate.new.gauge"`
	// ConnStateNewCounter names the counter of accepted connections.
	ConnStateNewCounter string `env:"RUNTIME_CONNSTATE_NEWCOUNTER" envDefault:"http.server.connstate.new"`

	// LoggerOutput is LoggerOutputStdout or LoggerOutputNull.
	LoggerOutput string `env:"RUNTIME_LOGGER_OUTPUT" envDefault:"STDOUT"`
	// LoggerLevel is DEBUG, INFO, WARN or ERROR.
	LoggerLevel string `env:"RUNTIME_LOGGER_LEVEL" envDefault:"INFO"`

	// StatsOutput is StatsOutputNull or StatsOutputDatadog.
	StatsOutput string `env:"RUNTIME_STATS_OUTPUT" envDefault:"DATADOG"`
	// DatadogPacketSize is the largest DogStatsD datagram sent.
	DatadogPacketSize int `env:"RUNTIME_STATS_DATADOG_PACKETSIZE" envDefault:"32768"`
	// DatadogTags are added to every metric (space or comma separated in the
	// environment).
	DatadogTags []string `env:"RUNTIME_STATS_DATADOG_TAGS"`
	// DatadogFlushInterval is the longest a metric waits in the buffer.
	DatadogFlushInterval time.Duration `env:"RUNTIME_STATS_DATADOG_FLUSHINTERVAL" envDefault:"10s"`
	// DatadogAddress is the DogStatsD listener (host:port or unix://path).
	DatadogAddress string `env:"RUNTIME_STATS_DATADOG_ADDRESS" envDefault:"localhost:8125"`

	// SignalsInstalled lists the signal sources; only SignalsOS exists.
	SignalsInstalled []string `env:"RUNTIME_SIGNALS_INSTALLED" envDefault:"OS"`
	// OSSignals are the signal numbers that start a graceful shutdown
	// (space separated in the environment).
	OSSignals []int `env:"RUNTIME_SIGNALS_OS_SIGNALS" envDefault:"15 2"`

	// DataDir is the folder of the filesystem storage and marker.
	DataDir string `env:"GRAPHERD_DATA_DIR" envDefault:"./data"`
	// Workers is the size of the job worker pool.
	Workers int `env:"GRAPHERD_WORKERS" envDefault:"2"`
	// QueueCapacity is how many jobs may wait for a worker.
	QueueCapacity int `env:"GRAPHERD_QUEUE_CAPACITY" envDefault:"1000"`
	// FlowLogsDir is a folder of flow log files for the built-in digester.
	FlowLogsDir string `env:"FLOW_LOGS_DIR"`
	// FlowLogsBucket is a bucket of flow log files for the built-in digester.
	FlowLogsBucket string `env:"VPC_FLOW_LOGS_BUCKET"`
	// FlowLogsBucketRegion is the region of FlowLogsBucket.
	FlowLogsBucketRegion string `env:"VPC_FLOW_LOGS_BUCKET_REGION"`
	// FlowLogsPrefix is the key prefix in front of AWSLogs/ in the bucket.
	FlowLogsPrefix string `env:"VPC_FLOW_LOGS_PREFIX"`
	// FlowLogsScanAccounts limits the accounts read (12-digit ids); empty
	// means all.
	FlowLogsScanAccounts []string `env:"VPC_FLOW_LOGS_SCAN_ACCOUNTS"`
	// FlowLogsScanRegions limits the regions read; empty means all.
	FlowLogsScanRegions []string `env:"VPC_FLOW_LOGS_SCAN_REGIONS"`

	// MaxWindow is the longest window a graph may cover.
	MaxWindow time.Duration `env:"GRAPHERD_MAX_WINDOW" envDefault:"744h"`
	// MaxDigestBytes is the largest digest read for one graph.
	MaxDigestBytes int64 `env:"GRAPHERD_MAX_DIGEST_BYTES" envDefault:"8589934592"`
	// MaxLineBytes is the longest digest or flow log line accepted.
	MaxLineBytes int `env:"GRAPHERD_MAX_LINE_BYTES" envDefault:"65536"`
	// MaxFlows bounds the distinct flows of one window the built-in
	// digester compacts, and so the disk its spill files take (at most
	// about 200 bytes a flow) and the graph's size; a window with more
	// fails permanently, naming the bound. See docs/limits.md.
	MaxFlows int `env:"GRAPHERD_MAX_FLOWS" envDefault:"2000000"`
	// DigestMemoryBytes is the memory the built-in digester's flows take
	// while a window is compacted; beyond it they spill to temporary files
	// in SpillDir. See docs/limits.md.
	DigestMemoryBytes int64 `env:"GRAPHERD_DIGEST_MEMORY_BYTES" envDefault:"33554432"`
	// SpillDir is the folder of the built-in digester's spill files; empty
	// means the system's temporary folder (TMPDIR).
	SpillDir string `env:"GRAPHERD_SPILL_DIR"`
	// MaxBodyBytes is the largest request body the worker reads.
	MaxBodyBytes int64 `env:"GRAPHERD_MAX_BODY_BYTES" envDefault:"65536"`
	// GraphStorageCompression is how graphs are stored: "off" (plain DOT,
	// as other readers of the original bucket expect) or "gzip" (stored as
	// <id>.dot.gz, served decompressed to clients that do not accept gzip).
	GraphStorageCompression string `env:"GRAPH_STORAGE_COMPRESSION" envDefault:"off"`
	// ShutdownTimeout bounds the graceful shutdown (requests and jobs).
	ShutdownTimeout time.Duration `env:"GRAPHERD_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// RequestTimeout is the deadline of one outbound HTTP call.
	RequestTimeout time.Duration `env:"GRAPHERD_HTTP_TIMEOUT" envDefault:"30s"`
	// HTTPRetries is how many times an outbound call is retried.
	HTTPRetries int `env:"GRAPHERD_HTTP_RETRIES" envDefault:"3"`
	// JobTimeout bounds one graph job from start to end; a job still running
	// then fails with its reason, so no window is held forever.
	JobTimeout time.Duration `env:"GRAPHERD_JOB_TIMEOUT" envDefault:"1h"`
	// WorkerToken, when set, is the bearer token the worker route requires
	// and the built-in HTTP queuer sends. It is never logged.
	WorkerToken string `env:"GRAPHERD_WORKER_TOKEN"`

	// Role is RoleAll (API and worker in one process), RoleAPI (routes
	// only; jobs go to the queue) or RoleWorker (consumes jobs; serves only
	// the health routes).
	Role string `env:"GRAPHERD_ROLE" envDefault:"all"`
	// QueueURL picks a queue engine: nats://host:port for NATS JetStream,
	// an http(s):// SQS queue URL for Amazon SQS; empty keeps the HTTP
	// queuer (STREAM_APPLIANCE_ENDPOINT) or the in-process pool.
	QueueURL string `env:"GRAPHERD_QUEUE_URL"`
	// QueueMaxDeliver is how many times a queue engine delivers one job
	// before it goes to the dead-letter destination.
	QueueMaxDeliver int `env:"GRAPHERD_QUEUE_MAX_DELIVER" envDefault:"5"`
	// QueueAckWait is how long a queue engine waits for word from the
	// worker running a job before it hands the job to another worker: the
	// JetStream consumer's AckWait (when this process creates it), the SQS
	// visibility timeout. It is how soon a killed worker's jobs run again.
	// Zero keeps the engine's own: 30s for a new JetStream consumer, the
	// SQS queue's visibility timeout.
	QueueAckWait time.Duration `env:"GRAPHERD_QUEUE_ACK_WAIT"`
	// QueueRetryDelay is the wait before the second delivery of a job that
	// failed with a retryable error, doubled for each further one up to
	// 5 minutes.
	QueueRetryDelay time.Duration `env:"GRAPHERD_QUEUE_RETRY_DELAY" envDefault:"10s"`

	// ViewMaxNodes caps the nodes of a JSON, CSV or DOT view; a larger view
	// answers 422 asking for grouping, top or filters.
	ViewMaxNodes int `env:"GRAPHERD_VIEW_MAX_NODES" envDefault:"20000"`
	// ViewMaxEdges caps the edges of any view.
	ViewMaxEdges int `env:"GRAPHERD_VIEW_MAX_EDGES" envDefault:"100000"`
	// ViewMaxSVGNodes caps the nodes of an SVG view, which Graphviz lays out.
	ViewMaxSVGNodes int `env:"GRAPHERD_VIEW_MAX_SVG_NODES" envDefault:"2000"`
	// ViewMaxSVGEdges caps the edges of an SVG view: Graphviz lays out and
	// labels each one.
	ViewMaxSVGEdges int `env:"GRAPHERD_VIEW_MAX_SVG_EDGES" envDefault:"10000"`
	// ViewSVGTimeout bounds one Graphviz layout.
	ViewSVGTimeout time.Duration `env:"GRAPHERD_VIEW_SVG_TIMEOUT" envDefault:"60s"`
}

// Accepted values of GRAPH_STORAGE_COMPRESSION.
const (
	// CompressionOff stores graphs as plain DOT.
	CompressionOff = "off"
	// CompressionGzip stores graphs gzip-compressed.
	CompressionGzip = "gzip"
)

// Roles of a process, the accepted values of GRAPHERD_ROLE.
const (
	// RoleAll runs the API and the worker in one process.
	RoleAll = "all"
	// RoleAPI serves the API only; jobs go to the queue engine.
	RoleAPI = "api"
	// RoleWorker consumes jobs from the queue engine and serves only the
	// health routes.
	RoleWorker = "worker"
)

// VarError says which environment variable is wrong and why. Load returns
// one per problem, joined with errors.Join, so each prints on its own line.
type VarError struct {
	// Var is the environment variable's name.
	Var string
	// Reason says what is wrong with its value.
	Reason string
}

// Error implements error as "VAR: reason".
func (e *VarError) Error() string { return e.Var + ": " + e.Reason }

// Load reads the configuration from getenv (os.Getenv in main, a map in
// tests), applies the defaults and validates every value. On failure it
// returns all problems at once, each a *VarError naming the variable, so an
// operator can fix the environment in one go. Unset and empty variables are
// the same thing.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		return nil, errors.New("load config: getenv is nil")
	}
	var cfg Config
	params, err := env.GetFieldParams(&cfg)
	if err != nil {
		return nil, fmt.Errorf("load config: read field tags: %w", err)
	}
	fields := fieldsByKey()
	l := &loader{fields: fields, raw: make(map[string]string, len(params)), bad: make(map[string]bool)}

	// Resolve every declared variable (value or default) and bring it into
	// the form the env parser reads; record what cannot be.
	m := make(map[string]string, len(params))
	for _, p := range params {
		sf, ok := fields[p.Key]
		if !ok {
			return nil, fmt.Errorf("load config: no field for variable %s", p.Key)
		}
		raw := strings.TrimSpace(getenv(p.Key))
		l.raw[p.Key] = raw
		v, ok := l.normalize(sf, p.Key, raw)
		if ok && v == "" && p.HasDefaultValue {
			v, ok = l.normalize(sf, p.Key, p.DefaultValue)
		}
		if ok {
			m[p.Key] = v
		}
	}

	if err := env.ParseWithOptions(&cfg, env.Options{Environment: m}); err != nil {
		l.parseErrors(err)
	}
	l.validate(&cfg)

	if len(l.errs) > 0 {
		// Report in declaration order, as the README's table lists them.
		order := make(map[string]int, len(params))
		for i, p := range params {
			order[p.Key] = i
		}
		rank := func(err error) int {
			var ve *VarError
			if errors.As(err, &ve) {
				return order[ve.Var]
			}
			return len(params)
		}
		slices.SortStableFunc(l.errs, func(a, b error) int { return rank(a) - rank(b) })
		return nil, errors.Join(l.errs...)
	}
	return &cfg, nil
}

// SQSEndpoint returns the endpoint URL to use for SQS: AWS_ENDPOINT_URL_SQS
// when set, otherwise AWS_ENDPOINT_URL, otherwise "" (the queue URL's host,
// or AWS itself).
func (c *Config) SQSEndpoint() string {
	if c.AWSEndpointURLSQS != "" {
		return c.AWSEndpointURLSQS
	}
	return c.AWSEndpointURL
}

// S3Endpoint returns the endpoint URL to use for S3: AWS_ENDPOINT_URL_S3 when
// set, otherwise AWS_ENDPOINT_URL, otherwise "" (AWS itself). A non-empty
// value means an S3-compatible server, which wants path-style addressing.
func (c *Config) S3Endpoint() string {
	if c.AWSEndpointURLS3 != "" {
		return c.AWSEndpointURLS3
	}
	return c.AWSEndpointURL
}

// LogValue implements slog.LogValuer, so logging the config directly gives
// the same masked group as LogAttrs.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(c.LogAttrs()...)
}

// LogAttrs returns one attribute per variable, keyed by the variable's name,
// for the start-up log. The secret key is replaced by a mask, the access key
// id is cut to its first four characters and URL user information is
// replaced, so the log can be shipped anywhere.
func (c *Config) LogAttrs() []slog.Attr {
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	attrs := make([]slog.Attr, 0, rt.NumField())
	for i := range rt.NumField() {
		key := envKey(rt.Field(i))
		if key == "" {
			continue
		}
		fv := rv.Field(i)
		switch key {
		case "AWS_SECRET_ACCESS_KEY", "GRAPHERD_WORKER_TOKEN":
			attrs = append(attrs, slog.String(key, maskSecret(fv.String())))
			continue
		case "AWS_ACCESS_KEY_ID":
			attrs = append(attrs, slog.String(key, maskKeyID(fv.String())))
			continue
		case "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS":
			attrs = append(attrs, slog.String(key, redactURLString(fv.String())))
			continue
		case "GRAPHERD_QUEUE_URL":
			// nats://user:password@host, token@host, or a list of them.
			urls := strings.Split(fv.String(), ",")
			for k := range urls {
				urls[k] = redactURLString(strings.TrimSpace(urls[k]))
			}
			attrs = append(attrs, slog.String(key, strings.Join(urls, ",")))
			continue
		}
		switch v := fv.Interface().(type) {
		case *url.URL:
			s := ""
			if v != nil {
				s = redactURL(v)
			}
			attrs = append(attrs, slog.String(key, s))
		case time.Duration:
			attrs = append(attrs, slog.String(key, v.String())) // "10s", not nanoseconds
		case []string:
			attrs = append(attrs, slog.Any(key, slices.Clone(v)))
		case []int:
			attrs = append(attrs, slog.Any(key, slices.Clone(v)))
		default:
			attrs = append(attrs, slog.Any(key, v))
		}
	}
	return attrs
}

// loader carries the state of one Load: raw values for error messages, the
// variables already reported (so one bad value yields one line) and the
// errors found.
type loader struct {
	fields map[string]reflect.StructField
	raw    map[string]string
	bad    map[string]bool
	errs   []error
}

// fail records a problem with key and marks it so later checks of the same
// variable stay quiet.
func (l *loader) fail(key, format string, args ...any) {
	l.bad[key] = true
	l.errs = append(l.errs, &VarError{Var: key, Reason: fmt.Sprintf(format, args...)})
}

// show quotes key's raw value for an error message: masked for secrets,
// with URL user information replaced and cut to a readable length.
func (l *loader) show(key string) string {
	v := l.raw[key]
	if key == "AWS_SECRET_ACCESS_KEY" || key == "GRAPHERD_WORKER_TOKEN" {
		v = maskSecret(v)
	} else if strings.Contains(v, "@") {
		v = redactURLString(v)
	}
	if utf8.RuneCountInString(v) > maxShownValue {
		r := []rune(v)
		v = string(r[:maxShownValue]) + "..."
	}
	return strconv.Quote(v)
}

// normalize turns a raw value into what the env parser expects: list
// separators unified to commas, milliseconds given a unit, the seed's boolean
// spellings mapped. It returns ok=false (and records the error) when the value
// can never parse; "" means unset.
func (l *loader) normalize(sf reflect.StructField, key, raw string) (string, bool) {
	if raw == "" {
		return "", true
	}
	switch {
	case sf.Tag.Get("unit") == "ms":
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				l.fail(key, "%s is too large a number of milliseconds", l.showValue(key, raw))
				return "", false
			}
			l.fail(key, "%s is not a number of milliseconds", l.showValue(key, raw))
			return "", false
		}
		if n > math.MaxInt64/int64(time.Millisecond) || n < math.MinInt64/int64(time.Millisecond) {
			l.fail(key, "%s is too large a number of milliseconds", l.showValue(key, raw))
			return "", false
		}
		return strconv.FormatInt(n, 10) + "ms", true
	case sf.Type.Kind() == reflect.Bool:
		switch strings.ToLower(raw) {
		case "true", "1":
			return "true", true
		case "false", "0":
			return "false", true
		}
		l.fail(key, "%s is not one of true, false, 1, 0", l.showValue(key, raw))
		return "", false
	case sf.Type.Kind() == reflect.Slice:
		parts := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		return strings.Join(parts, ","), true
	}
	return raw, true
}

// showValue is show for a value that may differ from the raw one (a
// default).
func (l *loader) showValue(key, v string) string {
	saved := l.raw[key]
	l.raw[key] = v
	defer func() { l.raw[key] = saved }()
	return l.show(key)
}

// parseErrors turns the env parser's errors, which name Go fields, into
// VarErrors naming the variable and the expected form.
func (l *loader) parseErrors(err error) {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		l.errs = append(l.errs, fmt.Errorf("load config: %w", err))
		return
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			l.errs = append(l.errs, fmt.Errorf("load config: %w", e))
			continue
		}
		sf, ok := reflect.TypeFor[Config]().FieldByName(pe.Name)
		key := envKey(sf)
		if !ok || key == "" {
			l.errs = append(l.errs, fmt.Errorf("load config: %w", e))
			continue
		}
		if l.bad[key] {
			continue
		}
		if errors.Is(pe.Err, strconv.ErrRange) {
			l.fail(key, "%s is out of range", l.show(key))
			continue
		}
		l.fail(key, "%s %s", l.show(key), expectedForm(sf.Type))
	}
}

// expectedForm says, for an error message, what a value of type t must look
// like.
func expectedForm(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "is not a duration such as 5s, 1m30s or 744h"
	case reflect.TypeFor[*url.URL]():
		return "is not a URL; want an http:// or https:// URL"
	case reflect.TypeFor[[]int]():
		return "is not a list of whole numbers"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "is not a whole number"
	default:
		return "cannot be parsed as " + t.String()
	}
}

// validate checks meanings and combinations, fills derived defaults and
// canonicalises enumerations. Variables already reported are skipped.
func (l *loader) validate(c *Config) {
	ok := func(key string) bool { return !l.bad[key] }

	if ok("PORT") && (c.Port < 0 || c.Port > 65535) {
		l.fail("PORT", "%s is not a port between 0 and 65535", l.show("PORT"))
	}
	if c.HTTPServerAddress == "" {
		if ok("PORT") {
			c.HTTPServerAddress = ":" + strconv.Itoa(c.Port)
		}
	} else if err := checkListenAddress(c.HTTPServerAddress); err != nil {
		l.fail("RUNTIME_HTTPSERVER_ADDRESS", "%s is not a host:port address: %v", l.show("RUNTIME_HTTPSERVER_ADDRESS"), err)
	}

	l.positive("GRAPH_PROGRESS_TIMEOUT", c.GraphProgressTimeout, "a number of milliseconds greater than 0")
	l.positive("DIGESTER_POLLING_INTERVAL", c.DigesterPollingInterval, "a number of milliseconds greater than 0")
	if ok("DIGESTER_POLLING_TIMEOUT") {
		switch {
		case c.DigesterPollingTimeout == -time.Millisecond:
			c.DigesterPollingTimeout = 0
		case c.DigesterPollingTimeout <= 0:
			l.fail("DIGESTER_POLLING_TIMEOUT", "%s must be a number of milliseconds greater than 0, or -1 to poll until the request ends", l.show("DIGESTER_POLLING_TIMEOUT"))
		}
	}

	l.endpoint("DIGESTER_ENDPOINT", c.DigesterEndpoint)
	l.endpoint("STREAM_APPLIANCE_ENDPOINT", c.StreamApplianceEndpoint)
	for _, key := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS"} {
		if v := l.raw[key]; v != "" {
			u, err := url.Parse(v)
			if err != nil {
				l.fail(key, "%s is not a URL; want an http:// or https:// URL", l.show(key))
				continue
			}
			l.endpoint(key, u)
		}
	}

	// Without USE_IAM, the SDK's default chain would be used anyway: an
	// operator who turned it off must say which credentials to use instead.
	if !c.UseIAM && ok("USE_IAM") && c.AWSAccessKeyID == "" && c.AWSSecretAccessKey == "" &&
		c.AWSCredentialsFile == "" && c.AWSCredentialsProfile == "" {
		l.fail("USE_IAM", "false needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_CREDENTIALS_FILE (and AWS_CREDENTIALS_PROFILE); set USE_IAM=true for the standard AWS credential chain")
	}
	if !c.UseIAM && ok("USE_IAM") && (c.AWSAccessKeyID == "") != (c.AWSSecretAccessKey == "") {
		if c.AWSAccessKeyID == "" {
			l.fail("AWS_ACCESS_KEY_ID", "required with AWS_SECRET_ACCESS_KEY when USE_IAM is false")
		} else {
			l.fail("AWS_SECRET_ACCESS_KEY", "required with AWS_ACCESS_KEY_ID when USE_IAM is false")
		}
	}

	s3Compatible := ok("AWS_ENDPOINT_URL") && ok("AWS_ENDPOINT_URL_S3") && c.S3Endpoint() != ""
	l.bucket("GRAPH_STORAGE_BUCKET", c.GraphStorageBucket, "GRAPH_STORAGE_BUCKET_REGION", &c.GraphStorageBucketRegion, s3Compatible)
	l.bucket("GRAPH_PROGRESS_BUCKET", c.GraphProgressBucket, "GRAPH_PROGRESS_BUCKET_REGION", &c.GraphProgressBucketRegion, s3Compatible)
	l.bucket("VPC_FLOW_LOGS_BUCKET", c.FlowLogsBucket, "VPC_FLOW_LOGS_BUCKET_REGION", &c.FlowLogsBucketRegion, s3Compatible)
	if c.FlowLogsDir != "" && c.FlowLogsBucket != "" {
		l.fail("FLOW_LOGS_DIR", "cannot be set together with VPC_FLOW_LOGS_BUCKET: choose one flow log source")
	}

	l.positive("RUNTIME_CONNSTATE_REPORTINTERVAL", c.ConnStateReportInterval, "a duration greater than 0")
	for _, name := range []struct {
		key string
		v   string
	}{
		{"RUNTIME_CONNSTATE_HIJACKEDCOUNTER", c.ConnStateHijackedCounter},
		{"RUNTIME_CONNSTATE_CLOSEDCOUNTER", c.ConnStateClosedCounter},
		{"RUNTIME_CONNSTATE_IDLEGAUGE", c.ConnStateIdleGauge},
		{"RUNTIME_CONNSTATE_IDLECOUNTER", c.ConnStateIdleCounter},
		{"RUNTIME_CONNSTATE_ACTIVEGAUGE", c.ConnStateActiveGauge},
		{"RUNTIME_CONNSTATE_ACTIVECOUNTER", c.ConnStateActiveCounter},
		{"RUNTIME_CONNSTATE_NEWGAUGE", c.ConnStateNewGauge},
		{"RUNTIME_CONNSTATE_NEWCOUNTER", c.ConnStateNewCounter},
	} {
		if strings.ContainsAny(name.v, "|:@#, \t\r\n") {
			l.fail(name.key, "%s is not a metric name: it must not contain '|', ':', '@', '#', ',' or spaces", l.show(name.key))
		}
	}

	c.LoggerOutput = l.oneOf("RUNTIME_LOGGER_OUTPUT", c.LoggerOutput, LoggerOutputStdout, LoggerOutputNull)
	c.LoggerLevel = l.oneOf("RUNTIME_LOGGER_LEVEL", c.LoggerLevel, "DEBUG", "INFO", "WARN", "ERROR")
	c.StatsOutput = l.oneOf("RUNTIME_STATS_OUTPUT", c.StatsOutput, StatsOutputNull, StatsOutputDatadog)
	l.between("RUNTIME_STATS_DATADOG_PACKETSIZE", int64(c.DatadogPacketSize), 1, maxUDPPayload)
	for _, tag := range c.DatadogTags {
		if strings.ContainsAny(tag, "|#@") {
			l.fail("RUNTIME_STATS_DATADOG_TAGS", "tag %q must not contain '|', '#' or '@'", tag)
			break
		}
	}
	l.positive("RUNTIME_STATS_DATADOG_FLUSHINTERVAL", c.DatadogFlushInterval, "a duration greater than 0")
	if ok("RUNTIME_STATS_DATADOG_ADDRESS") {
		if err := checkStatsdAddress(c.DatadogAddress); err != nil {
			l.fail("RUNTIME_STATS_DATADOG_ADDRESS", "%s is not a host:port or unix:// address: %v", l.show("RUNTIME_STATS_DATADOG_ADDRESS"), err)
		}
	}

	for i, s := range c.SignalsInstalled {
		if !strings.EqualFold(s, SignalsOS) {
			l.fail("RUNTIME_SIGNALS_INSTALLED", "%q is not a signal source: the only one is OS", s)
			break
		}
		c.SignalsInstalled[i] = SignalsOS
	}
	if ok("RUNTIME_SIGNALS_OS_SIGNALS") {
		for _, n := range c.OSSignals {
			if n < 1 || n > maxSignal {
				l.fail("RUNTIME_SIGNALS_OS_SIGNALS", "%d is not a signal number between 1 and %d", n, maxSignal)
				break
			}
		}
	}

	if strings.ContainsRune(c.DataDir, 0) {
		l.fail("GRAPHERD_DATA_DIR", "%s is not a folder name", l.show("GRAPHERD_DATA_DIR"))
	}
	l.between("GRAPHERD_WORKERS", int64(c.Workers), 1, maxWorkers)
	l.between("GRAPHERD_QUEUE_CAPACITY", int64(c.QueueCapacity), 1, maxQueueCapacity)
	if strings.ContainsRune(c.FlowLogsDir, 0) {
		l.fail("FLOW_LOGS_DIR", "%s is not a folder name", l.show("FLOW_LOGS_DIR"))
	}
	if strings.ContainsAny(c.FlowLogsPrefix, "\x00\r\n") {
		l.fail("VPC_FLOW_LOGS_PREFIX", "%s is not a key prefix", l.show("VPC_FLOW_LOGS_PREFIX"))
	}
	for _, a := range c.FlowLogsScanAccounts {
		if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
			l.fail("VPC_FLOW_LOGS_SCAN_ACCOUNTS", "%q is not a 12-digit AWS account id", a)
			break
		}
	}
	regionRE := regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	for _, r := range c.FlowLogsScanRegions {
		if !regionRE.MatchString(r) {
			l.fail("VPC_FLOW_LOGS_SCAN_REGIONS", "%q is not an AWS region such as us-east-1", r)
			break
		}
	}

	l.positive("GRAPHERD_MAX_WINDOW", c.MaxWindow, "a duration greater than 0")
	l.between("GRAPHERD_MAX_DIGEST_BYTES", c.MaxDigestBytes, 1, math.MaxInt64)
	l.between("GRAPHERD_MAX_LINE_BYTES", int64(c.MaxLineBytes), 1, maxLineBytesLimit)
	l.between("GRAPHERD_MAX_FLOWS", int64(c.MaxFlows), 1, math.MaxInt32)
	l.between("GRAPHERD_DIGEST_MEMORY_BYTES", c.DigestMemoryBytes, 1<<20, 1<<40)
	if strings.ContainsRune(c.SpillDir, 0) {
		l.fail("GRAPHERD_SPILL_DIR", "%s is not a folder name", l.show("GRAPHERD_SPILL_DIR"))
	}
	c.GraphStorageCompression = l.oneOf("GRAPH_STORAGE_COMPRESSION", strings.ToLower(c.GraphStorageCompression), CompressionOff, CompressionGzip)
	l.between("GRAPHERD_MAX_BODY_BYTES", c.MaxBodyBytes, 1, math.MaxInt64)
	l.positive("GRAPHERD_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, "a duration greater than 0")
	l.positive("GRAPHERD_HTTP_TIMEOUT", c.RequestTimeout, "a duration greater than 0")
	l.between("GRAPHERD_HTTP_RETRIES", int64(c.HTTPRetries), 0, maxHTTPRetries)
	l.positive("GRAPHERD_JOB_TIMEOUT", c.JobTimeout, "a duration greater than 0")
	if strings.ContainsAny(c.WorkerToken, " \t\r\n") {
		l.fail("GRAPHERD_WORKER_TOKEN", "must not contain spaces or line breaks")
	}
	c.Role = strings.ToLower(l.oneOf("GRAPHERD_ROLE", strings.ToLower(c.Role), RoleAll, RoleAPI, RoleWorker))
	if u := c.QueueURL; u != "" {
		if parsed, err := url.Parse(u); err != nil || parsed.Host == "" ||
			(parsed.Scheme != "nats" && parsed.Scheme != "tls" && parsed.Scheme != "http" && parsed.Scheme != "https") {
			l.fail("GRAPHERD_QUEUE_URL", "%s is not a nats:// (or tls://) address or an http(s):// SQS queue URL", l.show("GRAPHERD_QUEUE_URL"))
		}
	}
	if c.Role != RoleAll && c.QueueURL == "" && ok("GRAPHERD_ROLE") {
		l.fail("GRAPHERD_ROLE", "%s needs GRAPHERD_QUEUE_URL: API and worker processes apart share jobs through a queue engine", l.show("GRAPHERD_ROLE"))
	}
	l.between("GRAPHERD_QUEUE_MAX_DELIVER", int64(c.QueueMaxDeliver), 1, 1000)
	if !l.bad["GRAPHERD_QUEUE_ACK_WAIT"] && (c.QueueAckWait < 0 || c.QueueAckWait > 12*time.Hour) {
		l.fail("GRAPHERD_QUEUE_ACK_WAIT", "%s must be a duration from 0 (the engine's own) to 12h", l.show("GRAPHERD_QUEUE_ACK_WAIT"))
	}
	l.positive("GRAPHERD_QUEUE_RETRY_DELAY", c.QueueRetryDelay, "a duration greater than 0")
	l.between("GRAPHERD_VIEW_MAX_NODES", int64(c.ViewMaxNodes), 1, 10_000_000)
	l.between("GRAPHERD_VIEW_MAX_EDGES", int64(c.ViewMaxEdges), 1, 100_000_000)
	l.between("GRAPHERD_VIEW_MAX_SVG_NODES", int64(c.ViewMaxSVGNodes), 1, 1_000_000)
	l.between("GRAPHERD_VIEW_MAX_SVG_EDGES", int64(c.ViewMaxSVGEdges), 1, 10_000_000)
	l.positive("GRAPHERD_VIEW_SVG_TIMEOUT", c.ViewSVGTimeout, "a duration greater than 0")
}

// positive reports key unless d > 0.
func (l *loader) positive(key string, d time.Duration, want string) {
	if !l.bad[key] && d <= 0 {
		l.fail(key, "%s must be %s", l.show(key), want)
	}
}

// between reports key unless lo <= n <= hi.
func (l *loader) between(key string, n, lo, hi int64) {
	if !l.bad[key] && (n < lo || n > hi) {
		if hi == math.MaxInt64 {
			l.fail(key, "%s must be at least %d", l.show(key), lo)
			return
		}
		l.fail(key, "%s must be between %d and %d", l.show(key), lo, hi)
	}
}

// oneOf returns v in its canonical spelling if it is one of choices (case
// does not matter), and reports key otherwise.
func (l *loader) oneOf(key, v string, choices ...string) string {
	for _, c := range choices {
		if strings.EqualFold(v, c) {
			return c
		}
	}
	if !l.bad[key] {
		l.fail(key, "%s is not one of %s", l.show(key), strings.Join(choices, ", "))
	}
	return v
}

// endpoint reports key unless u is nil or an absolute http(s) URL with a
// host.
func (l *loader) endpoint(key string, u *url.URL) {
	if u == nil || l.bad[key] {
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		l.fail(key, "%s is not an http:// or https:// URL", l.show(key))
		return
	}
	if u.Host == "" || u.Opaque != "" {
		l.fail(key, "%s has no host", l.show(key))
	}
}

// bucket checks a bucket name and its paired region: the region is required
// with the bucket, except on an S3-compatible server where it defaults to
// DefaultS3Region.
func (l *loader) bucket(key, name, regionKey string, region *string, s3Compatible bool) {
	if strings.ContainsAny(name, "/ \t\r\n") {
		l.fail(key, "%s is not a bucket name", l.show(key))
	}
	if strings.ContainsAny(*region, "/ \t\r\n") {
		l.fail(regionKey, "%s is not a region name", l.show(regionKey))
		return
	}
	if name == "" || *region != "" {
		return
	}
	if s3Compatible {
		*region = DefaultS3Region
		return
	}
	l.fail(regionKey, "required when %s is set (or set AWS_ENDPOINT_URL_S3 for an S3-compatible server)", key)
}

// checkListenAddress accepts host:port with a numeric port, the form
// net.Listen takes.
func checkListenAddress(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("split host and port: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number between 0 and 65535", port)
	}
	return nil
}

// checkStatsdAddress accepts what the DogStatsD client dials: host:port, or
// a unix socket URL.
func checkStatsdAddress(addr string) error {
	for _, p := range []string{"unix://", "unixgram://", "unixstream://"} {
		if rest, ok := strings.CutPrefix(addr, p); ok {
			if rest == "" {
				return errors.New("socket path is empty")
			}
			return nil
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("split host and port: %w", err)
	}
	if host == "" {
		return errors.New("host is empty")
	}
	return checkListenAddress(addr)
}

// fieldsByKey maps each variable name to its Config field.
func fieldsByKey() map[string]reflect.StructField {
	t := reflect.TypeFor[Config]()
	m := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		if key := envKey(t.Field(i)); key != "" {
			m[key] = t.Field(i)
		}
	}
	return m
}

// envKey returns the variable name in sf's env tag, "" when it has none.
func envKey(sf reflect.StructField) string {
	key, _, _ := strings.Cut(sf.Tag.Get("env"), ",")
	if key == "-" {
		return ""
	}
	return key
}

// maskSecret hides a secret entirely, showing only whether it is set.
func maskSecret(s string) string {
	if s == "" {
		return ""
	}
	return "[REDACTED]"
}

// maskKeyID keeps the first four characters of an access key id (its type,
// e.g. AKIA), enough to tell keys apart in a log.
func maskKeyID(s string) string {
	if len(s) <= 4 {
		return maskSecret(s)
	}
	return s[:4] + "[REDACTED]"
}

// redactURL returns u with any user information replaced.
func redactURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

// redactURLString is redactURL for a URL in a string; a value that does not
// parse but has an @ is masked whole, since it may hold a password.
func redactURLString(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err == nil && u.User != nil {
		return redactURL(u)
	}
	if strings.Contains(s, "@") {
		// Unparsed or opaque ("user:pass@host" reads as scheme "user"):
		// there is no telling where a password ends, so hide it all.
		return "[REDACTED]"
	}
	return s
}
