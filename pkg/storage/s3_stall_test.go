package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// TestS3GetStalledBodyFails: a graph whose body stops arriving mid-way fails
// the reader after the client's timeout without progress, instead of holding
// the GET that serves it forever.
func TestS3GetStalledBodyFails(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	peer := s3test.StartStall(t)
	s := &storage.S3{Bucket: "graphs", Client: peer.Client(t, timeout, nil)}
	r, err := s.Get(context.Background(), uuid.NewString())
	require.NoError(t, err)
	defer func() { _ = r.Close() }()
	_, err = s3test.ReadAllWithin(t, r, 10*time.Second)
	require.ErrorIs(t, err, awss3.ErrBodyStalled)
}
