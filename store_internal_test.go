package sessionkit

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// keyRecorder is a provider that keeps the IDs it is given, as providers
// that store IDs as keys do.
type keyRecorder struct {
	values map[string][]byte
	kept   []string
}

func (k *keyRecorder) Get(context.Context, string) (Record, error) {
	return Record{Values: k.values, Expires: time.Now().Add(time.Hour)}, nil
}

func (k *keyRecorder) Update(_ context.Context, id string, _ Update) error {
	k.kept = append(k.kept, id)
	return nil
}

func (k *keyRecorder) Touch(_ context.Context, id string, _ time.Time) error {
	k.kept = append(k.kept, id)
	return nil
}
func (k *keyRecorder) Delete(context.Context, string) error                    { return nil }
func (k *keyRecorder) Rename(context.Context, string, string, time.Time) error { return nil }
func (k *keyRecorder) Close() error                                            { return nil }

// startStored starts a request whose cookie names a session that p (which
// finds every ID) holds, on a manager using p.
func startStored(t *testing.T, p Provider) (*Store, *fasthttp.RequestCtx) {
	t.Helper()
	return startStoredWith(t, Config{}, p)
}

// startStoredWith is startStored on a manager configured by cfg, whose
// idle timeout it sets to an hour.
func startStoredWith(t *testing.T, cfg Config, p Provider) (*Store, *fasthttp.RequestCtx) {
	t.Helper()
	cfg.IdleTimeout = time.Hour
	m := New(cfg)
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	var req fasthttp.Request
	req.Header.SetCookie("sessionid", NewID())
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, nil, nil)
	s, err := m.Start(ctx)
	if err != nil || s.IsNew() {
		t.Fatalf("Start: %v, new %v", err, s.IsNew())
	}
	return s, ctx
}

// inState reports whether str lies in the memory of the state behind h.
func inState(h *Store, str string) bool {
	at := uintptr(unsafe.Pointer(unsafe.StringData(str)))
	start := uintptr(unsafe.Pointer(h.s))
	return at >= start && at < start+unsafe.Sizeof(*h.s)
}

// A provider that is no Copier may keep the IDs it is handed, by any
// call: they must not lie in the Store's state, whose next request writes
// its own ID there. Under HashIDs the same holds of the storage keys,
// which the state works out once per request.
func TestProviderKeysDoNotLieInTheState(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		p := &keyRecorder{values: map[string][]byte{keyMeta: encodeMeta(time.Now(), 0)}}
		s, ctx := startStoredWith(t, Config{HashIDs: hashed}, p)
		if s.s.idBuf != nil || inState(s, s.s.id) {
			t.Fatal("the ID of a request whose provider is no Copier lies in the state's buffer")
		}
		loaded := s.ID()
		want := loaded
		if hashed {
			want = HashID(loaded)
		}
		s.Set("k", 1)
		if err := s.Save(ctx); err != nil {
			t.Fatal(err)
		}
		s.ShiftExpiration()
		if err := s.Save(ctx); err != nil {
			t.Fatal(err)
		}
		if len(p.kept) != 2 {
			t.Fatalf("provider saw %d writes, want 2 (update and touch)", len(p.kept))
		}
		for _, id := range p.kept {
			if inState(s, id) {
				t.Fatalf("hashed %v: the provider was handed a key inside the state (%q)", hashed, id)
			}
			if id != want {
				t.Fatalf("hashed %v: provider got %q, want %q", hashed, id, want)
			}
		}
		if loaded != s.ID() {
			t.Fatal("the ID handed out earlier changed")
		}
	}
}

// A Copier keeps nothing it is handed, so under HashIDs its storage key
// lies in the state: worked out once per request and ID, and again for
// the new ID after Regenerate.
func TestCopierHashedKeyLiesInTheState(t *testing.T) {
	p := copyingKeys{&keyRecorder{values: map[string][]byte{keyMeta: encodeMeta(time.Now(), 0)}}}
	s, ctx := startStoredWith(t, Config{HashIDs: true}, p)
	loaded := s.ID()
	s.Set("k", 1)
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if len(p.kept) != 1 || p.kept[0] != HashID(loaded) || !inState(s, p.kept[0]) {
		t.Fatalf("the Copier got %q, want HashID(%q) in the state's buffer", p.kept, loaded)
	}
	if err := s.Regenerate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Set("k", 2)
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if last := p.kept[len(p.kept)-1]; last != HashID(s.ID()) || s.ID() == loaded {
		t.Fatalf("after Regenerate the Copier got %q, want HashID of the new ID %q", last, s.ID())
	}
}

// copyingKeys is a keyRecorder that promises to be a Copier.
type copyingKeys struct{ *keyRecorder }

func (copyingKeys) CopiesUpdates() {}

// For a Copier the ID lies in the state's own buffer, and the ID a
// handler gets from Store.ID is a string of its own: the buffer serves
// the state's next request.
func TestIDIsItsOwnString(t *testing.T) {
	s, _ := startStored(t, copyingKeys{&keyRecorder{values: map[string][]byte{keyMeta: encodeMeta(time.Now(), 0)}}})
	if !inState(s, s.s.id) || unsafe.StringData(s.s.id) != &s.s.idArr[0] {
		t.Fatal("setup: the loaded ID is expected in the state's buffer")
	}
	id := s.ID()
	if inState(s, id) {
		t.Fatalf("Store.ID returned a view of the state's buffer (%q)", id)
	}
	if id != s.s.id {
		t.Fatalf("Store.ID = %q, want %q", id, s.s.id)
	}
}

// valueRecorder keeps the bytes of every value it is given, as a provider
// may unless it is a Copier, and a copy of what they held at the time.
type valueRecorder struct {
	keyRecorder
	kept, copies [][]byte
}

func (v *valueRecorder) Update(_ context.Context, _ string, u Update) error {
	if b, ok := u.Set["k"]; ok {
		v.kept = append(v.kept, b)
		v.copies = append(v.copies, append([]byte(nil), b...))
	}
	return nil
}

func (v *valueRecorder) recorded() *valueRecorder { return v }

// copyingRecorder promises what valueRecorder breaks, so that the test
// can see the manager reuse its memory.
type copyingRecorder struct{ valueRecorder }

func (*copyingRecorder) CopiesUpdates() {}

// A provider that is not a Copier may keep what Update hands it: later
// saves must not write over it. A Copier's saves share one buffer.
func TestSaveMemoryIsReusedOnlyForCopiers(t *testing.T) {
	values := map[string][]byte{keyMeta: encodeMeta(time.Now(), 0)}
	for _, tc := range []struct {
		name  string
		p     interface{ recorded() *valueRecorder }
		reuse bool
	}{
		{"plain", &valueRecorder{keyRecorder: keyRecorder{values: values}}, false},
		{"Copier", &copyingRecorder{valueRecorder{keyRecorder: keyRecorder{values: values}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := startStored(t, tc.p.(Provider))
			for _, v := range []string{"first", "later"} {
				s.Set("k", v)
				if err := s.Save(ctx); err != nil {
					t.Fatal(err)
				}
			}
			r := tc.p.recorded()
			if len(r.kept) != 2 {
				t.Fatalf("provider saw %d writes of k, want 2", len(r.kept))
			}
			if !tc.reuse && string(r.kept[0]) != string(r.copies[0]) {
				t.Fatalf("the first save's value changed from %q to %q after the provider had it", r.copies[0], r.kept[0])
			}
			if shared := &r.kept[0][0] == &r.kept[1][0]; shared != tc.reuse {
				t.Fatalf("the two saves shared memory: %v, want %v", shared, tc.reuse)
			}
		})
	}
}

// metaRecorder keeps the ID and the bookkeeping of every session it
// creates, as a provider that is not a Copier may.
type metaRecorder struct {
	keyRecorder
	metas, copies [][]byte
}

func (r *metaRecorder) Update(_ context.Context, id string, u Update) error {
	r.kept = append(r.kept, id)
	if b, ok := u.Set[keyMeta]; ok {
		r.metas = append(r.metas, b)
		r.copies = append(r.copies, append([]byte(nil), b...))
	}
	return nil
}

// A new session's ID is made in the Store's handle, and for a Copier its
// bookkeeping in the Store's own buffer, which saves two allocations: a
// provider that keeps what Update hands it must get its own copies of
// both, unchanged by later requests.
func TestNewSessionMemoryIsNotKeptByPlainProviders(t *testing.T) {
	p := &metaRecorder{}
	m := New(Config{})
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&fasthttp.Request{}, nil, nil)
		s, err := m.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Set("k", i)
		if err := s.Save(ctx); err != nil {
			t.Fatal(err)
		}
		start, end := uintptr(unsafe.Pointer(s)), uintptr(unsafe.Pointer(s))+unsafe.Sizeof(*s)
		if at := uintptr(unsafe.Pointer(unsafe.StringData(p.kept[i]))); at >= start && at < end {
			t.Fatalf("request %d: the provider was handed an ID inside the Store", i)
		}
		if p.kept[i] != s.ID() {
			t.Fatalf("request %d: provider got ID %q, the Store says %q", i, p.kept[i], s.ID())
		}
		_ = s.Close()
	}
	if len(p.metas) != 3 {
		t.Fatalf("%d new sessions' bookkeeping recorded, want 3", len(p.metas))
	}
	for i := range p.metas {
		if string(p.metas[i]) != string(p.copies[i]) {
			t.Fatalf("session %d's bookkeeping changed after the provider had it: %x, was %x", i, p.metas[i], p.copies[i])
		}
		if i > 0 && &p.metas[i][0] == &p.metas[i-1][0] {
			t.Fatalf("sessions %d and %d were handed the same bookkeeping memory", i-1, i)
		}
	}
}

// formRecorder records, for each Update, its Set map and the values its
// methods give.
type formRecorder struct {
	keyRecorder
	sets, seen []map[string][]byte
}

func (r *formRecorder) Update(_ context.Context, _ string, u Update) error {
	r.sets = append(r.sets, maps.Clone(u.Set))
	got := map[string][]byte{}
	for k, v := range u.SetEntries() {
		got[k] = bytes.Clone(v)
	}
	r.seen = append(r.seen, got)
	return nil
}

func (r *formRecorder) recorded() *formRecorder { return r }

// listedRecorder is a formRecorder that is a MethodReader.
type listedRecorder struct{ formRecorder }

func (*listedRecorder) ReadsUpdatesByMethod() {}

// A MethodReader gets Updates whose Set is nil, any other provider
// Updates whose Set holds every value; the methods give the same values
// either way, the bookkeeping of a new session included.
func TestUpdateFormFollowsMethodReader(t *testing.T) {
	values := map[string][]byte{keyMeta: encodeMeta(time.Now(), 0)}
	for _, tc := range []struct {
		name   string
		p      interface{ recorded() *formRecorder }
		listed bool
	}{
		{"plain", &formRecorder{keyRecorder: keyRecorder{values: values}}, false},
		{"MethodReader", &listedRecorder{formRecorder{keyRecorder: keyRecorder{values: values}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := startStored(t, tc.p.(Provider))
			s.Set("a", 1)
			s.Set("b", "x")
			if err := s.Save(ctx); err != nil {
				t.Fatal(err)
			}
			m := New(Config{})
			if err := m.UseProvider(tc.p.(Provider)); err != nil {
				t.Fatal(err)
			}
			fresh := new(fasthttp.RequestCtx)
			fresh.Init(&fasthttp.Request{}, nil, nil)
			n, err := m.Start(fresh)
			if err != nil {
				t.Fatal(err)
			}
			n.Set("a", 2)
			if err := n.Save(fresh); err != nil {
				t.Fatal(err)
			}
			r := tc.p.recorded()
			if len(r.seen) != 2 {
				t.Fatalf("%d writes, want 2", len(r.seen))
			}
			for i, want := range [][]string{{"a", "b"}, {keyMeta, "a"}} {
				if len(r.seen[i]) != len(want) {
					t.Fatalf("write %d: the methods gave %q, want the keys %q", i, r.seen[i], want)
				}
				for _, k := range want {
					if _, ok := r.seen[i][k]; !ok {
						t.Fatalf("write %d: the methods gave %q, want the keys %q", i, r.seen[i], want)
					}
				}
				if tc.listed && r.sets[i] != nil {
					t.Fatalf("write %d: Set = %q, want nil for a MethodReader", i, r.sets[i])
				}
				if !tc.listed && !maps.EqualFunc(r.sets[i], r.seen[i], bytes.Equal) {
					t.Fatalf("write %d: Set = %q, want every value, %q", i, r.sets[i], r.seen[i])
				}
			}
		})
	}
}

// Save of a session that was only read returns without taking the Store's
// lock (see storeState.quiet); with the lock held elsewhere it would wait.
// Once the session changes, or after the request, Save takes it again.
func TestSaveOfAnUnchangedSessionTakesNoLock(t *testing.T) {
	s, ctx := startStored(t, &keyRecorder{values: map[string][]byte{keyMeta: encodeMeta(time.Now(), 0), "k": {1}}})
	_ = s.Get("k")
	_ = s.Has("k")
	// saved reports whether Save returned within wait while the lock
	// was held. A Save that takes the lock cannot; one that does not
	// returns at once, however loaded the machine, so the wait for it is
	// long, and the wait for one that should block need only be long
	// enough to catch the shortcut taken by mistake.
	saved := func(wait time.Duration) bool {
		done := make(chan error, 1)
		s.s.mu.Lock()
		go func() { done <- s.Save(ctx) }()
		select {
		case err := <-done:
			s.s.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			return true
		case <-time.After(wait):
			s.s.mu.Unlock()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return false
		}
	}
	if !saved(10 * time.Second) {
		t.Fatal("Save of an unchanged session waited for the lock")
	}
	s.Set("k", 2)
	if saved(100 * time.Millisecond) {
		t.Fatal("Save of a changed session returned without the lock")
	}
	gen := s.gen
	_ = s.Close()
	if s.s.quiet.Load() == gen+1 {
		t.Fatal("a released Store's shortcut is still on")
	}
	if err := s.Save(ctx); err != ErrStoreReleased {
		t.Fatalf("Save after release = %v, want ErrStoreReleased", err)
	}
}
