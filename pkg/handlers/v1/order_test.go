package v1

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/mock/gomock"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// These tests pin the order of calls across the module boundary, which is
// what makes the API's promises hold: the mark is set before the job is
// queued, its token travels in the job, and it is removed when queuing
// fails. The runner's own order is pinned in package worker.

const orderQuery = "start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z"

var orderID = ComputeID(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC))

func TestPostMarksBeforeQueuing(t *testing.T) {
	t.Parallel()
	ctrl := gomock.NewController(t)
	storage, marker, queuer := NewMockStorage(ctrl), NewMockMarker(ctrl), NewMockQueuer(ctrl)
	gomock.InOrder(
		storage.EXPECT().Exists(gomock.Any(), orderID).Return(false, nil),
		marker.EXPECT().Mark(gomock.Any(), orderID).Return("api-token", nil),
		queuer.EXPECT().Queue(gomock.Any(), gomock.Cond(func(j types.Job) bool { return j.ID == orderID && j.Token == "api-token" })).Return(nil),
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
		marker.EXPECT().Mark(gomock.Any(), orderID).Return("api-token", nil),
		queuer.EXPECT().Queue(gomock.Any(), gomock.Any()).Return(errors.New("bus down")),
		marker.EXPECT().Unmark(gomock.Any(), orderID, "api-token").Return(nil),
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
		marker.EXPECT().Mark(gomock.Any(), orderID).Return("", types.ErrInProgress),
	)
	h := &Graph{Storage: storage, Marker: marker, Queuer: queuer}
	rec := httptest.NewRecorder()
	h.Post(rec, httptest.NewRequest(http.MethodPost, "/?"+orderQuery, nil))
	require.Equal(t, http.StatusConflict, rec.Code)
}
