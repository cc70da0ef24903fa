package digester

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

// Dir is a Source over a local folder (FLOW_LOGS_DIR) holding flow logs in the
// layout AWS writes to S3, for instance a copy made with "aws s3 sync". Keys
// are slash-separated paths relative to the folder; no key, symbolic link or
// ".." can reach outside it, because every access goes through an os.Root.
type Dir struct {
	// Path is the folder.
	Path string
}

var _ Source = Dir{}

// List returns the entries of the folder prefix ("" or a relative path ending
// in "/"): files as keys and sub-folders as prefixes ending in "/". A symbolic
// link to a folder inside Path is a sub-folder; any other link, even a broken
// one, is listed as a file, so that reading it fails loudly rather than being
// passed over. A missing sub-folder is empty; a missing Path is an error.
func (d Dir) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	name := "."
	if prefix != "" {
		name = strings.TrimSuffix(prefix, "/")
		if !strings.HasSuffix(prefix, "/") || !fs.ValidPath(name) {
			return nil, fmt.Errorf("list %q: not a folder inside the flow log folder: %w", prefix, types.ErrInvalidInput)
		}
	}
	root, err := os.OpenRoot(d.Path)
	if err != nil {
		return nil, fmt.Errorf("open flow log folder: %w", err)
	}
	defer root.Close()
	f, err := root.OpenFile(name, os.O_RDONLY|openFolderFlags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		key := prefix + e.Name()
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			if fi, err := root.Stat(key); err == nil && fi.IsDir() {
				isDir = true
			}
		}
		if isDir {
			key += "/"
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Open opens the file key for reading. It returns an error wrapping
// types.ErrNotFound when there is no such file, types.ErrInvalidInput for a
// key that is not a path inside the folder, and an error for anything that is
// not a regular file (a folder, a FIFO, a device, a link leading outside the
// folder), at once: a FIFO is not waited on for a writer.
func (d Dir) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %q: %w", key, err)
	}
	if key == "" || !fs.ValidPath(key) {
		return nil, fmt.Errorf("open %q: not a file inside the flow log folder: %w", key, types.ErrInvalidInput)
	}
	root, err := os.OpenRoot(d.Path)
	if err != nil {
		return nil, fmt.Errorf("open flow log folder: %w", err)
	}
	defer root.Close() // files opened through it stay open
	f, err := root.OpenFile(key, os.O_RDONLY|openFileFlags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %q: %w: %w", key, types.ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("open %q: not a regular file (%s)", key, fi.Mode().Type())
	}
	return f, nil
}
