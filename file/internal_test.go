package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
)

var bg = context.Background()

func newTest(t *testing.T, cfg Config) *Provider {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestLocate(t *testing.T) {
	for levels := 1; levels <= MaxLevels; levels++ {
		p := newTest(t, Config{Levels: levels})
		for _, id := range []string{sessionkit.NewID(), strings.Repeat("-", sessionkit.MinIDLength), strings.Repeat("_", sessionkit.MaxIDLength)} {
			l, err := p.locate(id)
			if err != nil {
				t.Fatal(err)
			}
			rel, err := filepath.Rel(p.dir, l.path)
			if err != nil || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
				t.Fatalf("path %s is not inside %s", l.path, p.dir)
			}
			parts := strings.Split(rel, string(filepath.Separator))
			if len(parts) != levels+1 || len(parts[levels]) != 64+len(suffix) {
				t.Fatalf("levels %d: path %s has the wrong shape", levels, rel)
			}
			if filepath.Dir(l.path) != l.dir {
				t.Fatalf("dir %s does not hold %s", l.dir, l.path)
			}
		}
	}
}

func TestCorruptFiles(t *testing.T) {
	p := newTest(t, Config{})
	cases := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"garbage", func([]byte) []byte { return []byte("this is not a session file at all") }},
		{"empty", func([]byte) []byte { return nil }},
		{"truncated header", func(b []byte) []byte { return b[:10] }},
		{"truncated body", func(b []byte) []byte { return b[:len(b)-3] }},
		{"flipped bit in a value", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"flipped bit in the deadline", func(b []byte) []byte { b[12] ^= 0x10; return b }},
		{"newer format", func(b []byte) []byte { b[3] = formatVersion + 1; return b }},
		{"bad values with a good checksum", func(b []byte) []byte {
			r, _ := decodeFile(b)
			return encodeFile(string(r.id), r.deadline, []byte{0xee, 1, 2})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := sessionkit.NewID()
			if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"k": []byte("value")},
				Expires: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			l, _ := p.locate(id)
			b, err := os.ReadFile(l.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(l.path, c.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrCorruptValue) {
				t.Fatalf("Get = %v, want ErrCorruptValue", err)
			}
			if err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"a": []byte("1")}}); !errors.Is(err, sessionkit.ErrCorruptValue) {
				t.Fatalf("Update = %v, want ErrCorruptValue", err)
			}
			// GC leaves a corrupt file alone, even one that looks expired.
			if err := p.GC(bg); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(l.path); err != nil {
				t.Fatalf("GC removed a corrupt file: %v", err)
			}
			if err := p.Delete(bg, id); err != nil {
				t.Fatalf("Delete of a corrupt session: %v", err)
			}
			if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrNotFound) {
				t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestGCTempFiles(t *testing.T) {
	p := newTest(t, Config{})
	id := sessionkit.NewID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	l, _ := p.locate(id)
	stale := filepath.Join(l.dir, tempPrefix+"stale")
	fresh := filepath.Join(l.dir, tempPrefix+"fresh")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * tempMaxAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := p.GC(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("GC kept a stale temporary file: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("GC removed a fresh temporary file, maybe one being written: %v", err)
	}
	if _, err := p.Get(bg, id); err != nil {
		t.Errorf("GC removed a live session: %v", err)
	}
}

// TestLockWaitHonoursContext holds a session's file lock through a second
// provider, as another process would, and checks that a write waiting
// for it gives up when its context ends.
func TestLockWaitHonoursContext(t *testing.T) {
	if !fileLocks {
		t.Skip("no file locks on this system")
	}
	p := newTest(t, Config{})
	other := newTest(t, Config{Dir: p.dir})
	id := sessionkit.NewID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	l, _ := p.locate(id)
	if err := other.lock(bg, "test", l.stripe); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Update(ctx, id, sessionkit.Update{Set: map[string][]byte{"a": []byte("1")}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update while another holds the lock = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Update took %v to give up", d)
	}
	other.unlock(l.stripe)
	if err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"a": []byte("1")}}); err != nil {
		t.Fatalf("Update after the lock was released: %v", err)
	}
}

// TestCloseWhileWaiting checks that Close ends a wait for a lock that
// another process holds.
func TestCloseWhileWaiting(t *testing.T) {
	if !fileLocks {
		t.Skip("no file locks on this system")
	}
	p := newTest(t, Config{})
	other := newTest(t, Config{Dir: p.dir})
	id := sessionkit.NewID()
	l, _ := p.locate(id)
	if err := other.lock(bg, "test", l.stripe); err != nil {
		t.Fatal(err)
	}
	defer other.unlock(l.stripe)
	done := make(chan error, 1)
	go func() {
		done <- p.Update(bg, id, sessionkit.Update{Create: true, Expires: time.Now().Add(time.Hour)})
	}()
	time.Sleep(20 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-done:
		if !errors.Is(err, sessionkit.ErrClosed) {
			t.Fatalf("Update during Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a lock wait")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
