// Package storage holds the built-in types.Storage backends: S3 (the seed's
// default), a folder on the local filesystem, memory, and the InProgress
// decorator that turns a missing graph into "being made" or "failed" by
// asking a types.Marker. Every backend makes a graph visible only once it is
// complete, so a reader never sees half a graph.
package storage

import (
	"context"
	"fmt"
	"io"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	// maxIDLength bounds a graph id; the service's ids are 36-byte UUIDs.
	maxIDLength = 64
	// graphSuffix is the extension of a stored graph, as the seed named them.
	graphSuffix = ".dot"
	// ContentType is the media type of a stored DOT graph.
	ContentType = "text/vnd.graphviz"
)

// validateID rejects any id that is not a UUID-like string of letters,
// digits and '-', so an id can never name another key, escape a folder or
// smuggle control characters into a log line.
func validateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty graph id", types.ErrInvalidInput)
	}
	if len(id) > maxIDLength {
		return fmt.Errorf("%w: graph id longer than %d bytes", types.ErrInvalidInput, maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Errorf("%w: graph id %q: only letters, digits and '-' are allowed", types.ErrInvalidInput, id)
		}
	}
	return nil
}

// graphKey is the key or file name of the graph id.
func graphKey(id string) string { return id + graphSuffix }

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
