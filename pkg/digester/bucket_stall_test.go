package digester

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
)

// TestBucketOpenStalledBodyFails: a flow log whose body stops arriving
// mid-way fails the reader after the client's timeout without progress, so
// the job fails instead of holding its window's mark forever.
func TestBucketOpenStalledBodyFails(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	peer := s3test.StartStall(t)
	b := &Bucket{Client: peer.Client(t, timeout, nil), Bucket: "flowlogs"}
	r, err := b.Open(context.Background(), "AWSLogs/a.log")
	require.NoError(t, err)
	defer func() { _ = r.Close() }()
	_, err = s3test.ReadAllWithin(t, r, 10*time.Second)
	require.ErrorIs(t, err, awss3.ErrBodyStalled)
}
