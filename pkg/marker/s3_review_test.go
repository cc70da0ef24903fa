package marker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
)

// TestReviewS3ConditionalDelete: S3.Unmark's owner check is only as good as
// the server's If-Match on DeleteObject. An expired run reads its own mark
// and its ETag, a newer run takes the mark over (a new body, a new ETag),
// and the expired run's delete must then fail rather than remove the newer
// run's mark.
func TestReviewS3ConditionalDelete(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	client := srv.Client(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	key := aws.String("6357a262-b301-5f60-a2d4-644e10c814ea_in_progress")
	old, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key, Body: strings.NewReader("2026-11-01T10:00:00Z")})
	require.NoError(t, err)
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key, Body: strings.NewReader("2026-11-01T10:05:00Z"), IfMatch: old.ETag})
	require.NoError(t, err, "the newer run takes the mark over")

	_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: key, IfMatch: old.ETag})
	require.Error(t, err, "a delete conditional on the old ETag must fail")
	_, err = client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: key})
	require.NoError(t, err, "the newer run's mark is still there")
}
