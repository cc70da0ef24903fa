package awss3

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// PingBucket asks S3 whether bucket exists and is reachable with the
// client's credentials; the readiness checks of every S3 backend use it.
func PingBucket(ctx context.Context, client *s3.Client, bucket string) error {
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("s3 bucket %q: %w", bucket, err)
	}
	return nil
}
