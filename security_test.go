package sessionkit_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sessionkit/sessionkit"
)

func signKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// With SignKeys, a forged or random ID is refused before any provider
// call: a flood of them costs the storage nothing.
func TestSignedIDsRefuseForgeriesWithoutProviderCalls(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{SignKeys: [][]byte{signKey(1)}, IDInHeader: true, IDInQuery: true})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("user", "alice") })
	if res.saveErr != nil {
		t.Fatal(res.saveErr)
	}
	signed := res.cookieVal
	id, _, ok := strings.Cut(signed, ".")
	if !ok || !sessionkit.ValidID(id) {
		t.Fatalf("cookie %q is not a signed ID", signed)
	}
	var v string
	serve(t, m, request{cookie: signed}, func(s *sessionkit.Store) { v, _ = s.GetString("user") })
	if v != "alice" {
		t.Fatalf("signed cookie read %q", v)
	}
	before := p.calls()
	// The bare ID (a leaked storage key, say), random IDs, other-key
	// signatures and tampered signatures.
	other := sessionkit.New(sessionkit.Config{SignKeys: [][]byte{signKey(2)}})
	otherSigned := serve(t, mustProvider(t, other), request{}, func(s *sessionkit.Store) { s.Set("x", 1) }).cookieVal
	// Change the signature's last character to another one that decodes
	// (its low bits must stay zero), so the tampering is never a no-op.
	last := "A"
	if signed[len(signed)-1] == 'A' {
		last = "Q"
	}
	attempts := []string{id, otherSigned, signed[:len(signed)-1] + last, signed + "x"}
	for range 500 {
		attempts = append(attempts, sessionkit.NewID(), sessionkit.NewID()+"."+sessionkit.NewID())
	}
	for _, a := range attempts {
		for _, r := range []request{{cookie: a}, {header: a}, {query: a}} {
			serve(t, m, r, func(s *sessionkit.Store) {
				if !s.IsNew() {
					t.Fatalf("forged value %q opened a session", a)
				}
			})
		}
	}
	if got := p.calls() - before; got != 0 {
		t.Fatalf("%d forged IDs cost %d provider calls, want 0", len(attempts)*3, got)
	}
}

func mustProvider(t *testing.T, m *sessionkit.Session) *sessionkit.Session {
	t.Helper()
	if err := m.SetProvider("memory", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// Signing keys rotate: a cookie signed with the old key still works once
// a new key is put first.
func TestSignedIDKeyRotation(t *testing.T) {
	m1, p := newManager(t, sessionkit.Config{SignKeys: [][]byte{signKey(1)}})
	signed := serve(t, m1, request{}, func(s *sessionkit.Store) { s.Set("k", "v") }).cookieVal
	m2 := sessionkit.New(sessionkit.Config{SignKeys: [][]byte{signKey(2), signKey(1)}})
	if err := m2.UseProvider(p); err != nil {
		t.Fatal(err)
	}
	var v string
	serve(t, m2, request{cookie: signed}, func(s *sessionkit.Store) { v, _ = s.GetString("k") })
	if v != "v" {
		t.Fatal("rotation logged the user out")
	}
	if err := sessionkit.New(sessionkit.Config{SignKeys: [][]byte{[]byte("short")}}).SetProvider("memory", nil); err == nil {
		t.Fatal("a short signing key was accepted")
	}
}

// A signing manager's Config makes the same manager again: the signer
// is not one of the Config's cookie hooks, which New would refuse beside
// SignKeys.
func TestSignedConfigRoundTrip(t *testing.T) {
	m1, p := newManager(t, sessionkit.Config{SignKeys: [][]byte{signKey(1)}})
	cfg := m1.Config()
	if cfg.EncodeCookie != nil || cfg.DecodeCookie != nil {
		t.Error("Config() of a signing manager holds cookie hooks it was not given")
	}
	m2 := sessionkit.New(cfg)
	if err := m2.UseProvider(p); err != nil {
		t.Fatalf("New(m.Config()) of a signing manager: %v", err)
	}
	for _, c := range []struct{ from, to *sessionkit.Session }{{m1, m2}, {m2, m1}} {
		signed := serve(t, c.from, request{}, func(s *sessionkit.Store) { s.Set("k", "v") }).cookieVal
		if !strings.Contains(signed, ".") {
			t.Fatalf("cookie %q is not signed", signed)
		}
		var v string
		serve(t, c.to, request{cookie: signed}, func(s *sessionkit.Store) { v, _ = s.GetString("k") })
		if v != "v" {
			t.Errorf("a cookie signed by one manager did not open the session in the other")
		}
	}
}

// With HashIDs the storage never sees a session ID, only its hash.
func TestHashedIDs(t *testing.T) {
	m, p := newManager(t, sessionkit.Config{HashIDs: true})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("k", "v") }).cookieVal
	if _, err := p.Get(bg, id); err == nil {
		t.Fatal("the session is stored under its plain ID")
	}
	if _, err := p.Get(bg, sessionkit.HashID(id)); err != nil {
		t.Fatalf("the session is not under its hash: %v", err)
	}
	var v string
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { v, _ = s.GetString("k") })
	if v != "v" {
		t.Fatal("hashed session not readable")
	}
	// A leaked storage key is useless as a cookie.
	serve(t, m, request{cookie: sessionkit.HashID(id)}, func(s *sessionkit.Store) {
		if !s.IsNew() {
			t.Fatal("the storage key opened the session")
		}
	})
	// Regenerate and DestroyByID work through the hash too.
	var newID string
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) {
		if err := s.Regenerate(bg); err != nil {
			t.Fatal(err)
		}
		newID = s.ID()
	})
	if _, err := p.Get(bg, sessionkit.HashID(id)); err == nil {
		t.Fatal("old hash live after Regenerate")
	}
	if err := m.DestroyByID(bg, newID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(bg, sessionkit.HashID(newID)); err == nil {
		t.Fatal("DestroyByID missed the hashed key")
	}
}

// A __Host- cookie is forced Secure, Path=/ and host-only.
func TestHostPrefixCookie(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{CookieName: "__Host-sid"})
	res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("a", 1) })
	for _, want := range []string{"__Host-sid=", "secure", "path=/"} {
		if !strings.Contains(res.setCookie, want) {
			t.Fatalf("cookie %q lacks %s", res.setCookie, want)
		}
	}
	if strings.Contains(res.setCookie, "domain") {
		t.Fatalf("__Host- cookie with a Domain: %q", res.setCookie)
	}
}

// After Regenerate the old ID opens nothing, whichever way it is sent.
func TestRegeneratedIDDeadEverywhere(t *testing.T) {
	m, _ := newManager(t, sessionkit.Config{IDInHeader: true, IDInQuery: true})
	old := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("user", "alice") }).cookieVal
	serve(t, m, request{cookie: old}, func(s *sessionkit.Store) {
		if err := s.Regenerate(bg); err != nil {
			t.Fatal(err)
		}
	})
	for _, r := range []request{{cookie: old}, {header: old}, {query: old}} {
		serve(t, m, r, func(s *sessionkit.Store) {
			if !s.IsNew() || s.Has("user") {
				t.Fatalf("%+v: the pre-login ID still opens the session", r)
			}
		})
	}
}

// A custom IDGenerator that goes wrong after New checked it makes Save and
// Regenerate fail, and nothing is stored or sent under the bad ID: the
// next request would refuse it, losing the session unseen.
func TestBadGeneratedIDRefused(t *testing.T) {
	// badAfter returns a generator whose IDs are good for its first n calls.
	badAfter := func(n int64) func() string {
		var calls atomic.Int64
		return func() string {
			if calls.Add(1) <= n {
				return sessionkit.NewID()
			}
			return "short1"
		}
	}
	for _, hashed := range []bool{false, true} {
		m, p := newManager(t, sessionkit.Config{IDGenerator: badAfter(1), HashIDs: hashed})
		res := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("k", "v") })
		if !errors.Is(res.saveErr, sessionkit.ErrInvalidID) || res.setCookie != "" {
			t.Errorf("HashIDs %v: new session under a bad ID: Save = %v, Set-Cookie %q", hashed, res.saveErr, res.setCookie)
		}
		if n, _ := p.Count(bg); n != 0 {
			t.Errorf("HashIDs %v: %d sessions stored under a bad ID", hashed, n)
		}
	}
	// Regenerate of a stored session: the generator's second ID is bad.
	m, _ := newManager(t, sessionkit.Config{IDGenerator: badAfter(2)})
	id := serve(t, m, request{}, func(s *sessionkit.Store) { s.Set("k", "v") }).cookieVal
	var regen error
	res := serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { regen = s.Regenerate(bg) })
	if !errors.Is(regen, sessionkit.ErrInvalidID) || res.setCookie != "" {
		t.Errorf("Regenerate to a bad ID = %v, Set-Cookie %q", regen, res.setCookie)
	}
	var v string
	serve(t, m, request{cookie: id}, func(s *sessionkit.Store) { v, _ = s.GetString("k") })
	if v != "v" {
		t.Error("the session was lost by a Regenerate that failed")
	}
	// A client-side provider: the sealed cookie would carry the bad ID.
	cm := sessionkit.New(sessionkit.Config{IDGenerator: badAfter(1)})
	if err := cm.UseProvider(&mapClient{records: map[string]sessionkit.Record{}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cm.Close() })
	res = serve(t, cm, request{}, func(s *sessionkit.Store) { s.Set("k", "v") })
	if !errors.Is(res.saveErr, sessionkit.ErrInvalidID) || res.setCookie != "" {
		t.Errorf("client-side session under a bad ID: Save = %v, Set-Cookie %q", res.saveErr, res.setCookie)
	}
}

// A response that sets the session cookie keeps it out of shared caches
// whatever Cache-Control the handler chose. Directives are read as RFC 9111
// writes them: private="X-User" or no-cache="X-Debug" withhold only the
// fields named and leave Set-Cookie cacheable, a quoted argument's commas
// and words are not directives, and names ignore case and spacing. Vary's
// names are matched whole.
func TestCacheControlFieldNamesKeepCookieUncached(t *testing.T) {
	const ours = `no-cache="Set-Cookie"`
	for _, c := range []struct {
		name   string
		before []header
		added  bool   // whether the manager adds no-cache="Set-Cookie"
		vary   string // the Vary wanted, "" for the handler's and Cookie
	}{
		{"no-cache names another field", []header{{"Cache-Control", `public, max-age=600, no-cache="X-Debug"`}}, true, ""},
		{"private names another field", []header{{"Cache-Control", `max-age=600, private="X-User"`}}, true, ""},
		{"names a longer field", []header{{"Cache-Control", `max-age=60, no-cache="Set-Cookie2, X-Set-Cookie"`}}, true, ""},
		{"spaced argument", []header{{"Cache-Control", `max-age=60 ,no-cache = "X-Debug" `}}, true, ""},
		{"directive names in a quoted argument", []header{{"Cache-Control", `max-age=60, ext="no-store, private, no-cache"`}}, true, ""},
		{"directive names in longer ones", []header{{"Cache-Control", "max-age=60, x-private, no-cache-ext"}}, true, ""},
		{"escaped argument", []header{{"Cache-Control", `max-age=60, private="Set\-Cookie"`}}, true, ""},
		{"repeated, field named", []header{{"Cache-Control", "max-age=600"}, {"Cache-Control", `private="X-User"`}}, true, ""},
		{"cacheable", []header{{"Cache-Control", "public, max-age=60"}}, true, ""},
		{"bare no-store", []header{{"Cache-Control", "no-store"}}, false, ""},
		{"bare private", []header{{"Cache-Control", "max-age=60, private"}}, false, ""},
		{"bare no-cache", []header{{"Cache-Control", `no-cache, ext="a, b"`}}, false, ""},
		{"upper case, odd spacing", []header{{"Cache-Control", " max-age=60 ,,  PRIVATE\t, "}}, false, ""},
		{"mixed case no-store", []header{{"Cache-Control", "public,No-Store"}}, false, ""},
		{"no-cache names Set-Cookie", []header{{"Cache-Control", `public, max-age=60, no-cache="set-cookie"`}}, false, ""},
		{"private list names Set-Cookie", []header{{"Cache-Control", `max-age=60, private="X-User,  Set-Cookie "`}}, false, ""},
		{"no-cache list names Set-Cookie", []header{{"CACHE-CONTROL", `max-age=60, No-Cache = "X-Debug, Set-Cookie"`}}, false, ""},
		{"token form", []header{{"Cache-Control", "max-age=60, no-cache=Set-Cookie"}}, false, ""},
		{"repeated, bare", []header{{"Cache-Control", `max-age=600, no-cache="X-Debug"`}, {"Cache-Control", "private"}}, false, ""},
		{"Vary names a longer field", []header{{"Vary", "Cookie2, X-Cookie"}}, true, "Cookie2, X-Cookie, Cookie"},
		{"Vary names Cookie", []header{{"Vary", "Origin,  cookie "}}, true, "Origin,  cookie "},
	} {
		var handlerCC []string
		for _, h := range c.before {
			if strings.EqualFold(h.k, "Cache-Control") {
				handlerCC = append(handlerCC, h.v)
			}
		}
		wantCC := strings.Join(handlerCC, ", ")
		if c.added && wantCC == "" {
			wantCC = ours
		} else if c.added {
			wantCC += ", " + ours
		}
		wantVary := c.vary
		if wantVary == "" {
			wantVary = "Cookie"
		}
		check := func(server string, varies, ccs []string, setCookie string) {
			t.Helper()
			vary, cc := strings.Join(varies, ", "), strings.Join(ccs, ", ")
			if setCookie == "" || !sameList(cc, wantCC) || !sameList(vary, wantVary) {
				t.Errorf("%s, %s: handler's headers %q gave Vary %q, Cache-Control %q (Set-Cookie %q); want %q and %q",
					server, c.name, c.before, vary, cc, setCookie, wantVary, wantCC)
			}
		}

		m, _ := newManager(t, sessionkit.Config{})
		varies, ccs, setCookie := fastCachingHeaders(t, m, c.before, false)
		check("fasthttp", varies, ccs, setCookie)

		w := httptest.NewRecorder()
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, h := range c.before {
				w.Header().Add(h.k, h.v)
			}
			sessionkit.FromContext(r.Context()).Set("k", "v")
		})).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		check("net/http", w.Header().Values("Vary"), w.Header().Values("Cache-Control"), w.Header().Get("Set-Cookie"))
	}
}
