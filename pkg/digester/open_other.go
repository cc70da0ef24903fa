//go:build !unix

package digester

// openFileFlags and openFolderFlags are those of open_unix.go, which other
// systems have no use for.
const (
	openFileFlags   = 0
	openFolderFlags = 0
)
