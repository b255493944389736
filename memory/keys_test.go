package memory

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/sessionkit/sessionkit"
)

// aliasedID returns an ID whose string shares the returned buffer, as an
// ID read straight out of a request would.
func aliasedID() (string, []byte) {
	buf := []byte(sessionkit.NewID())
	return unsafe.String(&buf[0], len(buf)), buf
}

// The provider must never keep the caller's ID string as its map key: the
// caller's memory may be reused (fasthttp reuses request buffers), and the
// stored session would then be lost under a changed key. Every write path
// stores the session under a copy inside the session's own slot.
func TestKeysDoNotAliasTheCallersID(t *testing.T) {
	ctx := context.Background()
	p := New(Config{})
	exp := time.Now().Add(time.Hour)
	set := func(v string) sessionkit.Update {
		return sessionkit.Update{Set: map[string][]byte{"k": []byte(v)}, Expires: exp}
	}
	check := func(why, id string, want string) {
		t.Helper()
		r, err := p.Get(ctx, id)
		if err != nil {
			t.Fatalf("%s: Get: %v", why, err)
		}
		if v, _ := r.Lookup("k"); string(v) != want {
			t.Fatalf("%s: k = %q, want %q", why, v, want)
		}
	}
	scribble := func(b []byte) {
		for i := range b {
			b[i] = 'Z'
		}
	}

	// Create.
	id, buf := aliasedID()
	want := string(buf)
	u := set("1")
	u.Create = true
	if err := p.Update(ctx, id, u); err != nil {
		t.Fatal(err)
	}
	scribble(buf)
	check("after Create", want, "1")

	// Update of an existing session.
	id, buf = aliasedID()
	copy(buf, want)
	if err := p.Update(ctx, id, set("2")); err != nil {
		t.Fatal(err)
	}
	scribble(buf)
	check("after Update", want, "2")

	// Touch.
	id, buf = aliasedID()
	copy(buf, want)
	if err := p.Touch(ctx, id, exp.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	scribble(buf)
	check("after Touch", want, "2")

	// Rename to an aliased new ID.
	newID, nbuf := aliasedID()
	wantNew := string(nbuf)
	if err := p.Rename(ctx, want, newID, exp); err != nil {
		t.Fatal(err)
	}
	scribble(nbuf)
	check("after Rename", wantNew, "2")
	if _, err := p.Get(ctx, want); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("old ID after Rename: %v", err)
	}
}
