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

// ownerMeta is the object metadata key holding a mark's owner token, so the
// body stays the timestamp the original service reads.
const ownerMeta = "owner"

// S3 keeps marks as objects <id>_in_progress in Bucket, readable by the
// original service. Marks are set with conditional writes: a new mark with
// If-None-Match: *, a takeover, refresh, failure or removal of an existing
// mark with If-Match on the ETag that was read, so concurrent callers cannot
// both win and a stale owner cannot change a newer owner's mark. A mark the
// original service wrote (no owner metadata) is owned by the empty token.
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

// Mark sets the in-progress mark for id and returns its owner token, or
// returns types.ErrInProgress when a live one exists. When the SDK retries a
// create whose first attempt reached S3 but whose answer was lost, the
// caller sees ErrInProgress for its own mark; the mark then expires after
// Timeout.
func (m *S3) Mark(ctx context.Context, id string) (string, error) {
	return m.take(ctx, "mark", id, nil)
}

// Claim takes the mark for id for a new owner when Mark could, or when the
// live mark's owner is token.
func (m *S3) Claim(ctx context.Context, id, token string) (string, error) {
	return m.take(ctx, "claim", id, &token)
}

func (m *S3) take(ctx context.Context, op, id string, claim *string) (string, error) {
	if err := validateID(id); err != nil {
		return "", err
	}
	key := markKey(id)
	token := newToken()
	for range maxAttempts {
		err := m.put(ctx, key, encodeInProgress(clock(m.Now)), token, ifNoneMatch)
		if err == nil {
			return token, nil
		}
		if !isConflict(err) {
			return "", fmt.Errorf("s3 %s %q: %w", op, key, err)
		}
		cur, etag, err := m.read(ctx, key, m.Timeout)
		if errors.Is(err, types.ErrNotFound) {
			continue // removed since the create failed: create again
		}
		if err != nil {
			return "", fmt.Errorf("s3 %s %q: %w", op, key, err)
		}
		if !takeable(cur, claim) {
			return "", errInProgress(id)
		}
		err = m.put(ctx, key, m.nextStamp(cur), token, etag)
		if err == nil {
			return token, nil
		}
		if !isConflict(err) && !awss3.IsNotFound(err) {
			return "", fmt.Errorf("s3 %s %q: take over: %w", op, key, err)
		}
		// The mark changed since it was read: look again.
	}
	return "", fmt.Errorf("s3 %s %q: the mark kept changing for %d attempts: %w", op, key, maxAttempts, types.ErrInProgress)
}

// Refresh sets the in-progress mark token owns, live or expired, to now. The
// write is conditional on the mark read, so a failure record or a newer
// owner's mark written meanwhile is never overwritten.
func (m *S3) Refresh(ctx context.Context, id, token string) error {
	if err := validateID(id); err != nil {
		return err
	}
	key := markKey(id)
	for range maxAttempts {
		// A timeout of zero reads an expired mark as still in progress.
		cur, etag, err := m.read(ctx, key, 0)
		switch {
		case errors.Is(err, types.ErrNotFound):
			return errNoMark(id)
		case err != nil:
			return fmt.Errorf("s3 refresh %q: %w", key, err)
		case cur.State != types.MarkInProgress:
			return errNoMark(id)
		case cur.owner != token:
			return errNotOwner(id)
		}
		err = m.put(ctx, key, m.nextStamp(cur), token, etag)
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

// Unmark deletes the mark for id when token owns it; a missing mark is not
// an error.
func (m *S3) Unmark(ctx context.Context, id, token string) error {
	if err := validateID(id); err != nil {
		return err
	}
	key := markKey(id)
	for range maxAttempts {
		cur, etag, err := m.read(ctx, key, 0)
		switch {
		case errors.Is(err, types.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("s3 unmark %q: %w", key, err)
		case !owns(cur, token):
			return errNotOwner(id)
		}
		_, err = m.Client.DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket:  aws.String(m.Bucket),
			Key:     aws.String(key),
			IfMatch: aws.String(etag),
		})
		if err == nil || awss3.IsNotFound(err) {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("s3 unmark %q: %w", key, err)
		}
		// The mark changed since it was read: look again.
	}
	return fmt.Errorf("s3 unmark %q: the mark kept changing for %d attempts", key, maxAttempts)
}

// Fail replaces the mark for id with a failure record when token owns it.
func (m *S3) Fail(ctx context.Context, id, token, reason string) error {
	if err := validateID(id); err != nil {
		return err
	}
	key := markKey(id)
	body, err := encodeFailed(clock(m.Now), token, reason)
	if err != nil {
		return fmt.Errorf("s3 fail %q: %w", key, err)
	}
	for range maxAttempts {
		cur, etag, err := m.read(ctx, key, 0)
		cond := etag
		switch {
		case errors.Is(err, types.ErrNotFound):
			cond = ifNoneMatch
		case err != nil:
			return fmt.Errorf("s3 fail %q: %w", key, err)
		case !owns(cur, token):
			return errNotOwner(id)
		}
		err = m.put(ctx, key, body, "", cond)
		if err == nil {
			return nil
		}
		if !isConflict(err) && !awss3.IsNotFound(err) {
			return fmt.Errorf("s3 fail %q: %w", key, err)
		}
		// The mark changed since it was read: look again.
	}
	return fmt.Errorf("s3 fail %q: the mark kept changing for %d attempts", key, maxAttempts)
}

// Check reads the mark for id.
func (m *S3) Check(ctx context.Context, id string) (types.Mark, error) {
	if err := validateID(id); err != nil {
		return types.Mark{}, err
	}
	key := markKey(id)
	cur, _, err := m.read(ctx, key, m.Timeout)
	if errors.Is(err, types.ErrNotFound) {
		return types.Mark{State: types.MarkNone}, nil
	}
	if err != nil {
		return types.Mark{}, fmt.Errorf("s3 check %q: %w", key, err)
	}
	return cur.Mark, nil
}

// nextStamp is the body of an in-progress mark replacing cur: the current
// time, moved a nanosecond on when it equals cur's. The owner lives in the
// metadata, which the ETag does not cover, so only a new body gives the
// object a new ETag and makes a racing write conditional on the old one
// fail.
func (m *S3) nextStamp(cur stored) []byte {
	now := clock(m.Now)
	if cur.State == types.MarkInProgress && !now.After(cur.Since) {
		now = cur.Since.Add(time.Nanosecond)
	}
	return encodeInProgress(now)
}

// ifNoneMatch as put's condition creates key only when it does not exist.
const ifNoneMatch = "*"

// put writes body to key with owner in its metadata (none when empty), on
// condition cond: ifNoneMatch, or the ETag the key must still have.
func (m *S3) put(ctx context.Context, key string, body []byte, owner, cond string) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(m.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("text/plain; charset=utf-8"),
	}
	if owner != "" {
		in.Metadata = map[string]string{ownerMeta: owner}
	}
	switch cond {
	case ifNoneMatch:
		in.IfNoneMatch = aws.String(ifNoneMatch)
	case "":
		return fmt.Errorf("the server sent no ETag to change the mark with")
	default:
		in.IfMatch = aws.String(cond)
	}
	_, err := m.Client.PutObject(ctx, in)
	return err
}

// read reads the mark at key with timeout applied, and its ETag. The owner
// of an in-progress mark is in the metadata; a failure record carries its
// own.
func (m *S3) read(ctx context.Context, key string, timeout time.Duration) (stored, string, error) {
	body, etag, owner, err := m.get(ctx, key)
	if err != nil {
		return stored{}, "", err
	}
	cur := decode(body, clock(m.Now), timeout)
	if cur.owner == "" && cur.State != types.MarkFailed {
		cur.owner = owner
	}
	return cur, etag, nil
}

// get reads key, its ETag and owner metadata; a missing key is
// types.ErrNotFound.
func (m *S3) get(ctx context.Context, key string) ([]byte, string, string, error) {
	out, err := m.Client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(m.Bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		if awss3.IsNotFound(err) {
			return nil, "", "", types.ErrNotFound
		}
		return nil, "", "", err
	}
	defer func() { _ = out.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxMarkBody))
	if err != nil {
		return nil, "", "", fmt.Errorf("read: %w", err)
	}
	return body, aws.ToString(out.ETag), out.Metadata[ownerMeta], nil
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
