package flowlog

import (
	"compress/gzip"
	"io"
)

// newGzipReader decompresses r; concatenated members are read as one
// stream.
func newGzipReader(r io.Reader) (io.Reader, error) {
	return gzip.NewReader(r)
}

// isCorruptGzip reports whether err is a decompressor's own error for
// bytes that are not valid gzip, beyond the standard library's values.
func isCorruptGzip(error) bool { return false }
