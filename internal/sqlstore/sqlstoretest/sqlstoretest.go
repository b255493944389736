// Package sqlstoretest holds the tests every SQL provider runs beyond the
// conformance suite, so each provider's test file only
// supplies what is specific to its database (connecting, raw SQL, EXPLAIN).
package sqlstoretest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/providertest"
)

var bg = context.Background()

// ConfigErrors checks that open refuses every config in bad, with an
// error that starts with the provider's name.
func ConfigErrors[C any](t *testing.T, name string, bad map[string]C, open func(C) (io.Closer, error)) {
	t.Helper()
	for why, cfg := range bad {
		p, err := open(cfg)
		if err == nil {
			_ = p.Close()
			t.Errorf("%s: New succeeded, want an error", why)
			continue
		}
		t.Logf("%s: %v", why, err)
		if !strings.HasPrefix(err.Error(), name+": ") {
			t.Errorf("%s: error %q lacks the provider prefix", why, err)
		}
	}
}

// Corrupt checks how a provider handles a row whose data is not
// EncodeValues output. corrupt overwrites the stored data of session id
// with garbage, by raw SQL.
func Corrupt(t *testing.T, p sessionkit.Provider, corrupt func(id string)) {
	t.Helper()
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"a": []byte("1")}, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	corrupt(id)
	if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrCorruptValue) {
		t.Fatalf("Get of a corrupt row = %v, want an error wrapping ErrCorruptValue", err)
	}
	if rg, ok := p.(sessionkit.Ranger); ok {
		err := rg.Range(bg, func(string, sessionkit.Record) bool { return true })
		if !errors.Is(err, sessionkit.ErrCorruptValue) {
			t.Fatalf("Range over a corrupt row = %v, want an error wrapping ErrCorruptValue", err)
		}
	}
	// A merge needs the old values, so it must refuse rather than drop them.
	err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"b": []byte("2")}})
	if !errors.Is(err, sessionkit.ErrCorruptValue) {
		t.Fatalf("merging Update of a corrupt row = %v, want an error wrapping ErrCorruptValue", err)
	}
	// Clear does not need them, so it repairs the session.
	if err := p.Update(bg, id, sessionkit.Update{Clear: true, Set: map[string][]byte{"c": []byte("3")}}); err != nil {
		t.Fatalf("clearing Update of a corrupt row: %v", err)
	}
	r, err := p.Get(bg, id)
	if err != nil || len(r.Map()) != 1 || string(r.Map()["c"]) != "3" {
		t.Fatalf("after a clearing Update: Get = %q, %v; want only c=3", r.Map(), err)
	}
}

// GCBatches checks that GC with a small batch size loops until every
// expired row is gone, keeps live rows, and stops on a canceled context.
// p must have been opened with a GCBatchSize well below expired, on a
// table of its own; rows counts the table's rows, expired ones included,
// by raw SQL.
func GCBatches(t *testing.T, p sessionkit.Provider, expired int, rows func() int) {
	t.Helper()
	gc := p.(sessionkit.GarbageCollector)
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	for i := range expired {
		if err := p.Update(bg, fmt.Sprintf("expired-session-%06d", i), sessionkit.Update{Create: true, Expires: past}); err != nil {
			t.Fatal(err)
		}
	}
	live := providertest.ID()
	if err := p.Update(bg, live, sessionkit.Update{Create: true, Set: map[string][]byte{"k": []byte("v")}, Expires: future}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if err := gc.GC(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GC with a canceled context = %v, want context.Canceled", err)
	}
	if n := rows(); n != expired+1 {
		t.Fatalf("%d rows before GC, want %d", n, expired+1)
	}
	if err := gc.GC(bg); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 1 {
		t.Fatalf("%d rows after GC, want 1 (the live session)", n)
	}
	if _, err := p.Get(bg, live); err != nil {
		t.Fatalf("live session after GC: %v", err)
	}
}

// CancelWhileBlocked checks that a context ending while an Update waits
// for a lock ends the Update with an error wrapping
// context.DeadlineExceeded, applies nothing, and leaves the provider
// usable. lock holds the write lock on session id's row (or the whole
// database) until release is called.
func CancelWhileBlocked(t *testing.T, p sessionkit.Provider, lock func(id string) (release func())) {
	t.Helper()
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"a": []byte("1")}, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	release := lock(id)
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	start := time.Now()
	err := p.Update(ctx, id, sessionkit.Update{Set: map[string][]byte{"a": []byte("canceled")}})
	elapsed := time.Since(start)
	cancel()
	release()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update blocked past its deadline = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	t.Logf("blocked Update returned after %v: %v", elapsed, err)
	if err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"b": []byte("2")}}); err != nil {
		t.Fatalf("Update after a canceled one: %v", err)
	}
	r, err := p.Get(bg, id)
	if err != nil || string(r.Map()["a"]) != "1" || string(r.Map()["b"]) != "2" {
		t.Fatalf("after a canceled Update: %q, %v; want a=1 (the canceled write not applied) and b=2", r.Map(), err)
	}
}

// Edges covers paths the conformance suite does not reach, so that every
// statement runs against the real database at least once: an Update with
// nothing to change, a Create over an expired row without waiting for it
// to expire, a Rename onto an expired ID, a Touch to the deadline already
// stored, and the refusals of bad input.
func Edges(t *testing.T, p sessionkit.Provider) {
	t.Helper()
	later := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	past := time.Now().Add(-time.Hour)
	vals := func(kv ...string) map[string][]byte {
		m := map[string][]byte{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = []byte(kv[i+1])
		}
		return m
	}
	want := func(id string, kv ...string) {
		t.Helper()
		r, err := p.Get(bg, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		w := vals(kv...)
		if len(r.Map()) != len(w) {
			t.Fatalf("values = %q, want %q", r.Map(), w)
		}
		for k, v := range w {
			if string(r.Map()[k]) != string(v) {
				t.Fatalf("values = %q, want %q", r.Map(), w)
			}
		}
	}

	a := providertest.ID()
	if err := p.Update(bg, a, sessionkit.Update{Create: true, Set: vals("k", "a"), Expires: later}); err != nil {
		t.Fatal(err)
	}
	if err := p.Update(bg, a, sessionkit.Update{}); err != nil {
		t.Fatalf("empty Update of a live session: %v", err)
	}
	if err := p.Update(bg, providertest.ID(), sessionkit.Update{}); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("empty Update of a missing session = %v, want ErrNotFound", err)
	}
	if tc, ok := p.(sessionkit.Toucher); ok {
		for range 2 {
			if err := tc.Touch(bg, a, later); err != nil {
				t.Fatalf("Touch to the stored deadline: %v", err)
			}
		}
	}
	if err := p.Update(bg, a, sessionkit.Update{Expires: later}); err != nil {
		t.Fatalf("deadline-only Update to the stored deadline: %v", err)
	}

	// A row that is already dead when written.
	dead := providertest.ID()
	if err := p.Update(bg, dead, sessionkit.Update{Create: true, Set: vals("old", "1"), Expires: past}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(bg, dead); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Get of an expired row = %v, want ErrNotFound", err)
	}
	if err := p.Update(bg, dead, sessionkit.Update{Create: true, Set: vals("new", "2"), Expires: later}); err != nil {
		t.Fatalf("Create over an expired row: %v", err)
	}
	want(dead, "new", "2")

	// Rename onto an expired row replaces it.
	target := providertest.ID()
	if err := p.Update(bg, target, sessionkit.Update{Create: true, Set: vals("stale", "1"), Expires: past}); err != nil {
		t.Fatal(err)
	}
	if err := p.Rename(bg, a, target, later); err != nil {
		t.Fatalf("Rename onto an expired ID: %v", err)
	}
	want(target, "k", "a")
	if _, err := p.Get(bg, a); !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("old ID after Rename = %v, want ErrNotFound", err)
	}
	if err := p.Rename(bg, target, target, later); !errors.Is(err, sessionkit.ErrExists) {
		t.Fatalf("Rename to the same ID = %v, want ErrExists", err)
	}
	want(target, "k", "a")

	// Bad input is an error, never a panic or a dead row.
	noDeadline := providertest.ID()
	if err := p.Update(bg, noDeadline, sessionkit.Update{Create: true, Set: vals("a", "1")}); err == nil {
		t.Fatal("Create without a deadline succeeded")
	}
	if err := p.Update(bg, noDeadline, sessionkit.Update{Create: true, Set: vals("a", "1"), Expires: later}); err != nil {
		t.Fatalf("Create after a refused one: %v", err)
	}
}
