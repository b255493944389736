package sessionkit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// releaseProvider is a minimal in-package provider: a map of records.
type releaseProvider struct {
	mu   sync.Mutex
	recs map[string]Record
}

func (p *releaseProvider) Get(_ context.Context, id string) (Record, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.recs[id]
	if !ok {
		return Record{}, ErrNotFound
	}
	return r, nil
}

func (p *releaseProvider) Update(_ context.Context, id string, u Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.recs[id]
	if !ok && !u.Create {
		return ErrNotFound
	}
	r.Values = u.Apply(r.Values)
	if !u.Expires.IsZero() {
		r.Expires = u.Expires
	}
	p.recs[id] = r
	return nil
}

func (p *releaseProvider) Delete(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.recs, id)
	return nil
}

func (p *releaseProvider) Rename(_ context.Context, o, n string, exp time.Time) error {
	return ErrNotSupported
}
func (p *releaseProvider) Close() error { return nil }

// A Store kept past its request must never reach the session of the
// request its recycled state serves next.
func TestReleasedStoreCannotReachTheNextRequest(t *testing.T) {
	p := &releaseProvider{recs: map[string]Record{}}
	m := New(Config{})
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	idA, idB := NewID(), NewID()
	for id, who := range map[string]string{idA: "alice", idB: "bob"} {
		v, _ := encodeValue(m.cfg.Codec, who)
		p.recs[id] = Record{Values: map[string][]byte{keyMeta: encodeMeta(time.Now(), 0), "user": v}, Expires: time.Now().Add(time.Hour)}
	}
	start := func(ctx *fasthttp.RequestCtx, id string) *Store {
		ctx.Request.Reset()
		ctx.Request.Header.SetCookie("sessionid", id)
		s, err := m.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var ctx1, ctx2 fasthttp.RequestCtx
	ctx1.Init(&fasthttp.Request{}, nil, nil)
	ctx2.Init(&fasthttp.Request{}, nil, nil)

	// sync.Pool may drop what it is given (always, now and then, under the
	// race detector): try until the state is reused.
	var stale, next *Store
	for i := 0; i < 100 && (next == nil || next.s != stale.s); i++ {
		stale = start(&ctx1, idA)
		if v, _ := stale.GetString("user"); v != "alice" {
			t.Fatalf("setup: %q", v)
		}
		ctx1.Request.Reset() // the request is over: fasthttp closes the Store
		next = start(&ctx2, idB)
	}
	if next.s != stale.s {
		t.Skip("the state was never reused")
	}

	if v, err := stale.GetString("user"); !errors.Is(err, ErrStoreReleased) || v != "" {
		t.Fatalf("stale GetString = %q, %v; want ErrStoreReleased", v, err)
	}
	if stale.Get("user") != nil || stale.Has("user") || stale.Keys() != nil || stale.ID() != "" {
		t.Fatal("the stale Store reads the next request's session")
	}
	stale.Set("user", "mallory")
	stale.Delete("user")
	stale.Clear()
	stale.SetFlash("f", 1)
	if err := stale.Save(&ctx1); !errors.Is(err, ErrStoreReleased) {
		t.Fatalf("stale Save = %v, want ErrStoreReleased", err)
	}
	if err := stale.Destroy(&ctx1); !errors.Is(err, ErrStoreReleased) {
		t.Fatalf("stale Destroy = %v, want ErrStoreReleased", err)
	}
	if err := stale.Regenerate(&ctx1); !errors.Is(err, ErrStoreReleased) {
		t.Fatalf("stale Regenerate = %v, want ErrStoreReleased", err)
	}
	if v, err := next.GetString("user"); v != "bob" || err != nil {
		t.Fatalf("the next request's session reads %q, %v after the stale calls", v, err)
	}
	if err := next.Save(&ctx2); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.recs[idB]; !ok {
		t.Fatal("the stale Destroy removed the next request's session")
	}
	if v, _ := p.recs[idB].Values["user"]; len(v) == 0 || string(v[1:]) != "bob" {
		t.Fatalf("stored user of B = %q", v)
	}
	if err := stale.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := next.GetString("user"); v != "bob" {
		t.Fatal("closing the stale Store again released the next request's")
	}
}

// Stale use racing with the next request: run with -race.
func TestReleasedStoreConcurrentUse(t *testing.T) {
	p := &releaseProvider{recs: map[string]Record{}}
	m := New(Config{})
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, nil, nil)
			var prev *Store
			for i := 0; i < 200; i++ {
				ctx.Request.Reset()
				s, err := m.Start(&ctx)
				if err != nil {
					t.Error(err)
					return
				}
				s.Set("n", i)
				if prev != nil {
					prev.Set("n", -1) // dropped: prev's request is over
					if n, err := prev.GetInt("n"); err == nil {
						t.Errorf("stale store read %d", n)
						return
					}
				}
				if n, _ := s.GetInt("n"); n != i {
					t.Errorf("request %d reads %d", i, n)
					return
				}
				prev = s
			}
		}()
	}
	wg.Wait()
}
