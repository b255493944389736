//go:build unix

package file_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/file"
)

// TestModesWhateverTheUmask checks that FileMode 0660, which is how the
// processes of two users in one group share Dir, holds for everything the
// provider creates: directories (Dir's missing parent included) must get
// the group's write bit and lock files must be writable by the group, or
// the other user's process can neither create sessions nor take locks.
// The umask is the process's, so the test must not run in parallel.
func TestModesWhateverTheUmask(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	for _, umask := range []int{0o022, 0o077} {
		syscall.Umask(umask)
		base := t.TempDir()
		dir := filepath.Join(base, "parent", "sessions")
		p := open(t, file.Config{Dir: dir, Levels: 2, FileMode: 0o660})
		id := sessionkit.NewID()
		create(t, p, id, vals("a", "1"))
		// Rename makes the new ID's directories itself.
		if err := p.Rename(bg, id, sessionkit.NewID(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		create(t, p, sessionkit.NewID(), vals("b", "2"))
		checkModes(t, base, 0o770) // Dir's missing parent included
	}
}

// TestExistingDirKeepsItsMode checks that a Dir prepared beforehand (here
// 0750 with the setgid bit, as for a group-shared directory) is left as
// it is, and that the directories made inside it keep the setgid bit the
// system passes on, so that session files take the shared group.
func TestExistingDirKeepsItsMode(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	dir := filepath.Join(t.TempDir(), "sessions")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Whether a new directory inherits setgid depends on the system (and
	// the file system's mount options): ask it.
	probe := filepath.Join(dir, "probe")
	if err := os.Mkdir(probe, 0o700); err != nil {
		t.Fatal(err)
	}
	pfi, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}
	inherited := pfi.Mode() & fs.ModeSetgid

	p := open(t, file.Config{Dir: dir, FileMode: 0o660})
	create(t, p, sessionkit.NewID(), vals("a", "1"))
	after, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Mode() != before.Mode() {
		t.Errorf("existing Dir went from mode %v to %v; it should be left as it was", before.Mode(), after.Mode())
	}
	checkModes(t, dir, 0o770|inherited)
}

// checkModes checks that every file under root (not root itself) has
// mode 0660 and every directory dirMode, setgid bit included.
func checkModes(t *testing.T, root string, dirMode fs.FileMode) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o660)
		if d.IsDir() {
			want = dirMode
		}
		if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid); got != want {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("umask %03o: %s has mode %v, want %v", currentUmask(), rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// currentUmask returns the process's umask, for messages.
func currentUmask() int {
	u := syscall.Umask(0)
	syscall.Umask(u)
	return u
}
