package marker_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker/markertest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestS3Conformance(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	markertest.Run(t, func(t *testing.T, timeout time.Duration, now func() time.Time) types.Marker {
		return &marker.S3{Bucket: srv.NewBucket(t), Client: client, Timeout: timeout, Now: now}
	})
}

// TestS3Compatibility checks the objects against what the original service
// wrote and read: <id>_in_progress holding an RFC 3339 timestamp.
func TestS3Compatibility(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	bucket := srv.NewBucket(t)
	now := time.Now().UTC()
	m := &marker.S3{Bucket: bucket, Client: client, Timeout: time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()

	read := func(t *testing.T, id string) string {
		t.Helper()
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(id + "_in_progress")})
		require.NoError(t, err)
		defer func() { require.NoError(t, out.Body.Close()) }()
		b, err := io.ReadAll(out.Body)
		require.NoError(t, err)
		return string(b)
	}
	write := func(t *testing.T, id, body string) {
		t.Helper()
		_, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(id + "_in_progress"), Body: strings.NewReader(body),
		})
		require.NoError(t, err)
	}

	t.Run("mark is an RFC 3339 timestamp, its owner in the metadata", func(t *testing.T) {
		id := uuid.NewString()
		token, err := m.Mark(ctx, id)
		require.NoError(t, err)
		ts, err := time.Parse(time.RFC3339, read(t, id))
		require.NoError(t, err)
		require.True(t, ts.Equal(now))
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(id + "_in_progress")})
		require.NoError(t, err)
		require.Equal(t, token, head.Metadata["owner"])
	})
	t.Run("original service's mark has no owner", func(t *testing.T) {
		id := uuid.NewString()
		write(t, id, now.Add(-time.Second).Format(time.RFC3339))
		require.ErrorIs(t, m.Unmark(ctx, id, "someone"), types.ErrNotOwner)
		_, err := m.Claim(ctx, id, "someone")
		require.ErrorIs(t, err, types.ErrInProgress)
		token, err := m.Claim(ctx, id, "")
		require.NoError(t, err, "a job without a token takes over the original service's mark")
		require.NoError(t, m.Refresh(ctx, id, token))
		require.NoError(t, m.Unmark(ctx, id, token))
	})
	t.Run("failure record", func(t *testing.T) {
		id := uuid.NewString()
		require.NoError(t, m.Fail(ctx, id, "t1", "digest never ready"))
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(read(t, id)), &rec))
		require.Equal(t, map[string]any{
			"state":  "failed",
			"at":     now.Format(time.RFC3339Nano),
			"reason": "digest never ready",
			"owner":  "t1",
		}, rec)
	})
	tests := []struct {
		name string
		body string
		want types.MarkState
	}{
		{"original service's live mark", now.Add(-time.Second).Format(time.RFC3339Nano), types.MarkInProgress},
		{"original service's expired mark", now.Add(-time.Hour).Format(time.RFC3339Nano), types.MarkNone},
		{"seconds only", now.Add(-time.Second).Format(time.RFC3339), types.MarkInProgress},
		{"with an offset", now.Add(-time.Second).In(time.FixedZone("x", 5*3600)).Format(time.RFC3339Nano), types.MarkInProgress},
		{"garbage", "not a time", types.MarkNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			write(t, id, tc.body)
			mark, err := m.Check(ctx, id)
			require.NoError(t, err)
			require.Equal(t, tc.want, mark.State)
			if tc.want == types.MarkInProgress {
				require.ErrorIs(t, second(m.Mark(ctx, id)), types.ErrInProgress)
			} else {
				require.NoError(t, second(m.Mark(ctx, id)), "a dead mark is taken over")
			}
		})
	}
}

// TestS3SurvivesRestart stops the S3 server between operations: calls made
// while it is down fail with an error that is neither "in progress" nor
// "no mark", and once it is back the marks set before are still there.
func TestS3SurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	m := &marker.S3{Bucket: srv.NewBucket(t), Client: srv.Client(t), Timeout: time.Hour}
	id, other := uuid.NewString(), uuid.NewString()
	token, err := m.Mark(context.Background(), id)
	require.NoError(t, err)

	srv.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = m.Mark(ctx, other)
	require.Error(t, err)
	require.NotErrorIs(t, err, types.ErrInProgress)
	require.Contains(t, err.Error(), "s3 mark")
	mark, err := m.Check(ctx, id)
	require.Error(t, err)
	require.Equal(t, types.MarkNone, mark.State)
	require.Contains(t, err.Error(), "s3 check")
	require.Error(t, m.Fail(ctx, id, "t1", "x"))
	require.Error(t, m.Unmark(ctx, id, "t1"))

	srv.Restart(t)
	mark, err = m.Check(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, types.MarkInProgress, mark.State)
	require.ErrorIs(t, second(m.Mark(context.Background(), id)), types.ErrInProgress)
	require.NoError(t, second(m.Mark(context.Background(), other)))
	require.NoError(t, m.Unmark(context.Background(), id, token))
	require.NoError(t, second(m.Mark(context.Background(), id)))
}
