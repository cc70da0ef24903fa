// Package storage holds the built-in types.Storage backends: S3 (the seed's
// default), a folder on the local filesystem, memory, and the InProgress
// decorator that turns a missing graph into "being made" or "failed" by
// asking a types.Marker. Every backend makes a graph visible only once it is
// complete, so a reader never sees half a graph.
package storage

import (
	"context"
	"io"
	"strings"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	// graphSuffix is the extension of a stored graph, as the seed named them.
	graphSuffix = ".dot"
	// ContentType is the media type of a stored DOT graph.
	ContentType = "text/vnd.graphviz"
)

// validateID checks a graph id before it becomes a key or a file name.
func validateID(id string) error { return types.ValidateID(id) }

// graphKey is the key or file name of the graph id.
func graphKey(id string) string { return id + graphSuffix }

// objectKey is the key or file name of the object kind of graph id, beside
// the graph: <id>.<kind>, such as <id>.table.
func objectKey(id, kind string) string { return id + "." + kind }

// validateObject checks an object's graph id and kind before they become a
// key or a file name.
func validateObject(id, kind string) error {
	if err := validateID(id); err != nil {
		return err
	}
	return types.ValidateObjectKind(kind)
}

// objectContentType is the media type an object is stored with.
func objectContentType(kind string) string {
	if strings.HasPrefix(kind, "svg-") {
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// ctxReader stops a copy once its context is done, so a cancelled Store
// ends even when the source keeps producing data.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read implements io.Reader.
func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
