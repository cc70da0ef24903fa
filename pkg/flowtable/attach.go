package flowtable

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/flowlog"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// sinkGrapher is a Grapher that hands every record it draws to a sink in
// the same pass, as grapher.DOT does.
type sinkGrapher interface {
	GraphWithSink(ctx context.Context, w io.Writer, digest io.Reader, sink func(*flowlog.Record) error) (types.GraphStats, error)
}

// WithTable returns g made to also store the flow table of graph id in s,
// written in the same pass over the digest as the graph. When g cannot feed
// a table or s keeps no objects, it returns g itself, and views of the graph
// are read from its DOT.
//
// The table is complete and stored before Graph returns, so before the
// caller can finish storing the graph: a graph that is visible has its
// table. A table that cannot be stored fails the graph, so the job is
// retried rather than leaving a graph whose views must read the DOT.
func WithTable(g types.Grapher, s types.Storage, id string) types.Grapher {
	sg, ok := g.(sinkGrapher)
	objs, ok2 := s.(types.ObjectStorage)
	if !ok || !ok2 {
		return g
	}
	return &tableGrapher{g: sg, objs: objs, id: id}
}

type tableGrapher struct {
	g    sinkGrapher
	objs types.ObjectStorage
	id   string
}

// ErrStoreFailed is wrapped by the error of a graph whose flow table could
// not be stored: the storage failed, not the digest or the grapher.
var ErrStoreFailed = errors.New("flow table could not be stored")

// errTableStopped unblocks the writer when the table store stops reading.
var errTableStopped = errors.New("flow table store stopped reading")

// Graph implements types.Grapher.
func (t *tableGrapher) Graph(ctx context.Context, w io.Writer, digest io.Reader) (types.GraphStats, error) {
	pr, pw := io.Pipe()
	stored := make(chan error, 1)
	go func() {
		err := t.objs.StoreObject(ctx, t.id, Kind, pr)
		pr.CloseWithError(errors.Join(err, errTableStopped))
		stored <- err
	}()
	tw := NewWriter(pw)
	gs, err := t.g.GraphWithSink(ctx, w, digest, tw.Add)
	if err == nil {
		err = tw.Close()
	}
	// A nil error ends the table cleanly; any other leaves it unstored.
	pw.CloseWithError(err)
	if serr := <-stored; serr != nil && (err == nil || errors.Is(err, errTableStopped)) {
		err = fmt.Errorf("flowtable: %w: %w", ErrStoreFailed, serr)
	}
	return gs, err
}
