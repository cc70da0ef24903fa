//go:build !linux

package storage

import (
	"errors"
	"os"
)

// startWriteback is not available here: the data is written back when
// Sync asks for it.
func startWriteback(*os.File, int64, int64) error {
	return errors.ErrUnsupported
}
