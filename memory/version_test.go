package memory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
)

// TestVersionLayout builds versions for IDs of every length class, from
// the shortest to the longest a version holds (past MaxIDLength its
// prefix is allocated rather than taken from zeroPrefix), and reads every
// field back.
func TestVersionLayout(t *testing.T) {
	old, err := newVersion("x", 0, "", &sessionkit.Update{Set: map[string][]byte{"a": []byte("1")}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	u := sessionkit.Update{Set: map[string][]byte{"b": []byte("22")}}
	for _, n := range []int{1, sessionkit.MinIDLength, sessionkit.DefaultIDLength, sessionkit.MaxIDLength, sessionkit.MaxIDLength + 1, maxIDLength} {
		id := strings.Repeat("i", n-1) + "z"
		v, err := newVersion(id, 0xbeef, packedOf(old), &u, -42)
		if err != nil {
			t.Fatalf("%d-byte ID: %v", n, err)
		}
		if got := keyOf(v); got != id {
			t.Fatalf("%d-byte ID: keyOf = %d bytes, want the ID", n, len(got))
		}
		if got := expiresOf(v); got != -42 {
			t.Fatalf("%d-byte ID: expiresOf = %d, want -42", n, got)
		}
		if got := serialOf(v); got != 0xbeef {
			t.Fatalf("%d-byte ID: serialOf = %#x, want 0xbeef", n, got)
		}
		p := packedOf(v)
		a, _ := p.Lookup("a")
		b, _ := p.Lookup("b")
		if string(a) != "1" || string(b) != "22" {
			t.Fatalf("%d-byte ID: values a=%q b=%q, want 1 and 22", n, a, b)
		}
		setSerial(v, 7)
		if serialOf(v) != 7 || keyOf(v) != id || expiresOf(v) != -42 {
			t.Fatalf("%d-byte ID: setSerial changed another field", n)
		}
	}
	for i, b := range zeroPrefix {
		if b != 0 {
			t.Fatalf("zeroPrefix[%d] = %d: a version was built in it", i, b)
		}
	}
}

// TestIDTooLong: an ID longer than a version can hold is refused with an
// error, never a panic or a session stored under a cut ID, and a session
// cannot be renamed to one.
func TestIDTooLong(t *testing.T) {
	ctx := context.Background()
	p := New(Config{})
	long := strings.Repeat("a", maxIDLength+1)
	exp := time.Now().Add(time.Hour)
	set := map[string][]byte{"k": []byte("v")}
	err := p.Update(ctx, long, sessionkit.Update{Create: true, Set: set, Expires: exp})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Create with a %d-byte ID = %v, want an error wrapping ErrTooLarge", len(long), err)
	}
	if _, err := p.Get(ctx, long); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Get of the refused ID = %v, want ErrNotFound", err)
	}
	if _, err := p.Get(ctx, long[:maxIDLength]); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Get of the refused ID cut to %d bytes = %v, want ErrNotFound", maxIDLength, err)
	}
	id := sessionkit.NewID()
	if err := p.Update(ctx, id, sessionkit.Update{Create: true, Set: set, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if err := p.Rename(ctx, id, long, exp); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Rename to a %d-byte ID = %v, want an error wrapping ErrTooLarge", len(long), err)
	}
	r, err := p.Get(ctx, id)
	if err != nil {
		t.Fatalf("the session after a refused Rename: %v", err)
	}
	if v, _ := r.Lookup("k"); string(v) != "v" {
		t.Fatalf("k = %q after a refused Rename, want v", v)
	}
	if n := p.Stored(); n != 1 {
		t.Fatalf("%d sessions stored, want 1", n)
	}
}
