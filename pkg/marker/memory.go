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
	marks map[string]types.Mark
}

// Mark sets the in-progress mark for id, or returns types.ErrInProgress when
// a live one exists.
func (m *Memory) Mark(ctx context.Context, id string) error {
	if err := m.check(ctx, "mark", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := clock(m.Now)
	if m.stateLocked(id, now).State == types.MarkInProgress {
		return errInProgress(id)
	}
	m.setLocked(id, types.Mark{State: types.MarkInProgress, Since: now.UTC()})
	return nil
}

// Refresh sets the in-progress mark for id, live or expired, to now.
func (m *Memory) Refresh(ctx context.Context, id string) error {
	if err := m.check(ctx, "refresh", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mark, ok := m.marks[id]; !ok || mark.State != types.MarkInProgress {
		return errNoMark(id)
	}
	m.setLocked(id, types.Mark{State: types.MarkInProgress, Since: clock(m.Now).UTC()})
	return nil
}

// Unmark removes any mark for id.
func (m *Memory) Unmark(ctx context.Context, id string) error {
	if err := m.check(ctx, "unmark", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.marks, id)
	return nil
}

// Fail replaces the mark for id with a failure record.
func (m *Memory) Fail(ctx context.Context, id string, reason string) error {
	if err := m.check(ctx, "fail", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setLocked(id, types.Mark{State: types.MarkFailed, Since: clock(m.Now).UTC(), Reason: cleanReason(reason)})
	return nil
}

// Check returns the mark for id; an expired or missing mark is MarkNone.
func (m *Memory) Check(ctx context.Context, id string) (types.Mark, error) {
	if err := m.check(ctx, "check", id); err != nil {
		return types.Mark{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stateLocked(id, clock(m.Now)), nil
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

// stateLocked is the mark for id as of now; m.mu is held.
func (m *Memory) stateLocked(id string, now time.Time) types.Mark {
	mark, ok := m.marks[id]
	switch {
	case !ok:
		return types.Mark{State: types.MarkNone}
	case mark.State == types.MarkInProgress:
		return inProgressAt(mark.Since, now, m.Timeout)
	default:
		return mark
	}
}

// setLocked stores mark for id; m.mu is held.
func (m *Memory) setLocked(id string, mark types.Mark) {
	if m.marks == nil {
		m.marks = make(map[string]types.Mark)
	}
	m.marks[id] = mark
}
