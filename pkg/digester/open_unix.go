//go:build unix

package digester

import "syscall"

// openFlags are added to the flags a flow log file, or a folder, is opened
// with. O_NONBLOCK, so that a FIFO standing where a file should be opens
// at once (to be refused as not a regular file) where it would block the
// job, beyond its context, until something wrote to it; it changes nothing
// for a regular file. O_DIRECTORY for a folder, for the same reason.
const (
	openFileFlags   = syscall.O_NONBLOCK
	openFolderFlags = syscall.O_NONBLOCK | syscall.O_DIRECTORY
)
