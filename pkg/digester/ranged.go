package digester

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// RandomAccessSource is a Source that can also read a file at any offset,
// as a Parquet file must be read: its index is at its end, and only the
// columns a record needs are fetched. Builtin uses it for a file whose
// content turns out to be Parquet when Open gave a stream.
type RandomAccessSource interface {
	Source
	// OpenAt returns a reader of the file key at any offset, and the file's
	// size. It returns an error wrapping types.ErrNotFound when there is no
	// such file. The reader stops working once ctx is done.
	OpenAt(ctx context.Context, key string) (io.ReaderAt, int64, error)
}

var _ RandomAccessSource = (*Bucket)(nil)

// OpenAt returns a reader of the object key that fetches each read with a
// ranged GET, and the object's size from a HEAD request; nothing is
// downloaded whole. It returns an error wrapping types.ErrNotFound when
// there is no such object.
func (b *Bucket) OpenAt(ctx context.Context, key string) (io.ReaderAt, int64, error) {
	full := b.base() + key
	out, err := b.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(full)})
	if err != nil {
		var nf *s3types.NotFound
		var nsk *s3types.NoSuchKey
		if errors.As(err, &nf) || errors.As(err, &nsk) {
			return nil, 0, fmt.Errorf("s3 head %s/%s: %w: %w", b.Bucket, full, types.ErrNotFound, err)
		}
		return nil, 0, fmt.Errorf("s3 head %s/%s: %w", b.Bucket, full, err)
	}
	size := aws.ToInt64(out.ContentLength)
	return &rangeReader{ctx: ctx, client: b.Client, bucket: b.Bucket, key: full, etag: out.ETag, size: size}, size, nil
}

// smallReadBytes is the longest read a rangeReader serves from its window,
// and rangeWindowBytes how much a small read the window lacks fetches. A
// Parquet file's columns are read a read buffer (128 KiB) at a time, each
// with a GET of its own, and a row group's chunks in turn: a file of many
// small row groups, a few hundred bytes a chunk, took a GET per column per
// group (50,003 for a 3.7 MB file of 50,001 groups, a review found, where
// a real file's reads take one a buffer), and now takes one per window of
// the file. The reads of large chunks, a buffer each, pass it by.
const (
	smallReadBytes   = 32 << 10
	rangeWindowBytes = 256 << 10
)

// rangeReader is an io.ReaderAt over one S3 object. Each read names the
// ETag the HEAD saw, so an object replaced mid-read fails the read rather
// than mixing two versions.
type rangeReader struct {
	ctx         context.Context
	client      *s3.Client
	bucket, key string
	etag        *string
	size        int64 // as the HEAD saw it

	mu     sync.Mutex // io.ReaderAt's reads may run at once
	win    []byte     // bytes [winOff, winOff+len(win)) of the object
	winOff int64
}

// ReadAt reads bytes [off, off+len(p)): a small read from the window,
// fetched first when it lacks them, and any other with one ranged GET.
func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 || len(p) > smallReadBytes || off < 0 || off >= r.size {
		return r.fetch(p, off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if off < r.winOff || off+int64(len(p)) > r.winOff+int64(len(r.win)) {
		if r.win == nil {
			r.win = make([]byte, rangeWindowBytes)
		}
		n, err := r.fetch(r.win[:min(rangeWindowBytes, r.size-off)], off)
		if err != nil && err != io.EOF {
			r.win = r.win[:0]
			return 0, err
		}
		r.win, r.winOff = r.win[:n], off
	}
	n := copy(p, r.win[off-r.winOff:])
	if n < len(p) {
		// Past the end of the object.
		return n, io.EOF
	}
	return n, nil
}

// fetch fetches bytes [off, off+len(p)) with one ranged GET.
func (r *rangeReader) fetch(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	out, err := r.client.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket:  aws.String(r.bucket),
		Key:     aws.String(r.key),
		Range:   aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)),
		IfMatch: r.etag,
	})
	if err != nil {
		return 0, fmt.Errorf("s3 get %s/%s at %d: %w", r.bucket, r.key, off, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p)
	if (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && off+int64(n) >= r.size {
		// The range ran past the end of the object: io.ReaderAt's io.EOF,
		// unwrapped, as callers compare it.
		return n, io.EOF
	}
	if errors.Is(err, io.EOF) {
		// A body cut short inside the object (the object is the one the
		// HEAD saw): the read failed, and must not pass for the end.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, fmt.Errorf("s3 get %s/%s at %d: %w", r.bucket, r.key, off, err)
	}
	return n, nil
}
