package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/digester"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/grapher"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/worker"
)

const (
	jobID    = "6357a262-b301-5f60-a2d4-644e10c814ea"
	sampleV2 = "2 123456789012 eni-0a1 10.0.0.1 10.0.0.2 0 443 6 10 840 1793527200 1793527260 ACCEPT OK\n"
)

type digestFunc func(ctx context.Context) (io.ReadCloser, error)

func (f digestFunc) Digest(ctx context.Context, _, _ time.Time) (io.ReadCloser, error) { return f(ctx) }

func digestOf(s string) digestFunc {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func failing(err error) digestFunc {
	return func(context.Context) (io.ReadCloser, error) { return nil, err }
}

// newRunner is a runner on in-memory modules and the real DOT grapher.
func newRunner(d types.Digester) (*worker.Runner, *marker.Memory, *storage.Memory) {
	m, s := &marker.Memory{Timeout: time.Minute}, &storage.Memory{}
	return &worker.Runner{Storage: s, Marker: m, Digester: d, Grapher: &grapher.DOT{}, MaxDigestBytes: 1 << 20}, m, s
}

func job() types.Job {
	return types.Job{ID: jobID, Start: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Stop: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)}
}

// TestRunnerFailureReasons runs a job into each failure class and checks
// the outcome and the public reason of the failure record: short, fixed,
// never the cause's text.
func TestRunnerFailureReasons(t *testing.T) {
	t.Parallel()
	const secret = "bucket-internal-77.s3.eu-west-1.amazonaws.com request-id 4442587FB7D0A2F9"
	tests := []struct {
		name     string
		digester types.Digester
		outcome  worker.Outcome
		reason   string
	}{
		{"digester down", failing(errors.New("dial " + secret)), worker.Retry, "the digester failed"},
		{"digester timeout", failing(fmt.Errorf("poll %s: %w", secret, context.DeadlineExceeded)), worker.Retry, "the digester did not answer in time"},
		{"no flow logs", failing(fmt.Errorf("%w under %s", digester.ErrNoFlowLogs, secret)), worker.Permanent, "no flow logs in this window"},
		{"digester status", failing(fmt.Errorf("%s: %w", secret, &digester.StatusError{Op: "create digest", Status: 500})), worker.Retry, "the digester answered 500"},
		{"no source", failing(fmt.Errorf("%s: %w", secret, types.ErrNoSource)), worker.Permanent, "no flow log source is configured: set FLOW_LOGS_DIR, VPC_FLOW_LOGS_BUCKET or DIGESTER_ENDPOINT"},
		{"malformed", digestOf(strings.Repeat("2 garbage "+secret+"\n", 12)), worker.Permanent, "the digest is malformed: 0 usable lines of 12"},
		{"too large", digestOf(strings.Repeat(sampleV2, 20000)), worker.Permanent, "the digest is larger than the limit of 1048576 bytes"},
		{"corrupt", failing(types.Permanent(fmt.Errorf("%s: gzip: %w", secret, types.ErrMalformedDigest))), worker.Permanent, "the digest is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, m, _ := newRunner(tt.digester)
			res := r.Handle(context.Background(), job(), worker.Delivery{})
			require.Equal(t, tt.outcome.String(), res.Outcome.String(), "%v", res.Err)
			mark, err := m.Check(context.Background(), jobID)
			require.NoError(t, err)
			require.Equal(t, types.MarkFailed, mark.State)
			require.Equal(t, tt.reason, mark.Reason)
			require.Equal(t, tt.reason, worker.PublicReason(res.Err))
			require.NotContains(t, worker.PublicReason(res.Err), "amazonaws")
		})
	}
}

// TestRunnerLastTry records a retryable failure on the transport's last
// delivery as final, saying how many tries were made.
func TestRunnerLastTry(t *testing.T) {
	t.Parallel()
	r, m, _ := newRunner(failing(errors.New("503 from digesterd")))
	res := r.Handle(context.Background(), job(), worker.Delivery{Attempt: 5, MaxAttempts: 5})
	require.Equal(t, worker.Retry, res.Outcome, "the transport moves it to its dead-letter destination")
	mark, err := m.Check(context.Background(), jobID)
	require.NoError(t, err)
	require.Equal(t, "gave up after 5 tries: the digester failed", mark.Reason)

	res = r.Handle(context.Background(), job(), worker.Delivery{Attempt: 2, MaxAttempts: 5})
	require.Equal(t, worker.Retry, res.Outcome)
	mark, err = m.Check(context.Background(), jobID)
	require.NoError(t, err)
	require.Equal(t, "the digester failed", mark.Reason)
}

// TestRunnerJobTimeout fails a job that outlives JobTimeout with that
// reason, even though the digester only saw its context cancelled.
func TestRunnerJobTimeout(t *testing.T) {
	t.Parallel()
	r, m, s := newRunner(digestFunc(func(ctx context.Context) (io.ReadCloser, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("poll: %w", ctx.Err())
	}))
	r.JobTimeout = 50 * time.Millisecond
	res := r.Handle(context.Background(), job(), worker.Delivery{})
	require.Equal(t, worker.Permanent, res.Outcome)
	mark, err := m.Check(context.Background(), jobID)
	require.NoError(t, err)
	require.Equal(t, "the job took longer than GRAPHERD_JOB_TIMEOUT (50ms)", mark.Reason)
	ok, err := s.Exists(context.Background(), jobID)
	require.NoError(t, err)
	require.False(t, ok)
}

// TestRunnerTakesOverTheAPIsMark runs a job carrying the token of the mark
// the API set: the runner claims it, and a second delivery of the same job
// while the first runs is Busy, not a second build.
func TestRunnerTakesOverTheAPIsMark(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	r, m, s := newRunner(digestFunc(func(context.Context) (io.ReadCloser, error) {
		started <- struct{}{}
		<-release
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	}))
	token, err := m.Mark(context.Background(), jobID)
	require.NoError(t, err)
	j := job()
	j.Token = token

	first := make(chan worker.Result, 1)
	go func() { first <- r.Handle(context.Background(), j, worker.Delivery{}) }()
	<-started
	res := r.Handle(context.Background(), j, worker.Delivery{})
	require.Equal(t, worker.Busy, res.Outcome)
	require.ErrorIs(t, m.Unmark(context.Background(), jobID, token), types.ErrNotOwner, "the API's token owns nothing any more")
	close(release)
	require.Equal(t, worker.Done, (<-first).Outcome)
	ok, err := s.Exists(context.Background(), jobID)
	require.NoError(t, err)
	require.True(t, ok)
	mark, err := m.Check(context.Background(), jobID)
	require.NoError(t, err)
	require.Equal(t, types.MarkNone, mark.State, "the runner cleared its own mark")
	require.Empty(t, started, "one build")
}

// TestRunnerStaleRunLeavesTheNewMark lets a job's mark expire and another
// run take the window: the stale run's failure neither clears nor fails the
// newer run's mark.
func TestRunnerStaleRunLeavesTheNewMark(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	fail := make(chan struct{})
	r, m, _ := newRunner(digestFunc(func(context.Context) (io.ReadCloser, error) {
		<-fail
		return nil, errors.New("digesterd lost")
	}))
	m.Timeout, m.Now = time.Minute, clock
	done := make(chan worker.Result, 1)
	go func() { done <- r.Handle(context.Background(), job(), worker.Delivery{}) }()
	require.Eventually(t, func() bool {
		mark, err := m.Check(context.Background(), jobID)
		return err == nil && mark.State == types.MarkInProgress
	}, 5*time.Second, time.Millisecond)

	now = now.Add(2 * time.Minute) // the stale run stopped refreshing
	newer, err := m.Mark(context.Background(), jobID)
	require.NoError(t, err)
	close(fail)
	require.Equal(t, worker.Retry, (<-done).Outcome)
	mark, err := m.Check(context.Background(), jobID)
	require.NoError(t, err)
	require.Equal(t, types.MarkInProgress, mark.State, "the newer run's mark stands")
	require.NoError(t, m.Unmark(context.Background(), jobID, newer))
}

// TestRunnerBuiltinDigestIsBoundByFlows runs jobs on the built-in
// digester, whose digest reaches the grapher as records: a window whose
// digest text would pass MaxDigestBytes (1 MiB here) is drawn whole, and
// MaxFlows, not the bytes, bounds it.
func TestRunnerBuiltinDigestIsBoundByFlows(t *testing.T) {
	t.Parallel()
	const flows = 20000 // about 1.7 MB of digest text
	var sb strings.Builder
	for i := range flows {
		fmt.Fprintf(&sb, "2 123456789012 eni-0a1 10.0.%d.%d 10.0.0.2 %d 443 6 10 840 1793527200 1793527260 ACCEPT OK\n",
			i/250, i%250+1, 1024+i/1000)
	}
	dir := t.TempDir()
	logs := filepath.Join(dir, "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/01")
	require.NoError(t, os.MkdirAll(logs, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(logs,
		"123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20261101T1000Z_0badc0de.log"), []byte(sb.String()), 0o644))

	b := &digester.Builtin{Source: digester.Dir{Path: dir}}
	r, _, s := newRunner(b)
	res := r.Handle(context.Background(), job(), worker.Delivery{})
	require.Equal(t, worker.Done.String(), res.Outcome.String(), "%v", res.Err)
	rc, err := s.Get(context.Background(), jobID)
	require.NoError(t, err)
	graph, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, flows, strings.Count(string(graph), " -> "), "every flow is an edge")

	b.MaxFlows = flows - 1
	r, m, _ := newRunner(b)
	res = r.Handle(context.Background(), job(), worker.Delivery{})
	require.Equal(t, worker.Permanent.String(), res.Outcome.String(), "%v", res.Err)
	mark, err := m.Check(context.Background(), jobID)
	require.NoError(t, err)
	require.Equal(t, "the window holds more distinct flows than GRAPHERD_MAX_FLOWS allows: ask for a shorter window or raise the bound", mark.Reason)
}

// finishingElsewhere is storage where another run stores the graph, and
// clears its mark, just after the first look finds none: between the
// runner's look and its claim of the mark.
type finishingElsewhere struct {
	*storage.Memory
	looked bool
}

func (s *finishingElsewhere) Exists(ctx context.Context, id string) (bool, error) {
	if !s.looked {
		s.looked = true
		return false, s.Memory.Store(ctx, id, strings.NewReader("digraph {}\n"))
	}
	return s.Memory.Exists(ctx, id)
}

// TestRunnerLooksAgainAfterClaiming delivers a job twice, the second copy
// finding no graph just before the first copy's run stores it and clears
// its mark: the second claims a free mark, and must see the graph then
// rather than make it a second time.
func TestRunnerLooksAgainAfterClaiming(t *testing.T) {
	t.Parallel()
	digests := 0
	r, m, _ := newRunner(digestFunc(func(context.Context) (io.ReadCloser, error) {
		digests++
		return io.NopCloser(strings.NewReader(sampleV2)), nil
	}))
	s := &finishingElsewhere{Memory: &storage.Memory{}}
	r.Storage = s
	res := r.Handle(context.Background(), job(), worker.Delivery{})
	require.Equal(t, worker.Done, res.Outcome, "%v", res.Err)
	require.Zero(t, digests, "the graph was made again")
	mark, err := m.Check(context.Background(), jobID)
	require.NoError(t, err)
	require.Equal(t, types.MarkNone, mark.State, "the claimed mark is cleared")
	got, err := s.Get(context.Background(), jobID)
	require.NoError(t, err)
	body, _ := io.ReadAll(got)
	require.Equal(t, "digraph {}\n", string(body), "the other run's graph stands")
}
