package digester

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
)

// startCutPeer starts an S3 peer on loopback that holds one object of size
// bytes: it answers a HEAD whole, and a ranged GET with the range's
// headers but only half its body, then closes the connection, as a
// connection cut mid-transfer.
func startCutPeer(t *testing.T, size int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				head := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nETag: \"e\"\r\nContent-Length: %d\r\n\r\n"
				if req.Method == http.MethodHead {
					_, _ = fmt.Fprintf(c, head, size)
					return
				}
				var from, to int
				if _, err := fmt.Sscanf(req.Header.Get("Range"), "bytes=%d-%d", &from, &to); err != nil {
					return
				}
				n := to - from + 1
				_, _ = fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\nETag: \"e\"\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", from, to, size, n)
				_, _ = c.Write(make([]byte, n/2))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestRangeReaderCutBodyFails reads a range inside an object whose body is
// cut mid-transfer: the read fails with io.ErrUnexpectedEOF, not io.EOF,
// which io.ReaderAt keeps for a range past the end of the object, so that
// a Parquet footer cut short is a failed read, retried, not a file
// malformed and skipped.
func TestRangeReaderCutBodyFails(t *testing.T) {
	t.Parallel()
	c, err := awss3.NewClient(context.Background(), awss3.Options{
		Endpoint: startCutPeer(t, 1000), AccessKeyID: "cut", SecretAccessKey: "cut",
		Region: s3test.Region, Timeout: 5 * time.Second,
	})
	require.NoError(t, err)
	b := &Bucket{Client: c, Bucket: "flowlogs"}
	ra, size, err := b.OpenAt(context.Background(), "AWSLogs/a.log.parquet")
	require.NoError(t, err)
	require.Equal(t, int64(1000), size)
	n, err := ra.ReadAt(make([]byte, 100), 500)
	require.Less(t, n, 100)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.False(t, errors.Is(err, io.EOF), "a cut body is not the end of the object")
}
