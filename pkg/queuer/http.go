package queuer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	// DefaultJobPath is where HTTP posts jobs when its endpoint has no path:
	// the service's own worker route POST /{topic}/{event}, so that
	// STREAM_APPLIANCE_ENDPOINT set to the service's bare address works.
	DefaultJobPath = "/grapherd/job"

	// drainBytes bounds how much of a body is read before closing it, so the
	// connection can be reused without letting a peer make us read forever.
	drainBytes = 64 << 10
)

// HTTP is a types.Queuer that posts jobs to a stream appliance
// (STREAM_APPLIANCE_ENDPOINT), which delivers them to the worker route.
type HTTP struct {
	// Endpoint is the stream appliance's URL. When its path is empty or "/",
	// jobs go to DefaultJobPath on that host.
	Endpoint *url.URL
	// Client makes the calls; nil means http.DefaultClient. It should carry a
	// per-call deadline and bounded retries of its own.
	Client *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>": the
	// worker route's GRAPHERD_WORKER_TOKEN, for a service that queues to
	// itself.
	Token string
}

var _ types.Queuer = (*HTTP)(nil)

// Queue posts the job as JSON {"id","start","stop"} (times in UTC, RFC 3339
// with nanoseconds) with "Prefer: respond-async" (RFC 7240), so that this
// service's own worker answers at once and makes the graph in the background;
// an event bus that ignores the preference is unaffected. Any 2xx means the
// appliance took the job. A 503 or 429 means the bus (or this service's own
// worker behind it) is full for now: the error wraps types.ErrQueueFull, which
// the API answers with 503 and Retry-After. Any other status is an error
// carrying the status only: the body of an answer is never quoted, so
// whatever the appliance (or a host it redirected to) says cannot travel on
// in an error.
func (q *HTTP) Queue(ctx context.Context, job types.Job) error {
	if q.Endpoint == nil {
		return fmt.Errorf("queue job %s: no STREAM_APPLIANCE_ENDPOINT", job.ID)
	}
	// types.Job marshals as the worker route reads it: times as RFC 3339
	// with nanoseconds.
	body, err := json.Marshal(types.Job{ID: job.ID, Start: job.Start.UTC(), Stop: job.Stop.UTC(), Token: job.Token})
	if err != nil {
		return fmt.Errorf("queue job %s: encode: %w", job.ID, err)
	}
	u := *q.Endpoint
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultJobPath
		u.RawPath = ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("queue job %s: new request: %w", job.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "respond-async")
	if q.Token != "" {
		req.Header.Set("Authorization", "Bearer "+q.Token)
	}
	client := q.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("queue job %s: %w", job.ID, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, drainBytes))
		_ = res.Body.Close()
	}()
	switch {
	case res.StatusCode >= 200 && res.StatusCode <= 299:
		return nil
	case res.StatusCode == http.StatusServiceUnavailable, res.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("queue job %s: stream appliance answered %d: %w", job.ID, res.StatusCode, types.ErrQueueFull)
	default:
		return fmt.Errorf("queue job %s: stream appliance answered unexpected status %d", job.ID, res.StatusCode)
	}
}
