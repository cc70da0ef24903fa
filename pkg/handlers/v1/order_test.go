package v1

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/mock/gomock"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// These tests pin the order of calls across the module boundary, which is
// what makes the API's promises hold: the mark is set before the job is
// queued and removed when queuing fails; the worker clears the mark only
// after the graph is stored, and records a failure instead when it is not.

const orderQuery = "start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z"

var orderID = ComputeID(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC))

func TestPostMarksBeforeQueuing(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	storage, marker, queuer := NewMockStorage(ctrl), NewMockMarker(ctrl), NewMockQueuer(ctrl)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Mark(gomock.Any(), orderID).Return(nil),
		queuer.EXPECT().Queue(gomock.Any(), gomock.Cond(func(j types.Job) bool { return j.ID == orderID })).Return(nil),
	)
	h := &Graph{Storage: storage, Marker: marker, Queuer: queuer}
	rec := httptest.NewRecorder()
	h.Post(rec, httptest.NewRequest(http.MethodPost, "/?"+orderQuery, nil))
	require.Equal(t, http.StatusAccepted, rec.Code)
}

func TestPostUnmarksWhenQueuingFails(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	storage, marker, queuer := NewMockStorage(ctrl), NewMockMarker(ctrl), NewMockQueuer(ctrl)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Mark(gomock.Any(), orderID).Return(nil),
		queuer.EXPECT().Queue(gomock.Any(), gomock.Any()).Return(errors.New("bus down")),
		marker.EXPECT().Unmark(gomock.Any(), orderID).Return(nil),
	)
	h := &Graph{Storage: storage, Marker: marker, Queuer: queuer}
	rec := httptest.NewRecorder()
	h.Post(rec, httptest.NewRequest(http.MethodPost, "/?"+orderQuery, nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
}

func TestPostQueuesNothingWhenMarkIsTaken(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	storage, marker, queuer := NewMockStorage(ctrl), NewMockMarker(ctrl), NewMockQueuer(ctrl)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Mark(gomock.Any(), orderID).Return(types.ErrInProgress),
	)
	h := &Graph{Storage: storage, Marker: marker, Queuer: queuer}
	rec := httptest.NewRecorder()
	h.Post(rec, httptest.NewRequest(http.MethodPost, "/?"+orderQuery, nil))
	require.Equal(t, http.StatusConflict, rec.Code)
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

func TestWorkerUnmarksOnlyAfterStoring(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	storage, marker, digester := NewMockStorage(ctrl), NewMockMarker(ctrl), NewMockDigester(ctrl)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Mark(gomock.Any(), orderID).Return(types.ErrInProgress),
		digester.EXPECT().Digest(gomock.Any(), gomock.Any(), gomock.Any()).Return(io.NopCloser(strings.NewReader("digest")), nil),
		storage.EXPECT().Store(gomock.Any(), orderID, gomock.Any()).DoAndReturn(func(_ context.Context, _ string, r io.Reader) error {
			b, err := io.ReadAll(r)
			require.Equal(t, "digest", string(b))
			return err
		}),
		marker.EXPECT().Unmark(gomock.Any(), orderID).Return(nil),
	)
	w := &Worker{Storage: storage, Marker: marker, Digester: digester, Grapher: copyGraph}
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/t/e", strings.NewReader(jobFor(t))))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
}

func TestWorkerRecordsFailureInsteadOfUnmarking(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	storage, marker, digester := NewMockStorage(ctrl), NewMockMarker(ctrl), NewMockDigester(ctrl)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Mark(gomock.Any(), orderID).Return(nil),
		digester.EXPECT().Digest(gomock.Any(), gomock.Any(), gomock.Any()).Return(io.NopCloser(strings.NewReader("digest")), nil),
		storage.EXPECT().Store(gomock.Any(), orderID, gomock.Any()).DoAndReturn(func(_ context.Context, _ string, r io.Reader) error {
			_, _ = io.ReadAll(r)
			return errors.New("s3 down")
		}),
		marker.EXPECT().Fail(gomock.Any(), orderID, gomock.Cond(func(reason string) bool {
			return strings.Contains(reason, "s3 down")
		})).Return(nil),
	)
	w := &Worker{Storage: storage, Marker: marker, Digester: digester, Grapher: copyGraph}
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/t/e", strings.NewReader(jobFor(t))))
	require.Equal(t, http.StatusInternalServerError, rec.Code, "a storage failure may be retried")
}

func TestWorkerSkipsExistingGraph(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	storage, marker, digester := NewMockStorage(ctrl), NewMockMarker(ctrl), NewMockDigester(ctrl)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(true, nil),
		marker.EXPECT().Unmark(gomock.Any(), orderID).Return(nil),
	)
	w := &Worker{Storage: storage, Marker: marker, Digester: digester, Grapher: copyGraph}
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/t/e", strings.NewReader(jobFor(t))))
	require.Equal(t, http.StatusNoContent, rec.Code)
}

func jobFor(t *testing.T) string {
	t.Helper()
	b, err := EncodeJob(types.Job{ID: orderID, Start: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Stop: time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	return string(b)
}
