package marker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.Marker = (*Memory)(nil)

// Memory keeps marks in memory, for tests and for a single process that
// needs no persistence. The zero value is ready to use; its marks never
// expire until Timeout is set.
type Memory struct {
	// Timeout is how long an in-progress mark holds (GRAPH_PROGRESS_TIMEOUT);
	// zero or less means forever.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now. Tests set it to
	// control expiry.
	Now func() time.Time

	mu    sync.Mutex
	marks map[string]stored
}

// Mark sets the in-progress mark for id and returns its owner token, or
// returns types.ErrInProgress when a live one exists.
func (m *Memory) Mark(ctx context.Context, id string) (string, error) {
	return m.take(ctx, "mark", id, nil)
}

// Claim takes the mark for id for a new owner when Mark could, or when the
// live mark's owner is token.
func (m *Memory) Claim(ctx context.Context, id, token string) (string, error) {
	return m.take(ctx, "claim", id, &token)
}

func (m *Memory) take(ctx context.Context, op, id string, claim *string) (string, error) {
	if err := m.check(ctx, op, id); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := clock(m.Now)
	if !takeable(m.stateLocked(id, now, m.Timeout), claim) {
		return "", errInProgress(id)
	}
	token := newToken()
	m.setLocked(id, stored{Mark: types.Mark{State: types.MarkInProgress, Since: now.UTC()}, owner: token})
	return token, nil
}

// Refresh sets the in-progress mark token owns, live or expired, to now.
func (m *Memory) Refresh(ctx context.Context, id, token string) error {
	if err := m.check(ctx, "refresh", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.stateLocked(id, time.Time{}, 0)
	switch {
	case cur.State != types.MarkInProgress:
		return errNoMark(id)
	case cur.owner != token:
		return errNotOwner(id)
	}
	m.setLocked(id, stored{Mark: types.Mark{State: types.MarkInProgress, Since: clock(m.Now).UTC()}, owner: token})
	return nil
}

// Unmark removes the mark for id when token owns it.
func (m *Memory) Unmark(ctx context.Context, id, token string) error {
	if err := m.check(ctx, "unmark", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !owns(m.stateLocked(id, time.Time{}, 0), token) {
		return errNotOwner(id)
	}
	delete(m.marks, id)
	return nil
}

// Fail replaces the mark for id with a failure record when token owns it.
func (m *Memory) Fail(ctx context.Context, id, token, reason string) error {
	if err := m.check(ctx, "fail", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !owns(m.stateLocked(id, time.Time{}, 0), token) {
		return errNotOwner(id)
	}
	m.setLocked(id, stored{Mark: types.Mark{State: types.MarkFailed, Since: clock(m.Now).UTC(), Reason: cleanReason(reason)}, owner: token})
	return nil
}

// Check returns the mark for id; an expired or missing mark is MarkNone.
func (m *Memory) Check(ctx context.Context, id string) (types.Mark, error) {
	if err := m.check(ctx, "check", id); err != nil {
		return types.Mark{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stateLocked(id, clock(m.Now), m.Timeout).Mark, nil
}

// check validates id and ctx for the operation op.
func (m *Memory) check(ctx context.Context, op, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory %s %q: %w", op, id, err)
	}
	return nil
}

// stateLocked is the mark for id as of now with timeout applied; m.mu is
// held. A zero timeout reads an expired mark as still in progress.
func (m *Memory) stateLocked(id string, now time.Time, timeout time.Duration) stored {
	cur, ok := m.marks[id]
	switch {
	case !ok:
		return stored{Mark: types.Mark{State: types.MarkNone}}
	case cur.State == types.MarkInProgress:
		return stored{Mark: inProgressAt(cur.Since, now, timeout), owner: cur.owner}
	default:
		return cur
	}
}

// setLocked stores mark for id; m.mu is held.
func (m *Memory) setLocked(id string, mark stored) {
	if m.marks == nil {
		m.marks = make(map[string]stored)
	}
	m.marks[id] = mark
}
