package sessionkit_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
)

// mapClient is a client-side provider whose cookie is a token for a
// record it keeps, and which hands records back as Values maps, as a
// third-party sessionkit.ClientSide may (the cookie provider uses Packed).
type mapClient struct {
	mu      sync.Mutex
	records map[string]sessionkit.Record
}

func (c *mapClient) SealSession(_, id string, r sessionkit.Record) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok := fmt.Sprint("t", len(c.records))
	c.records[tok] = sessionkit.Record{Values: maps.Clone(r.Map()), Expires: r.Expires}
	c.records[tok].Values["\x00id"] = []byte(id)
	return tok, nil
}

func (c *mapClient) OpenSession(_, value string) (string, sessionkit.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.records[value]
	if !ok {
		return "", sessionkit.Record{}, sessionkit.ErrNotFound
	}
	vals := maps.Clone(r.Values)
	id := string(vals["\x00id"])
	delete(vals, "\x00id")
	return id, sessionkit.Record{Values: vals, Expires: r.Expires}, nil
}

func (c *mapClient) Get(context.Context, string) (sessionkit.Record, error) {
	return sessionkit.Record{}, sessionkit.ErrNotSupported
}
func (c *mapClient) Update(context.Context, string, sessionkit.Update) error {
	return sessionkit.ErrNotSupported
}
func (c *mapClient) Delete(context.Context, string) error { return sessionkit.ErrNotSupported }
func (c *mapClient) Rename(context.Context, string, string, time.Time) error {
	return sessionkit.ErrNotSupported
}
func (c *mapClient) Close() error { return nil }

// A client-side save seals the whole session: what the cookie held merged
// with the request's changes, whether the provider handed the session over
// as a map or packed.
func TestClientSideSaveMergesValuesBase(t *testing.T) {
	p := &mapClient{records: map[string]sessionkit.Record{}}
	m := sessionkit.New(sessionkit.Config{})
	if err := m.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		work func(s *sessionkit.Store)
		want map[string]string
	}{
		{func(s *sessionkit.Store) { s.Set("a", "1"); s.Set("b", "2") }, map[string]string{"a": "1", "b": "2"}},
		{func(s *sessionkit.Store) { s.Set("c", "3"); s.Delete("b") }, map[string]string{"a": "1", "c": "3"}},
		{func(s *sessionkit.Store) { s.Clear(); s.Set("d", "4") }, map[string]string{"d": "4"}},
	}
	cookie := ""
	for i, st := range steps {
		res := serve(t, m, request{cookie: cookie}, st.work)
		if res.saveErr != nil || res.cookieVal == "" {
			t.Fatalf("step %d: save %v, cookie %q", i, res.saveErr, res.cookieVal)
		}
		cookie = res.cookieVal
		got := map[string]string{}
		serve(t, m, request{cookie: cookie}, func(s *sessionkit.Store) {
			if s.IsNew() {
				t.Fatalf("step %d: the sealed session did not open", i)
			}
			for _, k := range s.Keys() {
				got[k], _ = s.GetString(k)
			}
		})
		if !maps.Equal(got, st.want) {
			t.Fatalf("step %d: the session holds %v, want %v", i, got, st.want)
		}
		// The record sealed keeps the bookkeeping too.
		if len(p.records[cookie].Values["\x00m"]) == 0 {
			t.Fatalf("step %d: the sealed record lost its bookkeeping: %q", i, p.records[cookie].Values)
		}
	}
}
