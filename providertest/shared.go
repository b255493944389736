package providertest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
)

// NewShared returns two providers over one store, as two processes of a
// fleet behind a load balancer would have them: separate instances (each
// with its own connections and any copies it keeps), the same namespace
// (key prefix, table or directory), fresh for each call.
type NewShared func(t *testing.T) (a, b sessionkit.Provider)

// SharedLag is how long RunShared lets one instance take to see what
// another wrote. An instance that reads from the store each time sees it
// at once; one that keeps copies of sessions (the redis provider's
// LocalCache) must drop a copy once another instance has changed the
// session, and this bounds how late it may do so. It is generous so that
// a loaded machine does not fail a provider that is only slow.
const SharedLag = 2 * time.Second

// RunShared runs the cases about instances that share one store, which
// Run cannot see: each of Run's subtests has a provider, and its store,
// to itself. What is checked: a session one instance created, the other
// reads at once; an update, a Touch, a Delete or a Rename through one is
// seen through the other within SharedLag, whatever the other read
// before; an Update through the other after a Delete or Rename fails
// with ErrNotFound rather than bringing the session back; Create through
// both of one ID makes one of them fail with ErrExists; concurrent
// updates of different keys through both all persist; and Run's random
// requests through managers on both instances, overlapping requests of a
// session often on different ones, read and leave every session as the
// model says, each instance within SharedLag.
//
// Providers whose store cannot be shared (the memory provider) and
// client-side ones have nothing to run. RunShared closes both providers
// of each subtest when it ends.
func RunShared(t *testing.T, newShared NewShared) {
	t.Helper()
	open := func(t *testing.T) (a, b sessionkit.Provider) {
		t.Helper()
		a, b = newShared(t)
		if a == nil || b == nil {
			t.Fatal("newShared returned a nil provider")
		}
		t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
		return a, b
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, a, b sessionkit.Provider)
	}{
		{"SharedRoundTrip", testSharedRoundTrip},
		{"SharedSeesUpdate", testSharedSeesUpdate},
		{"SharedSeesTouch", testSharedSeesTouch},
		{"SharedSeesDelete", testSharedSeesDelete},
		{"SharedSeesRename", testSharedSeesRename},
		{"SharedCreateExisting", testSharedCreateExisting},
		{"SharedConcurrentMerge", testSharedConcurrentMerge},
		{"SharedConcurrentRenames", func(t *testing.T, a, b sessionkit.Provider) { RenameBurst(t, 8, 25, a, b) }},
		{"SharedRandomRequests", testSharedRandomRequests},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			c.fn(t, a, b)
		})
	}
}

// within polls check until it returns nil or SharedLag has passed, and
// fails the test with check's last error then.
func within(t *testing.T, what string, check func() error) {
	t.Helper()
	poll(t, SharedLag, what, check)
}

// poll is within for any lag; with none, it calls check once.
func poll(t *testing.T, lag time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(lag)
	for {
		err := check()
		switch {
		case err == nil:
			return
		case lag <= 0:
			t.Fatalf("%s: %v", what, err)
		case time.Now().After(deadline):
			t.Fatalf("%s: still after %v: %v", what, lag, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holds returns a check that id reads, through p, with exactly want.
func holds(p sessionkit.Provider, id string, want map[string][]byte) func() error {
	return func() error {
		r, err := p.Get(bg, id)
		if err != nil {
			return err
		}
		got := r.Map()
		if len(got) != len(want) {
			return fmt.Errorf("read %q, want %q", got, want)
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || string(g) != string(v) {
				return fmt.Errorf("read %q, want %q", got, want)
			}
		}
		return nil
	}
}

// missing returns a check that id reads, through p, as ErrNotFound.
func missing(p sessionkit.Provider, id string) func() error {
	return func() error {
		r, err := p.Get(bg, id)
		if errors.Is(err, sessionkit.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("read %q, want ErrNotFound", r.Map())
	}
}

func testSharedRoundTrip(t *testing.T, a, b sessionkit.Provider) {
	id := ID()
	Create(t, a, id, Values("k", "1"), Later())
	// b never read id: it has nothing to be stale about.
	if err := holds(b, id, Values("k", "1"))(); err != nil {
		t.Fatalf("the other instance, at once: %v", err)
	}
	if err := b.Update(bg, id, sessionkit.Update{Set: Values("k", "2", "j", "3")}); err != nil {
		t.Fatal(err)
	}
	within(t, "the creating instance reading the other's update", holds(a, id, Values("k", "2", "j", "3")))
}

func testSharedSeesUpdate(t *testing.T, a, b sessionkit.Provider) {
	id := ID()
	Create(t, a, id, Values("n", "0"), Later())
	readA := mustGet(t, a, id)
	readB := mustGet(t, b, id)
	if err := b.Update(bg, id, sessionkit.Update{Set: Values("n", "1"), Base: readB}); err != nil {
		t.Fatal(err)
	}
	within(t, "an instance that had read the session, after the other's update", holds(a, id, Values("n", "1")))
	// An update through a on what it read before b's: b's value of n is
	// replaced, and nothing else of b's is lost.
	if err := b.Update(bg, id, sessionkit.Update{Set: Values("b", "x")}); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(bg, id, sessionkit.Update{Set: Values("a", "y"), Base: readA}); err != nil {
		t.Fatal(err)
	}
	want := Values("n", "1", "b", "x", "a", "y")
	within(t, "the writer of a stale-based update", holds(a, id, want))
	within(t, "the other instance", holds(b, id, want))
}

func testSharedSeesTouch(t *testing.T, a, b sessionkit.Provider) {
	id := ID()
	Create(t, a, id, Values("a", "1"), Later())
	mustGet(t, a, id)
	ext := time.Now().Add(3 * time.Hour)
	if err := extend(b, id, ext); err != nil {
		t.Fatal(err)
	}
	within(t, "an instance that had read the session, after the other's touch", func() error {
		r, err := a.Get(bg, id)
		if err != nil {
			return err
		}
		if d := r.Expires.Sub(ext); d < -time.Second || d > time.Second {
			return fmt.Errorf("read a deadline of %v, want %v", r.Expires, ext)
		}
		return nil
	})
}

func testSharedSeesDelete(t *testing.T, a, b sessionkit.Provider) {
	seen, revived := ID(), ID()
	var reads [2]sessionkit.Record
	for i, id := range []string{seen, revived} {
		Create(t, a, id, Values("a", "1"), Later())
		reads[i] = mustGet(t, a, id)
		mustGet(t, b, id)
		if err := b.Delete(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	within(t, "an instance that had read the session, after the other's delete", missing(a, seen))
	if err := missing(b, seen)(); err != nil {
		t.Fatalf("the deleting instance: %v", err)
	}
	// The store holds no session: whatever a still remembers, its
	// update must not bring it back.
	err := a.Update(bg, revived, sessionkit.Update{Set: Values("b", "2"), Base: reads[1], Expires: Later()})
	if !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Update through the other instance right after Delete = %v, want ErrNotFound", err)
	}
	within(t, "a session deleted through one instance, updated through the other", missing(a, revived))
	if err := missing(b, revived)(); err != nil {
		t.Fatalf("the deleting instance, after the other's update: %v", err)
	}
}

func testSharedSeesRename(t *testing.T, a, b sessionkit.Provider) {
	oldID, newID := ID(), ID()
	Create(t, a, oldID, Values("a", "1"), Later())
	mustGet(t, a, oldID)
	if err := b.Rename(bg, oldID, newID, Later()); err != nil {
		t.Fatal(err)
	}
	within(t, "the old ID through an instance that had read it, after the other's rename", missing(a, oldID))
	if err := holds(a, newID, Values("a", "1"))(); err != nil {
		t.Fatalf("the new ID through the other instance: %v", err)
	}
	err := a.Update(bg, oldID, sessionkit.Update{Set: Values("b", "2"), Expires: Later()})
	if !errors.Is(err, sessionkit.ErrNotFound) {
		t.Fatalf("Update of the old ID through the other instance = %v, want ErrNotFound", err)
	}
}

func testSharedCreateExisting(t *testing.T, a, b sessionkit.Provider) {
	id := ID()
	Create(t, a, id, Values("who", "a"), Later())
	err := b.Update(bg, id, sessionkit.Update{Create: true, Set: Values("who", "b"), Expires: Later()})
	if !errors.Is(err, sessionkit.ErrExists) {
		t.Fatalf("Create through the other instance of a live ID = %v, want ErrExists", err)
	}
	within(t, "the creating instance", holds(a, id, Values("who", "a")))
	within(t, "the refused instance", holds(b, id, Values("who", "a")))
}

func testSharedConcurrentMerge(t *testing.T, a, b sessionkit.Provider) {
	id := ID()
	Create(t, a, id, Values("start", "1"), Later())
	const writers = 8
	want := Values("start", "1")
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		p := a
		if i%2 == 1 {
			p = b
		}
		k := fmt.Sprintf("k%d", i)
		want[k] = []byte(k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each reads first, as a request does, and hands its read
			// on as Base: the writes that land in between make every
			// Base but one stale.
			r, err := p.Get(bg, id)
			if err != nil {
				errs <- err
				return
			}
			errs <- p.Update(bg, id, sessionkit.Update{Set: Values(k, k), Base: r})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	within(t, "every key of both instances' writers, through the first", holds(a, id, want))
	within(t, "every key of both instances' writers, through the second", holds(b, id, want))
}
