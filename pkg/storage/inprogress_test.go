package storage_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker/markertest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const markTimeout = time.Minute

// decoratorBackends builds an InProgress over each real storage and marker
// pair it is deployed with.
var decoratorBackends = []struct {
	name string
	new  func(t *testing.T, clock *markertest.Clock) (*storage.InProgress, types.Marker)
}{
	{"memory", func(t *testing.T, clock *markertest.Clock) (*storage.InProgress, types.Marker) {
		m := &marker.Memory{Timeout: markTimeout, Now: clock.Now}
		return &storage.InProgress{Storage: &storage.Memory{}, Marker: m}, m
	}},
	{"file", func(t *testing.T, clock *markertest.Clock) (*storage.InProgress, types.Marker) {
		m := &marker.File{Dir: t.TempDir(), Timeout: markTimeout, Now: clock.Now}
		return &storage.InProgress{Storage: &storage.File{Dir: t.TempDir()}, Marker: m}, m
	}},
	{"s3", func(t *testing.T, clock *markertest.Clock) (*storage.InProgress, types.Marker) {
		srv := s3test.Start(t)
		client := srv.Client(t)
		m := &marker.S3{Bucket: srv.NewBucket(t), Client: client, Timeout: markTimeout, Now: clock.Now}
		return &storage.InProgress{Storage: &storage.S3{Bucket: srv.NewBucket(t), Client: client}, Marker: m}, m
	}},
}

func TestInProgress(t *testing.T) {
	t.Parallel()
	start := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		setup      func(t *testing.T, s types.Storage, m types.Marker, clock *markertest.Clock, id string)
		wantGraph  string
		wantErr    error
		wantReason string
	}{
		{
			name:    "nothing",
			setup:   func(*testing.T, types.Storage, types.Marker, *markertest.Clock, string) {},
			wantErr: types.ErrNotFound,
		},
		{
			name: "in progress",
			setup: func(t *testing.T, _ types.Storage, m types.Marker, _ *markertest.Clock, id string) {
				require.NoError(t, second(m.Mark(context.Background(), id)))
			},
			wantErr: types.ErrInProgress,
		},
		{
			name: "in progress until just before the timeout",
			setup: func(t *testing.T, _ types.Storage, m types.Marker, c *markertest.Clock, id string) {
				require.NoError(t, second(m.Mark(context.Background(), id)))
				c.Advance(markTimeout - time.Nanosecond)
			},
			wantErr: types.ErrInProgress,
		},
		{
			name: "expired mark",
			setup: func(t *testing.T, _ types.Storage, m types.Marker, c *markertest.Clock, id string) {
				require.NoError(t, second(m.Mark(context.Background(), id)))
				c.Advance(markTimeout)
			},
			wantErr: types.ErrNotFound,
		},
		{
			name: "unmarked",
			setup: func(t *testing.T, _ types.Storage, m types.Marker, _ *markertest.Clock, id string) {
				token, err := m.Mark(context.Background(), id)
				require.NoError(t, err)
				require.NoError(t, m.Unmark(context.Background(), id, token))
			},
			wantErr: types.ErrNotFound,
		},
		{
			name: "failed",
			setup: func(t *testing.T, _ types.Storage, m types.Marker, c *markertest.Clock, id string) {
				token, err := m.Mark(context.Background(), id)
				require.NoError(t, err)
				require.NoError(t, m.Fail(context.Background(), id, token, "digester answered 500"))
				c.Advance(10 * markTimeout) // failure records do not expire
			},
			wantErr:    types.ErrFailed,
			wantReason: "digester answered 500",
		},
		{
			name: "stored graph wins over a live mark",
			setup: func(t *testing.T, s types.Storage, m types.Marker, _ *markertest.Clock, id string) {
				require.NoError(t, second(m.Mark(context.Background(), id)))
				require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph { done }")))
			},
			wantGraph: "digraph { done }",
		},
		{
			name: "stored graph wins over a failure record",
			setup: func(t *testing.T, s types.Storage, m types.Marker, _ *markertest.Clock, id string) {
				require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph { done }")))
				require.NoError(t, m.Fail(context.Background(), id, "t1", "late failure of a duplicate job"))
			},
			wantGraph: "digraph { done }",
		},
	}
	for _, backend := range decoratorBackends {
		t.Run(backend.name, func(t *testing.T) {
			t.Parallel()
			clock := markertest.NewClock(start)
			s, m := backend.new(t, clock)
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					id := uuid.NewString()
					clock.Set(start)
					tc.setup(t, s, m, clock, id)

					ok, existsErr := s.Exists(context.Background(), id)
					rc, getErr := s.Get(context.Background(), id)
					if tc.wantErr == nil {
						require.NoError(t, existsErr)
						require.True(t, ok)
						require.NoError(t, getErr)
						b, err := io.ReadAll(rc)
						require.NoError(t, err)
						require.NoError(t, rc.Close())
						require.Equal(t, tc.wantGraph, string(b))
						return
					}
					require.False(t, ok)
					require.Nil(t, rc)
					require.ErrorIs(t, getErr, tc.wantErr)
					if errors.Is(tc.wantErr, types.ErrNotFound) {
						require.NoError(t, existsErr, "Exists reports a missing graph as false, not as an error")
					} else {
						require.ErrorIs(t, existsErr, tc.wantErr)
					}
					if tc.wantReason != "" {
						for _, err := range []error{getErr, existsErr} {
							var failed *types.FailedError
							require.ErrorAs(t, err, &failed)
							require.Equal(t, id, failed.ID)
							require.Equal(t, tc.wantReason, failed.Reason)
							require.True(t, failed.At.Equal(start), "failure time %s, want %s", failed.At, start)
						}
					}
				})
			}
		})
	}
}

// brokenMarker fails every call, as a marker whose store is down would.
type brokenMarker struct{ err error }

func (b brokenMarker) Mark(context.Context, string) (string, error)          { return "", b.err }
func (b brokenMarker) Claim(context.Context, string, string) (string, error) { return "", b.err }
func (b brokenMarker) Unmark(context.Context, string, string) error          { return b.err }
func (b brokenMarker) Refresh(context.Context, string, string) error         { return b.err }
func (b brokenMarker) Fail(context.Context, string, string, string) error    { return b.err }
func (b brokenMarker) Check(context.Context, string) (types.Mark, error) {
	return types.Mark{}, b.err
}

// brokenStorage fails every call, as a storage that is down would.
type brokenStorage struct{ err error }

func (b brokenStorage) Get(context.Context, string) (io.ReadCloser, error) { return nil, b.err }
func (b brokenStorage) Exists(context.Context, string) (bool, error)       { return false, b.err }
func (b brokenStorage) Store(context.Context, string, io.Reader) error     { return b.err }

func TestInProgressErrors(t *testing.T) {
	t.Parallel()
	errDown := errors.New("dependency down")
	tests := []struct {
		name    string
		s       *storage.InProgress
		wantErr error
		notErr  error
	}{
		{
			name:    "marker failure is reported, not hidden as not found",
			s:       &storage.InProgress{Storage: &storage.Memory{}, Marker: brokenMarker{err: errDown}},
			wantErr: errDown,
			notErr:  types.ErrNotFound,
		},
		{
			name:    "storage failure is reported without asking the marker",
			s:       &storage.InProgress{Storage: brokenStorage{err: errDown}, Marker: brokenMarker{err: errors.New("must not be asked")}},
			wantErr: errDown,
		},
		{
			name:    "invalid id",
			s:       &storage.InProgress{Storage: &storage.Memory{}, Marker: &marker.Memory{}},
			wantErr: types.ErrInvalidInput,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if errors.Is(tc.wantErr, types.ErrInvalidInput) {
				id = "../escape"
			}
			_, err := tc.s.Get(context.Background(), id)
			require.ErrorIs(t, err, tc.wantErr)
			if tc.notErr != nil {
				require.NotErrorIs(t, err, tc.notErr)
			}
			_, err = tc.s.Exists(context.Background(), id)
			require.ErrorIs(t, err, tc.wantErr)
		})
	}
}

// TestInProgressStorePassesThrough shows Store is the wrapped storage's and
// leaves the mark alone: clearing it is the worker's job.
func TestInProgressStorePassesThrough(t *testing.T) {
	t.Parallel()
	m := &marker.Memory{Timeout: time.Hour}
	inner := &storage.Memory{}
	s := &storage.InProgress{Storage: inner, Marker: m}
	id := uuid.NewString()
	require.NoError(t, second(m.Mark(context.Background(), id)))
	require.NoError(t, s.Store(context.Background(), id, strings.NewReader("digraph {}")))
	ok, err := inner.Exists(context.Background(), id)
	require.NoError(t, err)
	require.True(t, ok)
	mark, err := m.Check(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, types.MarkInProgress, mark.State)
}

// finishingMarker plays a worker that stores the graph and clears its mark
// just as the decorator consults the mark.
type finishingMarker struct {
	marker.Memory
	storage *storage.Memory
	graph   string
}

func (m *finishingMarker) Check(ctx context.Context, id string) (types.Mark, error) {
	if err := m.storage.Store(ctx, id, strings.NewReader(m.graph)); err != nil {
		return types.Mark{}, err
	}
	return types.Mark{State: types.MarkNone}, nil
}

func TestInProgressSeesGraphStoredDuringLookup(t *testing.T) {
	t.Parallel()
	const id = "6357a262-b301-5f60-a2d4-644e10c814ea"
	for _, op := range []string{"get", "exists"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			mem := &storage.Memory{}
			s := &storage.InProgress{Storage: mem, Marker: &finishingMarker{storage: mem, graph: "digraph {}"}}
			if op == "exists" {
				ok, err := s.Exists(context.Background(), id)
				require.NoError(t, err)
				require.True(t, ok, "a graph stored between the two lookups exists")
				return
			}
			rc, err := s.Get(context.Background(), id)
			require.NoError(t, err, "a graph stored between the two lookups is served, not reported missing")
			b, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, "digraph {}", string(b))
		})
	}
}

// second returns the error of a call that also returns a token.
func second(_ string, err error) error { return err }
