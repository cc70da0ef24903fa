package digester

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// TestBucketOpenGenericNotFound: an S3-compatible server that answers a
// missing object with the generic NotFound code (not the modelled NoSuchKey)
// is still a missing object.
func TestBucketOpenGenericNotFound(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotFound</Code><Message>Not Found</Message></Error>`)
	}))
	defer ts.Close()
	client, err := awss3.NewClient(context.Background(), awss3.Options{
		Endpoint: ts.URL, AccessKeyID: "a", SecretAccessKey: "b", Region: s3test.Region,
	})
	require.NoError(t, err)
	_, err = (&Bucket{Client: client, Bucket: "flowlogs"}).Open(context.Background(), "AWSLogs/a.log")
	require.ErrorIs(t, err, types.ErrNotFound)
}
