//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package file

import "os"

// fileLocks tells that only writers in this process are locked out.
const fileLocks = false

// tryLockFile is a no-op where flock does not exist: only the in-process
// lock serialises writers, so Dir must not be shared between processes
// (see the package documentation).
func tryLockFile(*os.File) (bool, error) { return true, nil }

// unlockFile is a no-op where flock does not exist.
func unlockFile(*os.File) error { return nil }
