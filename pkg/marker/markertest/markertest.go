// Package markertest is the conformance suite every types.Marker backend
// runs, so the S3, filesystem and memory markers are held to one contract:
// exactly one of many concurrent Mark calls wins, marks expire after the
// timeout, expired and failed marks are taken over atomically, failure
// records round-trip, and Unmark is idempotent. The suite controls the
// marker's clock to test expiry without waiting.
package markertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

const (
	// Timeout is the mark timeout the suite asks for.
	Timeout = 10 * time.Second
	// Racers is how many goroutines race for one mark.
	Racers = 50
)

// NewMarker returns an empty Marker for one test whose marks expire after
// timeout and that reads the time from now. It is called once per subtest,
// and the subtests run in parallel.
type NewMarker func(t *testing.T, timeout time.Duration, now func() time.Time) types.Marker

// Clock is a settable clock for tests; its zero value is not useful, start
// it with NewClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set makes the clock read t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// start is where every test's clock begins; its nanoseconds check that
// backends keep full precision.
var start = time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC)

// Run runs the suite against the backend newMarker makes.
func Run(t *testing.T, newMarker NewMarker) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, m types.Marker, c *Clock)
	}{
		{"CheckNone", testCheckNone},
		{"MarkThenCheck", testMarkThenCheck},
		{"MarkTwice", testMarkTwice},
		{"ConcurrentMark", testConcurrentMark},
		{"Expiry", testExpiry},
		{"TakeOverExpired", testTakeOverExpired},
		{"ConcurrentTakeOverExpired", testConcurrentTakeOverExpired},
		{"FailThenCheck", testFailThenCheck},
		{"FailWithoutMark", testFailWithoutMark},
		{"TakeOverFailed", testTakeOverFailed},
		{"ConcurrentTakeOverFailed", testConcurrentTakeOverFailed},
		{"Unmark", testUnmark},
		{"Reasons", testReasons},
		{"InvalidIDs", testInvalidIDs},
		{"IndependentIDs", testIndependentIDs},
		{"CancelledContext", testCancelledContext},
		{"Cycles", testCycles},
		{"Refresh", testRefresh},
		{"RefreshWithoutMark", testRefreshWithoutMark},
		{"StaleOwner", testStaleOwner},
		{"Claim", testClaim},
		{"ConcurrentClaim", testConcurrentClaim},
		{"ClaimTakesOver", testClaimTakesOver},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := NewClock(start)
			tc.test(t, newMarker(t, Timeout, c.Now), c)
		})
	}
}

func newID() string { return uuid.NewString() }

// requireState checks the mark of id.
func requireState(t *testing.T, m types.Marker, id string, want types.MarkState) types.Mark {
	t.Helper()
	mark, err := m.Check(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, want.String(), mark.State.String())
	return mark
}

// requireSince checks a mark's time to the nanosecond.
func requireSince(t *testing.T, mark types.Mark, want time.Time) {
	t.Helper()
	require.True(t, mark.Since.Equal(want), "mark time %s, want %s", mark.Since, want)
}

// Race runs Mark for id from Racers goroutines at once, each on the marker
// newMarker returns for it, and returns how many succeeded; it fails the
// test on any error other than ErrInProgress. Giving each racer its own
// marker shows that the backend's exclusion holds across processes, not
// just within one value.
func Race(t *testing.T, newMarker func() types.Marker, id string) int {
	t.Helper()
	var (
		wg      sync.WaitGroup
		ready   = make(chan struct{})
		results = make([]error, Racers)
	)
	for i := range Racers {
		m := newMarker()
		wg.Go(func() {
			<-ready
			_, results[i] = m.Mark(context.Background(), id)
		})
	}
	close(ready)
	wg.Wait()
	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
			continue
		}
		require.ErrorIs(t, err, types.ErrInProgress)
	}
	return wins
}

// race is Race with every racer sharing m.
func race(t *testing.T, m types.Marker, id string) int {
	t.Helper()
	return Race(t, func() types.Marker { return m }, id)
}

// mark sets the mark for id and returns its owner token.
func mark(t *testing.T, m types.Marker, id string, msgAndArgs ...any) string {
	t.Helper()
	token, err := m.Mark(context.Background(), id)
	require.NoError(t, err, msgAndArgs...)
	require.NotEmpty(t, token, "a mark has an owner")
	return token
}

// requireBusy checks that Mark for id finds a live mark.
func requireBusy(t *testing.T, m types.Marker, id string, msgAndArgs ...any) {
	t.Helper()
	token, err := m.Mark(context.Background(), id)
	require.ErrorIs(t, err, types.ErrInProgress, msgAndArgs...)
	require.Empty(t, token)
}

func testCheckNone(t *testing.T, m types.Marker, _ *Clock) {
	mark := requireState(t, m, newID(), types.MarkNone)
	require.Empty(t, mark.Reason)
}

func testMarkThenCheck(t *testing.T, m types.Marker, c *Clock) {
	id := newID()
	mark(t, m, id)
	mark := requireState(t, m, id, types.MarkInProgress)
	requireSince(t, mark, c.Now())
	require.Empty(t, mark.Reason)
}

func testMarkTwice(t *testing.T, m types.Marker, c *Clock) {
	id := newID()
	mark(t, m, id)
	c.Advance(time.Second)
	requireBusy(t, m, id)
	// The losing Mark did not refresh the mark.
	requireSince(t, requireState(t, m, id, types.MarkInProgress), start)
}

func testConcurrentMark(t *testing.T, m types.Marker, _ *Clock) {
	id := newID()
	require.Equal(t, 1, race(t, m, id), "exactly one concurrent Mark must win")
	requireState(t, m, id, types.MarkInProgress)
}

func testExpiry(t *testing.T, m types.Marker, c *Clock) {
	cases := []struct {
		name  string
		after time.Duration
		want  types.MarkState
	}{
		{"just set", 0, types.MarkInProgress},
		{"a nanosecond before the timeout", Timeout - time.Nanosecond, types.MarkInProgress},
		{"at the timeout", Timeout, types.MarkNone},
		{"long after", 1000 * Timeout, types.MarkNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := newID()
			set := c.Now()
			mark(t, m, id)
			c.Advance(tc.after)
			mark := requireState(t, m, id, tc.want)
			if tc.want == types.MarkInProgress {
				requireSince(t, mark, set)
			}
		})
	}
}

func testTakeOverExpired(t *testing.T, m types.Marker, c *Clock) {
	id := newID()
	mark(t, m, id)
	c.Advance(Timeout)
	mark(t, m, id)
	requireSince(t, requireState(t, m, id, types.MarkInProgress), c.Now())
	c.Advance(Timeout - time.Nanosecond)
	requireBusy(t, m, id, "the new mark runs from the takeover")
}

func testConcurrentTakeOverExpired(t *testing.T, m types.Marker, c *Clock) {
	id := newID()
	mark(t, m, id)
	c.Advance(Timeout + time.Second)
	require.Equal(t, 1, race(t, m, id), "exactly one concurrent takeover of an expired mark must win")
	requireSince(t, requireState(t, m, id, types.MarkInProgress), c.Now())
}

func testFailThenCheck(t *testing.T, m types.Marker, c *Clock) {
	id := newID()
	token := mark(t, m, id)
	c.Advance(time.Second)
	failedAt := c.Now()
	require.NoError(t, m.Fail(context.Background(), id, token, "digester answered 500"))
	mark := requireState(t, m, id, types.MarkFailed)
	require.Equal(t, "digester answered 500", mark.Reason)
	requireSince(t, mark, failedAt)
	c.Advance(1000 * Timeout)
	mark = requireState(t, m, id, types.MarkFailed)
	require.Equal(t, "digester answered 500", mark.Reason, "failure records do not expire")
}

func testFailWithoutMark(t *testing.T, m types.Marker, _ *Clock) {
	id := newID()
	require.NoError(t, m.Fail(context.Background(), id, "t1", "no mark before"))
	require.Equal(t, "no mark before", requireState(t, m, id, types.MarkFailed).Reason)
	require.NoError(t, m.Fail(context.Background(), id, "t1", "failed again"))
	require.Equal(t, "failed again", requireState(t, m, id, types.MarkFailed).Reason)
}

func testTakeOverFailed(t *testing.T, m types.Marker, c *Clock) {
	id := newID()
	require.NoError(t, m.Fail(context.Background(), id, "t1", "boom"))
	c.Advance(time.Second)
	mark(t, m, id, "a failed graph may be retried at once")
	mark := requireState(t, m, id, types.MarkInProgress)
	requireSince(t, mark, c.Now())
	require.Empty(t, mark.Reason)
	requireBusy(t, m, id)
}

func testConcurrentTakeOverFailed(t *testing.T, m types.Marker, _ *Clock) {
	id := newID()
	require.NoError(t, m.Fail(context.Background(), id, "t1", "boom"))
	require.Equal(t, 1, race(t, m, id), "exactly one concurrent takeover of a failed mark must win")
	requireState(t, m, id, types.MarkInProgress)
}

func testUnmark(t *testing.T, m types.Marker, c *Clock) {
	cases := []struct {
		name  string
		setup func(t *testing.T, id string) (token string)
	}{
		{"never marked", func(*testing.T, string) string { return "any" }},
		{"marked", func(t *testing.T, id string) string { return mark(t, m, id) }},
		{"failed", func(t *testing.T, id string) string {
			require.NoError(t, m.Fail(context.Background(), id, "t1", "x"))
			return "t1"
		}},
		{"expired", func(t *testing.T, id string) string {
			token := mark(t, m, id)
			c.Advance(2 * Timeout)
			return token
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := newID()
			token := tc.setup(t, id)
			require.NoError(t, m.Unmark(context.Background(), id, token))
			requireState(t, m, id, types.MarkNone)
			require.NoError(t, m.Unmark(context.Background(), id, token), "a second Unmark is not an error")
			mark(t, m, id)
			requireState(t, m, id, types.MarkInProgress)
		})
	}
}

func testReasons(t *testing.T, m types.Marker, _ *Clock) {
	long := strings.Repeat("é", 2000)
	cases := []struct {
		name   string
		reason string
		check  func(t *testing.T, got string)
	}{
		{"empty", "", nil},
		{"quotes and backslashes", `digest line 3: "bad" \ field`, nil},
		{"newlines", "first line\nsecond line\r\n", nil},
		{"unicode", "délai dépassé ⏱", nil},
		{"looks like a timestamp", "2024-01-01T00:00:00Z", nil},
		{"looks like a record", `{"state":"in_progress","at":"2024-01-01T00:00:00Z"}`, nil},
		{"long reason is bounded", long, func(t *testing.T, got string) {
			require.NotEmpty(t, got)
			require.LessOrEqual(t, len(got), 1024)
			require.True(t, strings.HasPrefix(long, got), "a truncated reason is a prefix of the reason")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := newID()
			require.NoError(t, m.Fail(context.Background(), id, "t1", tc.reason))
			got := requireState(t, m, id, types.MarkFailed).Reason
			if tc.check != nil {
				tc.check(t, got)
				return
			}
			require.Equal(t, tc.reason, got)
		})
	}
}

// invalidIDs could name another key, escape a folder or carry control
// characters.
func invalidIDs() []string {
	return []string{
		"", ".", "..", "../x", "a/b", `a\b`, "a.lock", "a_in_progress", "a b", "a\x00", "a\n",
		"ü", strings.Repeat("f", 65),
	}
}

func testInvalidIDs(t *testing.T, m types.Marker, _ *Clock) {
	for _, id := range invalidIDs() {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			ctx := context.Background()
			_, err := m.Mark(ctx, id)
			require.ErrorIs(t, err, types.ErrInvalidInput)
			_, err = m.Claim(ctx, id, "t1")
			require.ErrorIs(t, err, types.ErrInvalidInput)
			require.ErrorIs(t, m.Unmark(ctx, id, "t1"), types.ErrInvalidInput)
			require.ErrorIs(t, m.Fail(ctx, id, "t1", "x"), types.ErrInvalidInput)
			require.ErrorIs(t, m.Refresh(ctx, id, "t1"), types.ErrInvalidInput)
			_, err = m.Check(ctx, id)
			require.ErrorIs(t, err, types.ErrInvalidInput)
			require.True(t, types.IsPermanent(err))
		})
	}
}

func testIndependentIDs(t *testing.T, m types.Marker, _ *Clock) {
	a, b, c := newID(), newID(), newID()
	ta := mark(t, m, a)
	require.NoError(t, m.Fail(context.Background(), b, "t1", "b failed"))
	requireState(t, m, c, types.MarkNone)
	mark(t, m, c)
	require.NoError(t, m.Unmark(context.Background(), a, ta))
	requireState(t, m, a, types.MarkNone)
	require.Equal(t, "b failed", requireState(t, m, b, types.MarkFailed).Reason)
	requireState(t, m, c, types.MarkInProgress)
}

func testCancelledContext(t *testing.T, m types.Marker, _ *Clock) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marked, fresh := newID(), newID()
	token := mark(t, m, marked)

	_, err := m.Mark(ctx, fresh)
	require.ErrorIs(t, err, context.Canceled)
	requireState(t, m, fresh, types.MarkNone)
	_, err = m.Claim(ctx, fresh, "")
	require.ErrorIs(t, err, context.Canceled)
	requireState(t, m, fresh, types.MarkNone)
	require.ErrorIs(t, m.Fail(ctx, fresh, token, "x"), context.Canceled)
	requireState(t, m, fresh, types.MarkNone)
	require.ErrorIs(t, m.Unmark(ctx, marked, token), context.Canceled)
	require.ErrorIs(t, m.Refresh(ctx, marked, token), context.Canceled)
	requireState(t, m, marked, types.MarkInProgress)
	_, err = m.Check(ctx, marked)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.Is(err, types.ErrInProgress))
}

func testCycles(t *testing.T, m types.Marker, c *Clock) {
	id := newID()
	for i := range 5 {
		token := mark(t, m, id, "cycle %d", i)
		requireBusy(t, m, id, "cycle %d", i)
		if i%2 == 0 {
			require.NoError(t, m.Fail(context.Background(), id, token, fmt.Sprintf("cycle %d", i)))
		} else {
			require.NoError(t, m.Unmark(context.Background(), id, token))
		}
		c.Advance(time.Millisecond)
	}
}

// testRefresh shows a refreshed mark outliving the timeout counted from
// when it was set, and an expired one coming back to life.
func testRefresh(t *testing.T, m types.Marker, c *Clock) {
	ctx := context.Background()
	id := newID()
	token := mark(t, m, id)
	c.Advance(Timeout * 3 / 4)
	refreshed := c.Now()
	require.NoError(t, m.Refresh(ctx, id, token))
	c.Advance(Timeout / 2) // past the first timeout, within the refreshed one
	requireSince(t, requireState(t, m, id, types.MarkInProgress), refreshed)
	requireBusy(t, m, id)

	c.Advance(Timeout) // expired: a job still running may claim it back
	requireState(t, m, id, types.MarkNone)
	require.NoError(t, m.Refresh(ctx, id, token))
	requireState(t, m, id, types.MarkInProgress)
}

// testRefreshWithoutMark shows Refresh leaving cleared and failed marks alone.
func testRefreshWithoutMark(t *testing.T, m types.Marker, _ *Clock) {
	ctx := context.Background()
	none := newID()
	require.ErrorIs(t, m.Refresh(ctx, none, "t1"), types.ErrNotFound)
	requireState(t, m, none, types.MarkNone)

	cleared := newID()
	token := mark(t, m, cleared)
	require.NoError(t, m.Unmark(ctx, cleared, token))
	require.ErrorIs(t, m.Refresh(ctx, cleared, token), types.ErrNotFound)
	requireState(t, m, cleared, types.MarkNone)

	failed := newID()
	token = mark(t, m, failed)
	require.NoError(t, m.Fail(ctx, failed, token, "digester down"))
	require.ErrorIs(t, m.Refresh(ctx, failed, token), types.ErrNotFound)
	require.Equal(t, "digester down", requireState(t, m, failed, types.MarkFailed).Reason)
}

// testStaleOwner shows that a run whose mark expired and was taken over can
// neither refresh, clear nor fail the newer run's mark.
func testStaleOwner(t *testing.T, m types.Marker, c *Clock) {
	ctx := context.Background()
	id := newID()
	stale := mark(t, m, id)
	c.Advance(Timeout)
	fresh := mark(t, m, id)
	require.NotEqual(t, stale, fresh, "every mark has its own owner")
	takenAt := c.Now()

	require.ErrorIs(t, m.Refresh(ctx, id, stale), types.ErrNotOwner)
	require.ErrorIs(t, m.Unmark(ctx, id, stale), types.ErrNotOwner)
	require.ErrorIs(t, m.Fail(ctx, id, stale, "stale run failed"), types.ErrNotOwner)
	requireSince(t, requireState(t, m, id, types.MarkInProgress), takenAt)

	// The owner still can, and its failure record stays its own.
	require.NoError(t, m.Fail(ctx, id, fresh, "fresh run failed"))
	require.ErrorIs(t, m.Unmark(ctx, id, stale), types.ErrNotOwner)
	require.Equal(t, "fresh run failed", requireState(t, m, id, types.MarkFailed).Reason)
	require.NoError(t, m.Unmark(ctx, id, fresh))
	requireState(t, m, id, types.MarkNone)
}

// testClaim shows the API's mark handed over to the worker: the claim gives
// a new owner, after which the API's token owns nothing.
func testClaim(t *testing.T, m types.Marker, c *Clock) {
	ctx := context.Background()
	id := newID()
	api := mark(t, m, id)
	c.Advance(time.Second)
	worker, err := m.Claim(ctx, id, api)
	require.NoError(t, err)
	require.NotEmpty(t, worker)
	require.NotEqual(t, api, worker)
	requireSince(t, requireState(t, m, id, types.MarkInProgress), c.Now())

	_, err = m.Claim(ctx, id, api)
	require.ErrorIs(t, err, types.ErrInProgress, "a second delivery of the job finds the window taken")
	_, err = m.Claim(ctx, id, "")
	require.ErrorIs(t, err, types.ErrInProgress, "a job without a token cannot take an owned mark")
	require.ErrorIs(t, m.Unmark(ctx, id, api), types.ErrNotOwner)
	require.ErrorIs(t, m.Refresh(ctx, id, api), types.ErrNotOwner)
	require.NoError(t, m.Refresh(ctx, id, worker))
	require.NoError(t, m.Unmark(ctx, id, worker))
	requireState(t, m, id, types.MarkNone)
}

// testConcurrentClaim races claims with the one token the job carries, as
// duplicate deliveries of one job would: exactly one wins.
func testConcurrentClaim(t *testing.T, m types.Marker, _ *Clock) {
	id := newID()
	api := mark(t, m, id)
	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		errs  = make([]error, Racers)
	)
	for i := range Racers {
		wg.Go(func() {
			<-ready
			_, errs[i] = m.Claim(context.Background(), id, api)
		})
	}
	close(ready)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.ErrorIs(t, err, types.ErrInProgress)
	}
	require.Equal(t, 1, wins, "exactly one concurrent Claim must win")
}

// testClaimTakesOver shows Claim taking what Mark would: no mark, an
// expired one, a failure record.
func testClaimTakesOver(t *testing.T, m types.Marker, c *Clock) {
	ctx := context.Background()
	none, expired, failed := newID(), newID(), newID()
	_, err := m.Claim(ctx, none, "gone")
	require.NoError(t, err)
	requireState(t, m, none, types.MarkInProgress)

	other := mark(t, m, expired)
	c.Advance(Timeout)
	_, err = m.Claim(ctx, expired, "gone")
	require.NoError(t, err)
	require.ErrorIs(t, m.Unmark(ctx, expired, other), types.ErrNotOwner)

	require.NoError(t, m.Fail(ctx, failed, "t1", "boom"))
	_, err = m.Claim(ctx, failed, "gone")
	require.NoError(t, err)
	requireState(t, m, failed, types.MarkInProgress)
}
