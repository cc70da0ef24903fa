package awss3

import (
	"context"
	"net"
	"net/url"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/middleware"
)

// unsignedPayload is the payload hash SigV4 signs in place of the body's
// SHA-256 ("UNSIGNED-PAYLOAD").
const unsignedPayload = "UNSIGNED-PAYLOAD"

// skipsPayloadSigning reports whether requests to endpoint may leave their
// body out of the signature. The SHA-256 of the body in the signature
// protects it in transit; computing it reads every part twice and the
// server hashes it again, which on a graph upload costs more CPU than the
// upload itself. Over https the SDK already leaves it out (TLS protects the
// body, and a CRC checksum still guards it); over plain http to a loopback
// address the body never leaves the machine, so there is nothing in transit
// to protect. Plain http to any other host keeps the signed payload: there
// an on-path attacker could change an unsigned body undetected.
func skipsPayloadSigning(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// addUnsignedPayload makes every request sign UNSIGNED-PAYLOAD. It goes
// first in the finalize step, before the checksum middleware, which would
// otherwise hash the body for the signature while computing its CRC.
func addUnsignedPayload(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("UnsignedPayloadOnLoopback",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
			middleware.FinalizeOutput, middleware.Metadata, error,
		) {
			return next.HandleFinalize(v4.SetPayloadHash(ctx, unsignedPayload), in)
		}), middleware.Before)
}
