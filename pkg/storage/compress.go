package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// EncodingGzip is the encoding GetEncoded names for a graph stored
// gzip-compressed, as HTTP's Content-Encoding spells it.
const EncodingGzip = "gzip"

// Encoded is a Storage that can return a graph as it is stored, so that a
// client that accepts the stored encoding gets the bytes without a round of
// decompression and compression. A handler asks for it with a type
// assertion and falls back to Get.
type Encoded interface {
	// GetEncoded returns a reader over the stored bytes of the complete
	// graph id and their encoding: EncodingGzip, or "" for plain DOT. Its
	// errors are Get's.
	GetEncoded(ctx context.Context, id string) (rc io.ReadCloser, encoding string, err error)
}

// Gzip decorates a Storage so that graphs are stored gzip-compressed
// (GRAPH_STORAGE_COMPRESSION=gzip) under the same key, <id>.dot: a DOT graph
// compresses about ten to one. Get returns plain DOT whatever is stored —
// the stored bytes are told apart by the gzip magic, which no DOT text
// starts with — so graphs stored before compression was turned on (or
// after it is turned off again) are still served. GetEncoded hands out the
// compressed bytes for clients that accept gzip.
type Gzip struct {
	types.Storage
	// Level is the compression level (gzip.BestSpeed to gzip.BestCompression);
	// 0 means gzip.BestSpeed: a graph is written as fast as it is made.
	Level int
	// StorePlain stores graphs as they come, uncompressed, while Get and
	// GetEncoded still tell compressed ones apart: what the service wraps
	// its storage in when GRAPH_STORAGE_COMPRESSION is off, so that the
	// graphs stored while it was gzip are still served as DOT.
	StorePlain bool
}

var (
	_ types.Storage = (*Gzip)(nil)
	_ Encoded       = (*Gzip)(nil)
	_ Encoded       = (*InProgress)(nil)
)

// Store compresses the graph from r as it is read and stores it under id,
// with the wrapped Storage's guarantees: when r fails, nothing new becomes
// visible.
func (g *Gzip) Store(ctx context.Context, id string, r io.Reader) error {
	if g.StorePlain {
		return g.Storage.Store(ctx, id, r)
	}
	level := g.Level
	if level == 0 {
		level = gzip.BestSpeed
	}
	pr, pw := io.Pipe()
	zw, err := gzip.NewWriterLevel(pw, level)
	if err != nil {
		return fmt.Errorf("gzip graph %s: %w", id, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.Copy(zw, r)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	err = g.Storage.Store(ctx, id, pr)
	// Stop the compressing goroutine if the backend gave up early, and let
	// it finish before r is handed back.
	pr.CloseWithError(errStoreEnded)
	<-done
	return err
}

var errStoreEnded = errors.New("store ended")

// Ping asks the wrapped Storage whether its backend can be reached, when
// it can be asked; nil otherwise.
func (g *Gzip) Ping(ctx context.Context) error {
	if p, ok := g.Storage.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Get returns the plain DOT of the graph id, decompressing it when it is
// stored compressed. A compressed graph that turns out corrupt fails the
// read with an error.
func (g *Gzip) Get(ctx context.Context, id string) (io.ReadCloser, error) {
	rc, enc, err := g.GetEncoded(ctx, id)
	if err != nil || enc == "" {
		return rc, err
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("gunzip graph %s: %w", id, err)
	}
	return &decompressed{Reader: zr, zr: zr, rc: rc}, nil
}

// GetEncoded returns the stored bytes of the graph id and EncodingGzip when
// they are compressed, "" when they are plain DOT.
func (g *Gzip) GetEncoded(ctx context.Context, id string) (io.ReadCloser, string, error) {
	rc, err := g.Storage.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return sniffEncoding(rc)
}

// sniffEncoding peeks at the first bytes of rc for the gzip magic.
func sniffEncoding(rc io.ReadCloser) (io.ReadCloser, string, error) {
	br := bufio.NewReader(rc)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = rc.Close()
		return nil, "", fmt.Errorf("read graph: %w", err)
	}
	enc := ""
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		enc = EncodingGzip
	}
	return &bufferedCloser{Reader: br, Closer: rc}, enc, nil
}

// GetEncoded is Get, with the stored encoding when the wrapped Storage
// keeps one (see Encoded), and "" (plain DOT) otherwise.
func (s *InProgress) GetEncoded(ctx context.Context, id string) (io.ReadCloser, string, error) {
	e, ok := s.Storage.(Encoded)
	if !ok {
		rc, err := s.Get(ctx, id)
		return rc, "", err
	}
	rc, enc, err := e.GetEncoded(ctx, id)
	if err == nil || !errors.Is(err, types.ErrNotFound) {
		return rc, enc, err
	}
	if markErr := s.markError(ctx, id); markErr != nil {
		return nil, "", markErr
	}
	return e.GetEncoded(ctx, id)
}

// bufferedCloser reads through a buffer and closes the reader under it.
type bufferedCloser struct {
	io.Reader
	io.Closer
}

// decompressed reads a gzip stream and closes both the decompressor and
// the stored stream.
type decompressed struct {
	io.Reader
	zr *gzip.Reader
	rc io.ReadCloser
}

// Close implements io.Closer.
func (d *decompressed) Close() error {
	zerr := d.zr.Close()
	if err := d.rc.Close(); err != nil {
		return err
	}
	return zerr
}

var _ types.ObjectStorage = (*Gzip)(nil)

// StoreObject stores an object beside the graph in the wrapped Storage, as
// it is: a flow table is compact already and a cached SVG small, and views
// read them whatever GRAPH_STORAGE_COMPRESSION says. It returns
// types.ErrNotFound (wrapped) when the wrapped Storage keeps no objects.
func (g *Gzip) StoreObject(ctx context.Context, id, kind string, r io.Reader) error {
	objs, err := objectsOf(g.Storage, "store", id, kind)
	if err != nil {
		return err
	}
	return objs.StoreObject(ctx, id, kind, r)
}

// GetObject returns the object from the wrapped Storage, or
// types.ErrNotFound (wrapped) when it keeps no objects.
func (g *Gzip) GetObject(ctx context.Context, id, kind string) (io.ReadCloser, error) {
	objs, err := objectsOf(g.Storage, "get", id, kind)
	if err != nil {
		return nil, err
	}
	return objs.GetObject(ctx, id, kind)
}
