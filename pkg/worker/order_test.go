package worker

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/mock/gomock"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types/typesmock"
)

// These tests pin the order of the runner's calls across the module
// boundary: it claims the API's mark with the job's token, clears its own
// mark only after the graph is stored, and records a failure instead when
// it is not.

const orderID = "3f5c5ef4-9b2a-5d55-9e2f-2a5f0d1f2c3b"

func orderJob() types.Job {
	return types.Job{ID: orderID, Start: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Stop: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC), Token: "api-token"}
}

// mockRunner returns a runner on mock modules and the copying grapher.
func mockRunner(t *testing.T) (*typesmock.MockStorage, *typesmock.MockMarker, *typesmock.MockDigester, *Runner) {
	ctrl := gomock.NewController(t)
	storage, marker, digester := typesmock.NewMockStorage(ctrl), typesmock.NewMockMarker(ctrl), typesmock.NewMockDigester(ctrl)
	return storage, marker, digester, &Runner{Storage: storage, Marker: marker, Digester: digester, Grapher: copyGraph}
}

type graphFunc func(ctx context.Context, w io.Writer, digest io.Reader) (types.GraphStats, error)

func (f graphFunc) Graph(ctx context.Context, w io.Writer, digest io.Reader) (types.GraphStats, error) {
	return f(ctx, w, digest)
}

// copyGraph "converts" by copying, so the order test does not depend on the
// grapher's output.
var copyGraph = graphFunc(func(_ context.Context, w io.Writer, digest io.Reader) (types.GraphStats, error) {
	n, err := io.Copy(w, digest)
	return types.GraphStats{Lines: n}, err
})

func TestRunnerUnmarksOnlyAfterStoring(t *testing.T) {
	t.Parallel()
	storage, marker, digester, r := mockRunner(t)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Claim(gomock.Any(), orderID, "api-token").Return("run-token", nil),
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil), // looked at again once claimed
		digester.EXPECT().Digest(gomock.Any(), gomock.Any(), gomock.Any()).Return(io.NopCloser(strings.NewReader("digest")), nil),
		storage.EXPECT().Store(gomock.Any(), orderID, gomock.Any()).DoAndReturn(func(_ context.Context, _ string, r io.Reader) error {
			b, err := io.ReadAll(r)
			require.Equal(t, "digest", string(b))
			return err
		}),
		marker.EXPECT().Unmark(gomock.Any(), orderID, "run-token").Return(nil),
	)
	res := r.Handle(context.Background(), orderJob(), Delivery{})
	require.Equal(t, Done, res.Outcome, "%v", res.Err)
}

func TestRunnerRecordsFailureInsteadOfUnmarking(t *testing.T) {
	t.Parallel()
	storage, marker, digester, r := mockRunner(t)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Claim(gomock.Any(), orderID, "api-token").Return("run-token", nil),
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil), // looked at again once claimed
		digester.EXPECT().Digest(gomock.Any(), gomock.Any(), gomock.Any()).Return(io.NopCloser(strings.NewReader("digest")), nil),
		storage.EXPECT().Store(gomock.Any(), orderID, gomock.Any()).DoAndReturn(func(_ context.Context, _ string, r io.Reader) error {
			_, _ = io.ReadAll(r)
			return errors.New("s3 down")
		}),
		marker.EXPECT().Fail(gomock.Any(), orderID, "run-token", "storage failed while storing the graph").Return(nil),
	)
	res := r.Handle(context.Background(), orderJob(), Delivery{})
	require.Equal(t, Retry, res.Outcome, "a storage failure may be retried")
	require.ErrorContains(t, res.Err, "s3 down", "the full error is there for the log")
}

func TestRunnerSkipsExistingGraph(t *testing.T) {
	t.Parallel()
	storage, marker, _, r := mockRunner(t)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(true, nil),
		marker.EXPECT().Unmark(gomock.Any(), orderID, "api-token").Return(nil),
	)
	require.Equal(t, Done, r.Handle(context.Background(), orderJob(), Delivery{}).Outcome)
}

func TestRunnerLeavesAWindowAnotherRunHolds(t *testing.T) {
	t.Parallel()
	storage, marker, _, r := mockRunner(t)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Claim(gomock.Any(), orderID, "api-token").Return("", types.ErrInProgress),
	)
	res := r.Handle(context.Background(), orderJob(), Delivery{})
	require.Equal(t, Busy, res.Outcome)
	require.Positive(t, res.RetryAfter)
}

func TestRunnerReleasesAJobItNeverStarted(t *testing.T) {
	t.Parallel()
	_, marker, _, r := mockRunner(t)
	marker.EXPECT().Unmark(gomock.Any(), orderID, "api-token").Return(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Equal(t, Retry, r.Handle(ctx, orderJob(), Delivery{}).Outcome)
}
