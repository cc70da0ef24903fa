package marker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.Marker = (*File)(nil)

const (
	// dirPerm is the mode of a mark folder the backend creates.
	dirPerm = 0o755
	// filePerm is the mode of a mark file.
	filePerm = 0o644
	// lockSuffix names the lock file that serializes takeovers of one mark.
	lockSuffix = ".lock"
	// tempPattern names mark bodies being written; they never match a mark.
	tempPattern = ".mark-*.tmp"
	// lockPoll is how often a held lock is tried again.
	lockPoll = 2 * time.Millisecond
)

// File keeps each mark as the file <Dir>/<id>_in_progress holding the same
// body the S3 marker stores. A new mark is created exclusively: its body is
// written to a temporary file that is then hard-linked to the mark's name,
// which fails when the name exists, so the mark appears complete or not at
// all and of two racing creators one wins. Replacing or removing an existing
// mark (takeover, Fail, Unmark) happens under a per-mark lock: flock(2)
// across processes where the system has it, and a mutex within the process.
//
// Marks are not synced to disk: a mark lost to a power cut only lets its
// window be made again.
type File struct {
	// Dir is the folder holding the marks; it is created when missing.
	Dir string
	// Timeout is how long an in-progress mark holds (GRAPH_PROGRESS_TIMEOUT);
	// zero or less means forever.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now. Tests set it to
	// control expiry.
	Now func() time.Time

	// mu serializes replacements within this process; the file lock does
	// so across processes.
	mu sync.Mutex
}

// Mark sets the in-progress mark for id, or returns types.ErrInProgress when
// a live one exists.
func (m *File) Mark(ctx context.Context, id string) error {
	if err := m.check(ctx, "mark", id); err != nil {
		return err
	}
	if err := os.MkdirAll(m.Dir, dirPerm); err != nil {
		return fmt.Errorf("file mark %q: create folder: %w", id, err)
	}
	err := m.create(id, encodeInProgress(clock(m.Now)))
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("file mark %q: %w", id, err)
	}
	// A mark exists: decide under the lock whether it may be taken over.
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("file mark %q: %w", id, err)
	}
	defer unlock()
	for range maxAttempts {
		body, err := os.ReadFile(m.path(id))
		if errors.Is(err, fs.ErrNotExist) {
			// Removed before the lock was taken. Creators that do not hold the
			// lock may still race for the name; the link decides.
			err = m.create(id, encodeInProgress(clock(m.Now)))
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("file mark %q: %w", id, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("file mark %q: read: %w", id, err)
		}
		now := clock(m.Now)
		if decode(body, now, m.Timeout).State == types.MarkInProgress {
			return errInProgress(id)
		}
		// Only lock holders remove or replace an existing mark, and creators
		// cannot link over it, so the mark read above is the one replaced.
		if err := m.replace(id, encodeInProgress(now)); err != nil {
			return fmt.Errorf("file mark %q: take over: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("file mark %q: the mark kept changing for %d attempts: %w", id, maxAttempts, types.ErrInProgress)
}

// Refresh sets the in-progress mark for id, live or expired, to now.
func (m *File) Refresh(ctx context.Context, id string) error {
	if err := m.check(ctx, "refresh", id); err != nil {
		return err
	}
	if _, err := os.Stat(m.Dir); errors.Is(err, fs.ErrNotExist) {
		return errNoMark(id)
	}
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("file refresh %q: %w", id, err)
	}
	defer unlock()
	body, err := os.ReadFile(m.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return errNoMark(id)
	}
	if err != nil {
		return fmt.Errorf("file refresh %q: read: %w", id, err)
	}
	// A timeout of zero reads an expired mark as still in progress.
	if decode(body, clock(m.Now), 0).State != types.MarkInProgress {
		return errNoMark(id)
	}
	if err := m.replace(id, encodeInProgress(clock(m.Now))); err != nil {
		return fmt.Errorf("file refresh %q: %w", id, err)
	}
	return nil
}

// Unmark removes the mark for id; a missing mark is not an error.
func (m *File) Unmark(ctx context.Context, id string) error {
	if err := m.check(ctx, "unmark", id); err != nil {
		return err
	}
	if _, err := os.Stat(m.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("file unmark %q: %w", id, err)
	}
	defer unlock()
	if err := os.Remove(m.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file unmark %q: %w", id, err)
	}
	return nil
}

// Fail replaces the mark for id with a failure record.
func (m *File) Fail(ctx context.Context, id string, reason string) error {
	if err := m.check(ctx, "fail", id); err != nil {
		return err
	}
	body, err := encodeFailed(clock(m.Now), reason)
	if err != nil {
		return fmt.Errorf("file fail %q: %w", id, err)
	}
	if err := os.MkdirAll(m.Dir, dirPerm); err != nil {
		return fmt.Errorf("file fail %q: create folder: %w", id, err)
	}
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("file fail %q: %w", id, err)
	}
	defer unlock()
	if err := m.replace(id, body); err != nil {
		return fmt.Errorf("file fail %q: %w", id, err)
	}
	return nil
}

// Check reads the mark for id. Marks are only ever created or replaced
// whole, so no lock is needed to read one.
func (m *File) Check(ctx context.Context, id string) (types.Mark, error) {
	if err := m.check(ctx, "check", id); err != nil {
		return types.Mark{}, err
	}
	body, err := os.ReadFile(m.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return types.Mark{State: types.MarkNone}, nil
	}
	if err != nil {
		return types.Mark{}, fmt.Errorf("file check %q: %w", id, err)
	}
	return decode(body, clock(m.Now), m.Timeout), nil
}

// check validates id and ctx for the operation op.
func (m *File) check(ctx context.Context, op, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file %s %q: %w", op, id, err)
	}
	return nil
}

// path is the mark file of id; id has been validated.
func (m *File) path(id string) string { return filepath.Join(m.Dir, markKey(id)) }

// create makes the mark for id with body unless one exists, in which case
// the error matches fs.ErrExist.
func (m *File) create(id string, body []byte) error {
	tmp, err := m.writeTemp(body)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp) }()
	if err := os.Link(tmp, m.path(id)); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return nil
}

// replace sets the mark for id to body, whether or not one exists; the
// caller holds the lock.
func (m *File) replace(id string, body []byte) error {
	tmp, err := m.writeTemp(body)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, m.path(id)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename: %w", err)
	}
	return nil
}

// writeTemp writes body to a new temporary file in Dir and returns its name.
func (m *File) writeTemp(body []byte) (string, error) {
	f, err := os.CreateTemp(m.Dir, tempPattern)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	_, werr := f.Write(body)
	if werr == nil {
		werr = f.Chmod(filePerm)
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("write temporary file: %w", err)
	}
	return f.Name(), nil
}

// lock takes the lock of the mark id and returns the function that releases
// it. The lock file is removed on release, so none is left behind; a taker
// that locked a file someone else removed meanwhile notices that the name no
// longer refers to it and tries again.
func (m *File) lock(ctx context.Context, id string) (func(), error) {
	m.mu.Lock()
	name := m.path(id) + lockSuffix
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, filePerm)
		if err != nil {
			m.mu.Unlock()
			return nil, fmt.Errorf("open lock: %w", err)
		}
		if err := lockFile(ctx, f, lockPoll); err != nil {
			_ = f.Close()
			m.mu.Unlock()
			return nil, fmt.Errorf("lock: %w", err)
		}
		held, err := f.Stat()
		if err != nil {
			_ = f.Close()
			m.mu.Unlock()
			return nil, fmt.Errorf("stat lock: %w", err)
		}
		current, err := os.Stat(name)
		if err == nil && os.SameFile(held, current) {
			return func() {
				_ = os.Remove(name)
				_ = f.Close()
				m.mu.Unlock()
			}, nil
		}
		_ = f.Close()
	}
}
