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
// timestamp the S3 marker stores, with the owner token on a second line. A
// new mark is created exclusively: its body is written to a temporary file
// that is then hard-linked to the mark's name, which fails when the name
// exists, so the mark appears complete or not at all and of two racing
// creators one wins. Replacing or removing an existing mark (takeover,
// Refresh, Fail, Unmark) happens under a per-mark lock: flock(2) across
// processes where the system has it, and a per-mark mutex within the
// process, so marks of different windows never wait for each other.
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

	// locks serializes replacements of one mark within this process; the
	// file lock does so across processes.
	locks keyedMutex
}

// Mark sets the in-progress mark for id and returns its owner token, or
// returns types.ErrInProgress when a live one exists.
func (m *File) Mark(ctx context.Context, id string) (string, error) {
	return m.take(ctx, "mark", id, nil)
}

// Claim takes the mark for id for a new owner when Mark could, or when the
// live mark's owner is token.
func (m *File) Claim(ctx context.Context, id, token string) (string, error) {
	return m.take(ctx, "claim", id, &token)
}

func (m *File) take(ctx context.Context, op, id string, claim *string) (string, error) {
	if err := m.check(ctx, op, id); err != nil {
		return "", err
	}
	if err := os.MkdirAll(m.Dir, dirPerm); err != nil {
		return "", fmt.Errorf("file %s %q: create folder: %w", op, id, err)
	}
	token := newToken()
	err := m.create(id, encodeOwned(clock(m.Now), token))
	if err == nil {
		return token, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("file %s %q: %w", op, id, err)
	}
	// A mark exists: decide under the lock whether it may be taken over.
	unlock, err := m.lock(ctx, id)
	if err != nil {
		return "", fmt.Errorf("file %s %q: %w", op, id, err)
	}
	defer unlock()
	for range maxAttempts {
		cur, found, err := m.read(id, m.Timeout)
		if err != nil {
			return "", fmt.Errorf("file %s %q: %w", op, id, err)
		}
		if !found {
			// Removed before the lock was taken. Creators that do not hold the
			// lock may still race for the name; the link decides.
			err = m.create(id, encodeOwned(clock(m.Now), token))
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("file %s %q: %w", op, id, err)
			}
			return token, nil
		}
		if !takeable(cur, claim) {
			return "", errInProgress(id)
		}
		// Only lock holders remove or replace an existing mark, and creators
		// cannot link over it, so the mark read above is the one replaced.
		if err := m.replace(id, encodeOwned(clock(m.Now), token)); err != nil {
			return "", fmt.Errorf("file %s %q: take over: %w", op, id, err)
		}
		return token, nil
	}
	return "", fmt.Errorf("file %s %q: the mark kept changing for %d attempts: %w", op, id, maxAttempts, types.ErrInProgress)
}

// Refresh sets the in-progress mark token owns, live or expired, to now.
func (m *File) Refresh(ctx context.Context, id, token string) error {
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
	// A timeout of zero reads an expired mark as still in progress.
	cur, _, err := m.read(id, 0)
	switch {
	case err != nil:
		return fmt.Errorf("file refresh %q: %w", id, err)
	case cur.State != types.MarkInProgress:
		return errNoMark(id)
	case cur.owner != token:
		return errNotOwner(id)
	}
	if err := m.replace(id, encodeOwned(clock(m.Now), token)); err != nil {
		return fmt.Errorf("file refresh %q: %w", id, err)
	}
	return nil
}

// Unmark removes the mark for id when token owns it; a missing mark is not
// an error.
func (m *File) Unmark(ctx context.Context, id, token string) error {
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
	cur, found, err := m.read(id, 0)
	switch {
	case err != nil:
		return fmt.Errorf("file unmark %q: %w", id, err)
	case !found:
		return nil
	case !owns(cur, token):
		return errNotOwner(id)
	}
	if err := os.Remove(m.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file unmark %q: %w", id, err)
	}
	return nil
}

// Fail replaces the mark for id with a failure record when token owns it.
func (m *File) Fail(ctx context.Context, id, token, reason string) error {
	if err := m.check(ctx, "fail", id); err != nil {
		return err
	}
	body, err := encodeFailed(clock(m.Now), token, reason)
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
	for range maxAttempts {
		cur, found, err := m.read(id, 0)
		if err != nil {
			return fmt.Errorf("file fail %q: %w", id, err)
		}
		if !found {
			// A creator may link a new mark meanwhile; that mark is not ours.
			err = m.create(id, body)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("file fail %q: %w", id, err)
			}
			return nil
		}
		if !owns(cur, token) {
			return errNotOwner(id)
		}
		if err := m.replace(id, body); err != nil {
			return fmt.Errorf("file fail %q: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("file fail %q: the mark kept changing for %d attempts", id, maxAttempts)
}

// read reads the mark for id with timeout applied; found is false when
// there is no mark file.
func (m *File) read(id string, timeout time.Duration) (cur stored, found bool, err error) {
	body, err := os.ReadFile(m.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return stored{Mark: types.Mark{State: types.MarkNone}}, false, nil
	}
	if err != nil {
		return stored{}, false, fmt.Errorf("read: %w", err)
	}
	return decode(body, clock(m.Now), timeout), true, nil
}

// Check reads the mark for id. Marks are only ever created or replaced
// whole, so no lock is needed to read one.
func (m *File) Check(ctx context.Context, id string) (types.Mark, error) {
	if err := m.check(ctx, "check", id); err != nil {
		return types.Mark{}, err
	}
	cur, _, err := m.read(id, m.Timeout)
	if err != nil {
		return types.Mark{}, fmt.Errorf("file check %q: %w", id, err)
	}
	return cur.Mark, nil
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
	release, err := m.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	name := m.path(id) + lockSuffix
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, filePerm)
		if err != nil {
			release()
			return nil, fmt.Errorf("open lock: %w", err)
		}
		if err := lockFile(ctx, f, lockPoll); err != nil {
			_ = f.Close()
			release()
			return nil, fmt.Errorf("lock: %w", err)
		}
		held, err := f.Stat()
		if err != nil {
			_ = f.Close()
			release()
			return nil, fmt.Errorf("stat lock: %w", err)
		}
		current, err := os.Stat(name)
		if err == nil && os.SameFile(held, current) {
			return func() {
				_ = os.Remove(name)
				_ = f.Close()
				release()
			}, nil
		}
		_ = f.Close()
	}
}

// keyedMutex is one mutex per key, made on first use and forgotten when no
// one holds or waits for it. A waiter gives up when its context ends.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	held chan struct{} // a value in it means held
	refs int           // holders and waiters
}

// lock takes the mutex of key and returns the function that releases it.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{held: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	forget := func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
	}
	select {
	case l.held <- struct{}{}:
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
	return func() {
		<-l.held
		forget()
	}, nil
}
