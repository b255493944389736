package cookie_test

import (
	"bytes"
	"context"
	"encoding/binary"
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
	"github.com/valyala/fasthttp"
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
	for _, cfg := range []cookie.Config{{}, {Keys: [][]byte{[]byte("short")}}, {Keys: [][]byte{make([]byte, 32)}}, {Keys: [][]byte{key(1), key(1)}}, {Keys: [][]byte{key(1)}, MaxAge: -1}, {Keys: [][]byte{key(1)}, MaxSize: 4097}, {Keys: [][]byte{key(1)}, MaxSize: 8192}} {
		if _, err := cookie.New(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := cookie.New(cookie.Config{Keys: [][]byte{key(1)}, MaxSize: 4096}); err != nil {
		t.Fatalf("MaxSize 4096 refused: %v", err)
	}
	m := sessionkit.New(sessionkit.Config{})
	if err := m.SetProvider("cookie", nil); err == nil {
		t.Fatal("nil config accepted")
	}
}

// serve runs one request through m: Start, h, Save. It returns the
// session cookie's value sent back ("" if none) and Save's error.
func serve(t *testing.T, m *sessionkit.Session, cookieVal string, h func(*sessionkit.Store)) (string, error) {
	t.Helper()
	var req fasthttp.Request
	req.SetRequestURI("http://example.com/")
	if cookieVal != "" {
		req.Header.SetCookie(m.Config().CookieName, cookieVal)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	s, err := m.Start(&ctx)
	if err != nil {
		t.Fatal(err)
	}
	h(s)
	saveErr := s.Save(&ctx)
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(m.Config().CookieName)
	if !ctx.Response.Header.Cookie(c) {
		return "", saveErr
	}
	return string(c.Value()), saveErr
}

// Around the size where sessions stop fitting, under the largest MaxSize
// New accepts, every Save either fails and sends nothing or sends a
// cookie the next request opens: the provider never writes what the
// manager will not read.
func TestMaxSizeReadsBack(t *testing.T) {
	for _, name := range []string{"s", "session_id_with_a_long_name"} {
		for _, maxSize := range []int{4096, 4097, 8192} {
			m := sessionkit.New(sessionkit.Config{CookieName: name})
			defer m.Close()
			if err := m.SetProvider("cookie", &cookie.Config{Keys: [][]byte{key(1)}, MaxSize: maxSize}); err != nil {
				if maxSize == 4096 {
					t.Fatal(err)
				}
				continue // refused up front, as it should be
			}
			save := func(n int) (string, error) {
				return serve(t, m, "", func(s *sessionkit.Store) { s.Set("big", strings.Repeat("x", n)) })
			}
			// The largest value that saves.
			lo, hi := 0, maxSize
			for lo < hi {
				mid := (lo + hi + 1) / 2
				if _, err := save(mid); err == nil {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			var saved, refused int
			for n := lo - 40; n <= lo+40; n++ {
				v, err := save(n)
				if err != nil {
					if !errors.Is(err, cookie.ErrTooLarge) || v != "" {
						t.Fatalf("%s, MaxSize %d, %d-byte value: Save failed with %v and sent %d bytes", name, maxSize, n, err, len(v))
					}
					refused++
					continue
				}
				var got string
				var isNew bool
				serve(t, m, v, func(s *sessionkit.Store) { got, _ = s.GetString("big"); isNew = s.IsNew() })
				if isNew || got != strings.Repeat("x", n) {
					t.Fatalf("%s, MaxSize %d: Save sent a %d-byte cookie that the next request does not read back (new session %v, value of %d bytes, want %d)", name, maxSize, len(v), isNew, len(got), n)
				}
				saved++
			}
			if saved == 0 || refused == 0 {
				t.Fatalf("%s, MaxSize %d: %d saves, %d refusals: the sizes tried miss the limit", name, maxSize, saved, refused)
			}
		}
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

// Every ID length sessionkit.ValidID allows seals and opens, 256 included
// though its length byte wraps to 0; IDs the length byte cannot say are
// refused rather than sealed under a wrong length.
func TestIDLengths(t *testing.T) {
	p, err := cookie.New(cookie.Config{Keys: [][]byte{key(1)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{sessionkit.MinIDLength, sessionkit.DefaultIDLength, 255, sessionkit.MaxIDLength} {
		id := strings.Repeat("A", n-1) + "z"
		v, err := p.SealSession("sid", id, sessionkit.Record{Values: map[string][]byte{"k": []byte("v")}, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("%d-byte ID: SealSession: %v", n, err)
		}
		gotID, r, err := p.OpenSession("sid", v)
		if err != nil {
			t.Fatalf("%d-byte ID: OpenSession: %v", n, err)
		}
		if gotID != id {
			t.Fatalf("a %d-byte ID came back as %d bytes: %q", n, len(gotID), gotID)
		}
		if got, _ := r.Lookup("k"); string(got) != "v" {
			t.Fatalf("%d-byte ID: value %q came back as %q", n, "v", got)
		}
	}
	for _, n := range []int{0, sessionkit.MaxIDLength + 1} {
		if _, err := p.SealSession("sid", strings.Repeat("A", n), sessionkit.Record{Expires: time.Now().Add(time.Hour)}); !errors.Is(err, sessionkit.ErrInvalidID) {
			t.Fatalf("%d-byte ID: SealSession error %v, want ErrInvalidID", n, err)
		}
	}
}

// A manager whose IDGenerator makes IDs of sessionkit.MaxIDLength keeps
// its sessions in the cookie like any other.
func TestManagerLongestID(t *testing.T) {
	id := strings.Repeat("A", sessionkit.MaxIDLength)
	m := sessionkit.New(sessionkit.Config{IDGenerator: func() string { return id }})
	defer m.Close()
	if err := m.SetProvider("cookie", &cookie.Config{Keys: [][]byte{key(1)}}); err != nil {
		t.Fatal(err)
	}
	v, err := serve(t, m, "", func(s *sessionkit.Store) { s.Set("k", "v") })
	if err != nil || v == "" {
		t.Fatalf("Save with a %d-byte ID: cookie %q, err %v", len(id), v, err)
	}
	var got, gotID string
	serve(t, m, v, func(s *sessionkit.Store) { got, _ = s.GetString("k"); gotID = s.ID() })
	if got != "v" || gotID != id {
		t.Fatalf("the next request read value %q and an ID of %d bytes, want %q and the %d-byte ID", got, len(gotID), "v", len(id))
	}
}

// plaintext is a cookie's plaintext as SealSession lays it out, but with
// any length byte.
func plaintext(lenByte byte, id string) []byte {
	b := append([]byte{lenByte}, id...)
	b = binary.BigEndian.AppendUint64(b, uint64(time.Now().Add(time.Hour).UnixNano()))
	return append(b, sessionkit.Pack(nil)...)
}

// openForged seals plain with the provider's key, as only a holder of the
// key could, and opens it.
func openForged(t testing.TB, p *cookie.Provider, plain []byte) (string, sessionkit.Record, error) {
	t.Helper()
	s, err := sessionkit.NewSealer(key(1))
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Seal("sid", plain)
	if err != nil {
		t.Fatal(err)
	}
	return p.OpenSession("sid", v)
}

// Whatever the length byte says, the ID is read from the plaintext's own
// bytes, 0 meaning 256, and a length that runs past the data is refused.
func TestForgedIDLength(t *testing.T) {
	p, err := cookie.New(cookie.Config{Keys: [][]byte{key(1)}})
	if err != nil {
		t.Fatal(err)
	}
	for b := range 256 {
		n := b
		if n == 0 {
			n = 256
		}
		id := strings.Repeat("A", n)
		gotID, _, err := openForged(t, p, plaintext(byte(b), id))
		if err != nil || gotID != id {
			t.Fatalf("length byte %d: ID of %d bytes, err %v; want the %d bytes that follow", b, len(gotID), err, n)
		}
		// One byte short: the deadline would run past the data.
		plain := plaintext(byte(b), id)[:1+n+7]
		if _, _, err := openForged(t, p, plain); !errors.Is(err, sessionkit.ErrCorruptValue) {
			t.Fatalf("length byte %d over %d bytes: err %v, want ErrCorruptValue", b, len(plain), err)
		}
	}
	if _, _, err := openForged(t, p, nil); !errors.Is(err, sessionkit.ErrCorruptValue) {
		t.Fatalf("empty plaintext: err %v, want ErrCorruptValue", err)
	}
}

// FuzzOpenSession opens any plaintext sealed with the key, as a holder of
// a leaked key could forge: a panic, an ID other than the bytes its length
// byte names, or refusing a plaintext laid out as SealSession lays it out
// (live deadline, well-formed values) fails.
func FuzzOpenSession(f *testing.F) {
	p, err := cookie.New(cookie.Config{Keys: [][]byte{key(1)}})
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{16, 255, 256} {
		f.Add(plaintext(byte(n), strings.Repeat("A", n)))
	}
	f.Add(plaintext(0, strings.Repeat("A", 200)))
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, plain []byte) {
		if len(plain) > 2048 {
			return // sealed, more than MaxSize lets through
		}
		id, _, err := openForged(t, p, plain)
		n := 0
		if len(plain) > 0 {
			n = int(plain[0])
			if n == 0 {
				n = 256
			}
		}
		if err != nil {
			if len(plain) < 1+n+8 {
				return
			}
			_, bad := sessionkit.ParsePacked(plain[1+n+8:])
			if bad == nil && time.Now().Add(time.Minute).Before(time.Unix(0, int64(binary.BigEndian.Uint64(plain[1+n:])))) {
				t.Fatalf("a well-formed plaintext with a %d-byte ID refused: %v", n, err)
			}
			return
		}
		if len(plain) < 1+n+8 || id != string(plain[1:1+n]) {
			t.Fatalf("a %d-byte plaintext naming a %d-byte ID opened with an ID of %d bytes", len(plain), n, len(id))
		}
	})
}
