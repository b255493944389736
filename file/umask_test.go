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
		err := filepath.WalkDir(filepath.Join(base, "parent"), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o660)
			if d.IsDir() {
				want = 0o770
			}
			if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid); got != want {
				rel, _ := filepath.Rel(base, path)
				t.Errorf("umask %03o: %s has mode %v, want %v", umask, rel, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
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
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o660)
		if d.IsDir() {
			want = 0o770 | inherited
		}
		if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid); got != want {
			rel, _ := filepath.Rel(dir, path)
			t.Errorf("%s has mode %v, want %v", rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
