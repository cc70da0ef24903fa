package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

var _ types.Storage = (*File)(nil)

const (
	// dirPerm is the mode of a graph folder the backend creates.
	dirPerm = 0o755
	// filePerm is the mode of a stored graph.
	filePerm = 0o644
	// tempPattern names graphs being written. The leading dot and the suffix
	// keep them from ever matching a graph's name.
	tempPattern = ".graph-*.tmp"
)

// File stores each graph as <Dir>/<id>.dot. A graph is written to a
// temporary file in the same folder, synced and renamed into place, so a
// crash or a failed reader never leaves a partial graph under its name. A
// crash can leave a temporary file behind; it is never served, and
// CleanTemp removes it.
type File struct {
	// Dir is the folder holding the graphs; Store creates it when missing.
	Dir string

	// copied, when set, is told how each Store copied its data (tests).
	copied func(*writeback)
}

// Get opens the graph id, or returns types.ErrNotFound.
func (f *File) Get(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file get %q: %w", id, err)
	}
	fh, err := os.Open(f.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file get %q: %w", id, types.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("file get %q: %w", id, err)
	}
	return fh, nil
}

// Exists reports whether the graph id is stored.
func (f *File) Exists(ctx context.Context, id string) (bool, error) {
	if err := validateID(id); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("file exists %q: %w", id, err)
	}
	_, err := os.Stat(f.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("file exists %q: %w", id, err)
	}
	return true, nil
}

// Store writes r to a temporary file and renames it over the graph id once
// r is read to its end and the data is on disk.
func (f *File) Store(ctx context.Context, id string, r io.Reader) error {
	if err := validateID(id); err != nil {
		return err
	}
	return f.storeFile(ctx, id, f.path(id), r)
}

// storeFile writes r atomically to path, which holds an object of graph id.
func (f *File) storeFile(ctx context.Context, id, path string, r io.Reader) (err error) {
	if err := os.MkdirAll(f.Dir, dirPerm); err != nil {
		return fmt.Errorf("file store %q: create folder: %w", id, err)
	}
	tmp, err := os.CreateTemp(f.Dir, tempPattern)
	if err != nil {
		return fmt.Errorf("file store %q: %w", id, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	_, wb, err := copyWithWriteback(tmp, ctxReader{ctx: ctx, r: r})
	if f.copied != nil {
		f.copied(wb)
	}
	if err != nil {
		return fmt.Errorf("file store %q: write: %w", id, err)
	}
	if err := tmp.Chmod(filePerm); err != nil {
		return fmt.Errorf("file store %q: %w", id, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("file store %q: sync: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("file store %q: close: %w", id, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store %q: %w", id, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("file store %q: rename: %w", id, err)
	}
	if err := syncDir(f.Dir); err != nil {
		return fmt.Errorf("file store %q: %w", id, err)
	}
	return nil
}

// CleanTemp removes the temporary files Store leaves behind when the
// process dies mid-write (.graph-*.tmp) whose last change is older than
// olderThan, and returns how many it removed. A Store still writing keeps
// changing its file, so with olderThan at least the progress timeout (after
// which a silent job has lost its mark anyway) a live write, of this process
// or another sharing the folder, is never touched. Only regular files are
// removed; a missing folder has nothing to clean. It keeps going past a file
// it cannot remove and returns those errors joined.
func (f *File) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	entries, err := os.ReadDir(f.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("file clean %q: %w", f.Dir, err)
	}
	cutoff := time.Now().Add(-max(olderThan, 0))
	removed := 0
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("file clean %q: %w", f.Dir, err)
		}
		if ok, _ := filepath.Match(tempPattern, e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // finished (renamed) or removed meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(f.Dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("file clean %q: %w", f.Dir, errors.Join(errs...))
	}
	return removed, nil
}

// path is the file of the graph id; id has been validated.
func (f *File) path(id string) string { return filepath.Join(f.Dir, graphKey(id)) }

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder: %w", err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync folder: %w", err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("close folder: %w", err)
	}
	return nil
}
