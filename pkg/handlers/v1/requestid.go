package v1

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
)

// RequestIDHeader is the header a request id is read from and answered in.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLength bounds a request id taken from a client.
const MaxRequestIDLength = 128

// RequestID gives every request an id: the client's X-Request-Id when it is
// at most MaxRequestIDLength characters from A-Z, a-z, 0-9 and ".", "_",
// ":", "-" (enough for UUIDs and the ids proxies add), else a fresh UUID, so
// an id that would flood or forge a log line never reaches one. The id is
// kept where chi's middleware.GetReqID finds it, and sent back in the
// answer's X-Request-Id.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), middleware.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}
