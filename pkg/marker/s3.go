package marker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.Marker = (*S3)(nil)

// maxMarkBody bounds how much of a mark object is read; a real mark is a
// timestamp or a small failure record.
const maxMarkBody = 16 << 10

// S3 keeps marks as objects <id>_in_progress in Bucket, readable by the
// original service. Marks are set with conditional writes: a new mark with
// If-None-Match: *, a takeover of an expired or failed mark with If-Match on
// the ETag that was read, so concurrent callers cannot both win.
type S3 struct {
	// Bucket holds the marks (GRAPH_PROGRESS_BUCKET).
	Bucket string
	// Client talks to S3; see awss3.NewClient.
	Client *s3.Client
	// Timeout is how long an in-progress mark holds (GRAPH_PROGRESS_TIMEOUT);
	// zero or less means forever.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now. Tests set it to
	// control expiry.
	Now func() time.Time
}

// Mark sets the in-progress mark for id, or returns types.ErrInProgress when
// a live one exists. When the SDK retries a create whose first attempt
// reached S3 but whose answer was lost, the caller sees ErrInProgress for
// its own mark; the mark then expires after Timeout.
func (m *S3) Mark(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	key := markKey(id)
	for range maxAttempts {
		err := m.put(ctx, key, encodeInProgress(clock(m.Now)), func(in *s3.PutObjectInput) {
			in.IfNoneMatch = aws.String("*")
		})
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("s3 mark %q: %w", key, err)
		}
		body, etag, err := m.get(ctx, key)
		if errors.Is(err, types.ErrNotFound) {
			continue // removed since the create failed: create again
		}
		if err != nil {
			return fmt.Errorf("s3 mark %q: %w", key, err)
		}
		now := clock(m.Now)
		if decode(body, now, m.Timeout).State == types.MarkInProgress {
			return errInProgress(id)
		}
		if etag == "" {
			return fmt.Errorf("s3 mark %q: the server sent no ETag to take the mark over with", key)
		}
		err = m.put(ctx, key, encodeInProgress(now), func(in *s3.PutObjectInput) {
			in.IfMatch = aws.String(etag)
		})
		if err == nil {
			return nil
		}
		if !isConflict(err) && !awss3.IsNotFound(err) {
			return fmt.Errorf("s3 mark %q: take over: %w", key, err)
		}
		// The mark changed since it was read: look again.
	}
	return fmt.Errorf("s3 mark %q: the mark kept changing for %d attempts: %w", key, maxAttempts, types.ErrInProgress)
}

// Refresh sets the in-progress mark for id, live or expired, to now. The
// write is conditional on the mark read, so a failure record written
// meanwhile is never overwritten.
func (m *S3) Refresh(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	key := markKey(id)
	for range maxAttempts {
		body, etag, err := m.get(ctx, key)
		if errors.Is(err, types.ErrNotFound) {
			return errNoMark(id)
		}
		if err != nil {
			return fmt.Errorf("s3 refresh %q: %w", key, err)
		}
		// A timeout of zero reads an expired mark as still in progress.
		if decode(body, clock(m.Now), 0).State != types.MarkInProgress {
			return errNoMark(id)
		}
		if etag == "" {
			return fmt.Errorf("s3 refresh %q: the server sent no ETag to refresh the mark with", key)
		}
		err = m.put(ctx, key, encodeInProgress(clock(m.Now)), func(in *s3.PutObjectInput) {
			in.IfMatch = aws.String(etag)
		})
		if err == nil {
			return nil
		}
		if !isConflict(err) && !awss3.IsNotFound(err) {
			return fmt.Errorf("s3 refresh %q: %w", key, err)
		}
		// The mark changed since it was read: look again.
	}
	return fmt.Errorf("s3 refresh %q: the mark kept changing for %d attempts", key, maxAttempts)
}

// Unmark deletes the mark for id; a missing mark is not an error.
func (m *S3) Unmark(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	key := markKey(id)
	_, err := m.Client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(m.Bucket),
		Key:    aws.String(key),
	})
	if err != nil && !awss3.IsNotFound(err) {
		return fmt.Errorf("s3 unmark %q: %w", key, err)
	}
	return nil
}

// Fail replaces the mark for id with a failure record.
func (m *S3) Fail(ctx context.Context, id string, reason string) error {
	if err := validateID(id); err != nil {
		return err
	}
	key := markKey(id)
	body, err := encodeFailed(clock(m.Now), reason)
	if err != nil {
		return fmt.Errorf("s3 fail %q: %w", key, err)
	}
	if err := m.put(ctx, key, body, nil); err != nil {
		return fmt.Errorf("s3 fail %q: %w", key, err)
	}
	return nil
}

// Check reads the mark for id.
func (m *S3) Check(ctx context.Context, id string) (types.Mark, error) {
	if err := validateID(id); err != nil {
		return types.Mark{}, err
	}
	key := markKey(id)
	body, _, err := m.get(ctx, key)
	if errors.Is(err, types.ErrNotFound) {
		return types.Mark{State: types.MarkNone}, nil
	}
	if err != nil {
		return types.Mark{}, fmt.Errorf("s3 check %q: %w", key, err)
	}
	return decode(body, clock(m.Now), m.Timeout), nil
}

// put writes body to key, with the conditions cond sets.
func (m *S3) put(ctx context.Context, key string, body []byte, cond func(*s3.PutObjectInput)) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(m.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("text/plain; charset=utf-8"),
	}
	if cond != nil {
		cond(in)
	}
	_, err := m.Client.PutObject(ctx, in)
	return err
}

// get reads key and its ETag; a missing key is types.ErrNotFound.
func (m *S3) get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := m.Client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(m.Bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		if awss3.IsNotFound(err) {
			return nil, "", types.ErrNotFound
		}
		return nil, "", err
	}
	defer func() { _ = out.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxMarkBody))
	if err != nil {
		return nil, "", fmt.Errorf("read: %w", err)
	}
	return body, aws.ToString(out.ETag), nil
}

// isConflict reports whether a conditional write lost: 412 Precondition
// Failed, or 409 ConditionalRequestConflict when S3 saw two conditional
// writes to one key at once.
func isConflict(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusPreconditionFailed:
			return true
		}
	}
	return false
}
