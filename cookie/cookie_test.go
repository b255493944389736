package cookie_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/cookie"
	"github.com/sessionkit/sessionkit/providertest"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		p, err := cookie.New(cookie.Config{Keys: [][]byte{key(1)}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

// BenchmarkManager: W1/W2/W3 through a manager whose sessions live in the
// cookie (open on every request; seal on W2 and W3).
func BenchmarkManager(b *testing.B) {
	p, err := cookie.New(cookie.Config{Keys: [][]byte{key(1)}})
	if err != nil {
		b.Fatal(err)
	}
	providertest.BenchManager(b, p)
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []cookie.Config{{}, {Keys: [][]byte{[]byte("short")}}, {Keys: [][]byte{make([]byte, 32)}}, {Keys: [][]byte{key(1), key(1)}}, {Keys: [][]byte{key(1)}, MaxAge: -1}} {
		if _, err := cookie.New(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	m := sessionkit.New(sessionkit.Config{})
	if err := m.SetProvider("cookie", nil); err == nil {
		t.Fatal("nil config accepted")
	}
}

func TestKeyRotation(t *testing.T) {
	old, _ := cookie.New(cookie.Config{Keys: [][]byte{key(1)}})
	rotated, _ := cookie.New(cookie.Config{Keys: [][]byte{key(2), key(1)}})
	retired, _ := cookie.New(cookie.Config{Keys: [][]byte{key(2)}})
	v, err := old.SealSession("sid", sessionkit.NewID(), sessionkit.Record{Values: map[string][]byte{"a": {1}}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rotated.OpenSession("sid", v); err != nil {
		t.Fatalf("after rotation, a cookie sealed with the old key no longer opens: %v", err)
	}
	if _, _, err := retired.OpenSession("sid", v); err == nil {
		t.Fatal("a cookie sealed with a retired key still opens")
	}
	nv, _ := rotated.SealSession("sid", sessionkit.NewID(), sessionkit.Record{Expires: time.Now().Add(time.Hour)})
	if _, _, err := retired.OpenSession("sid", nv); err != nil {
		t.Fatal("the rotated provider does not seal with its first key")
	}
}

// The whole flow through the manager on a real net/http server: data
// lives only in the cookie; an oversized save fails and keeps the
// previous cookie valid.
func TestEndToEnd(t *testing.T) {
	m := sessionkit.New(sessionkit.Config{CookieName: "__Host-s", Logger: nil})
	if err := m.SetProvider("cookie", &cookie.Config{Keys: [][]byte{key(7)}}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var lastSaveErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.StartHTTP(w, r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		switch r.URL.Path {
		case "/set":
			s.Set("v", r.URL.Query().Get("v"))
		case "/big":
			s.Set("big", strings.Repeat("x", 5000))
		case "/login":
			_ = s.Regenerate(r.Context())
		case "/destroy":
			_ = s.Destroy(r.Context())
		}
		lastSaveErr = s.Save(r.Context())
		v, _ := s.GetString("v")
		_, _ = io.WriteString(w, v)
	})
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	hc := srv.Client()
	hc.Jar, _ = cookiejar.New(nil)
	get := func(path string) (string, *http.Response) {
		res, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b), res
	}
	_, res := get("/set?v=hello")
	if len(res.Cookies()) != 1 || !res.Cookies()[0].Secure || res.Cookies()[0].Domain != "" {
		t.Fatalf("cookie %+v", res.Cookies())
	}
	if body, _ := get("/get"); body != "hello" {
		t.Fatalf("read back %q", body)
	}
	if _, res := get("/big"); len(res.Cookies()) != 0 || !errors.Is(lastSaveErr, cookie.ErrTooLarge) {
		t.Fatalf("oversized save: cookies %v, err %v", res.Cookies(), lastSaveErr)
	}
	if body, _ := get("/get"); body != "hello" {
		t.Fatalf("after a failed oversized save the previous session is gone: %q", body)
	}
	if _, res := get("/login"); len(res.Cookies()) != 1 {
		t.Fatal("Regenerate did not send a new cookie")
	}
	if body, _ := get("/get"); body != "hello" {
		t.Fatalf("data lost at Regenerate: %q", body)
	}
	get("/destroy")
	if body, _ := get("/get"); body != "" {
		t.Fatalf("destroyed session still readable: %q", body)
	}
	if n, err := m.Count(context.Background()); err == nil {
		t.Fatalf("Count on a cookie provider = %d, want ErrNotSupported", n)
	}
}
