package awss3

import (
	"errors"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// IsNotFound reports whether S3 answered that the key (or bucket object)
// does not exist: the modelled NoSuchKey of GetObject, the bare NotFound of
// HeadObject, or either code from an S3-compatible server that does not use
// the modelled types. Every S3 backend translates through it, so each one
// turns the same answers into types.ErrNotFound.
func IsNotFound(err error) bool {
	var noSuchKey *s3types.NoSuchKey
	var notFound *s3types.NotFound
	if errors.As(err, &noSuchKey) || errors.As(err, &notFound) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}
