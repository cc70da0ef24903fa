package awss3

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSkipsPayloadSigning: only plain http to a loopback address leaves
// the body out of the signature.
func TestSkipsPayloadSigning(t *testing.T) {
	for endpoint, want := range map[string]bool{
		"http://127.0.0.1:9000":        true,
		"http://127.8.0.1:9000":        true,
		"http://[::1]:9000":            true,
		"http://localhost:9000":        true,
		"http://10.0.0.5:9000":         false,
		"http://s3.internal:9000":      false,
		"http://localhost.example.com": false,
		"https://127.0.0.1:9000":       false, // the SDK decides over TLS
		"::not a url":                  false,
	} {
		require.Equal(t, want, skipsPayloadSigning(endpoint), endpoint)
	}
}
