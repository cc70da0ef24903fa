package digester

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// Bucket is a Source over an S3 bucket that VPC Flow Logs deliver to
// (VPC_FLOW_LOGS_BUCKET). Objects are streamed, never downloaded whole.
type Bucket struct {
	// Client talks to S3.
	Client *s3.Client
	// Bucket is the bucket's name.
	Bucket string
	// Prefix is a folder inside the bucket that every key is relative to;
	// empty means the bucket's root. The flow log prefix AWS was configured
	// with (VPC_FLOW_LOGS_PREFIX) belongs in Builtin.Prefix instead, so that
	// either source can be used with it.
	Prefix string
	// PageSize is the most keys asked for per ListObjectsV2 call; 0 means the
	// server's default (1000 on AWS).
	PageSize int32
}

var _ Source = (*Bucket)(nil)

// base is Prefix as a folder: empty, or ending in "/".
func (b *Bucket) base() string {
	p := strings.Trim(b.Prefix, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

func (b *Bucket) maxKeys() *int32 {
	if b.PageSize > 0 {
		return aws.Int32(b.PageSize)
	}
	return nil
}

// List returns the entries of the folder prefix ("" or ending in "/"): object
// keys as keys and common prefixes as sub-folders ending in "/", going
// through every page of ListObjectsV2. Folder marker objects (keys ending in
// "/") are left out.
func (b *Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	base := b.base()
	p := s3.NewListObjectsV2Paginator(b.Client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(b.Bucket),
		Prefix:    aws.String(base + prefix),
		Delimiter: aws.String("/"),
		MaxKeys:   b.maxKeys(),
	})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3 list %s/%s: %w", b.Bucket, base+prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			keys = append(keys, strings.TrimPrefix(aws.ToString(cp.Prefix), base))
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") {
				continue
			}
			keys = append(keys, strings.TrimPrefix(key, base))
		}
	}
	return keys, nil
}

// Open streams the object key. It returns an error wrapping types.ErrNotFound
// when there is no such object.
func (b *Bucket) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	full := b.base() + key
	out, err := b.Client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.Bucket),
		Key:    aws.String(full),
	})
	if err != nil {
		if awss3.IsNotFound(err) {
			return nil, fmt.Errorf("s3 get %s/%s: %w: %w", b.Bucket, full, types.ErrNotFound, err)
		}
		return nil, fmt.Errorf("s3 get %s/%s: %w", b.Bucket, full, err)
	}
	return out.Body, nil
}
