package compare

import (
	"bytes"
	"errors"
	"time"

	session "github.com/fasthttp/session/v2"
	"github.com/fasthttp/session/v2/providers/memory"
	"github.com/valyala/fasthttp"
)

const fasthttpSessionModule = "github.com/fasthttp/session/v2 v2.5.9"

// fasthttpSessionLib is fasthttp/session with its memory provider, behind
// a thin wrapper (copyIDProvider) that works around the provider keeping
// the request's cookie bytes as its map key.
func fasthttpSessionLib() Lib {
	return Lib{
		Name:   "fasthttp-session",
		Module: fasthttpSessionModule,
		Setup:  "memory provider wrapped to copy the session ID before Save (see README), MSGPEncode/MSGPDecode, Expiration 30 min",
		Issues: "every request writes the whole session back (and sends Set-Cookie), so of two concurrent requests " +
			"the later save drops what the other one set",
		Benchmarked: true,
		New: func() (Instance, error) {
			p, err := memory.New(memory.Config{})
			if err != nil {
				return nil, err
			}
			return newFasthttpSession(copyIDProvider{p})
		},
	}
}

// fasthttpSessionUnpatchedLib is the memory provider exactly as shipped. It
// takes part only in the correctness checks, which show what goes wrong.
func fasthttpSessionUnpatchedLib() Lib {
	return Lib{
		Name:   "fasthttp-session-unpatched",
		Module: fasthttpSessionModule,
		Setup:  "memory provider as shipped, MSGPEncode/MSGPDecode, Expiration 30 min",
		Issues: "the memory provider uses the request's cookie bytes, without copying them, as its sync.Map key " +
			"(providers/memory: getSessionKey is strconv.B2S(id)); since Go 1.24 sync.Map stores the key passed to Store " +
			"even when the entry exists, so the key changes when fasthttp reuses the request buffer for the next request, " +
			"and the session can no longer be found from another connection",
		New: func() (Instance, error) {
			p, err := memory.New(memory.Config{})
			if err != nil {
				return nil, err
			}
			return newFasthttpSession(p)
		},
	}
}

type fasthttpSessionInst struct{ s *session.Session }

func newFasthttpSession(p session.Provider) (*fasthttpSessionInst, error) {
	cfg := session.NewDefaultConfig()
	cfg.CookieName = CookieName
	cfg.Expiration = 30 * time.Minute
	// The memory provider's README recommends these over the default
	// base64 encoding.
	cfg.EncodeFunc = session.MSGPEncode
	cfg.DecodeFunc = session.MSGPDecode
	s := session.New(cfg)
	if err := s.SetProvider(p); err != nil {
		return nil, err
	}
	return &fasthttpSessionInst{s: s}, nil
}

func (i *fasthttpSessionInst) Serve(ctx *fasthttp.RequestCtx, op Op) (int, error) {
	return i.ServeAfterStart(ctx, op, nil)
}

func (i *fasthttpSessionInst) ServeAfterStart(ctx *fasthttp.RequestCtx, op Op, afterStart func()) (int, error) {
	store, err := i.s.Get(ctx)
	if err != nil {
		return 0, err
	}
	if afterStart != nil {
		afterStart()
	}
	n := 0
	switch op {
	case W1:
		_, _ = store.Get("name").(string)
	case W2:
		n, _ = toInt(store.Get("n"))
		n++
		store.Set("n", n)
	case W3:
		store.Set("name", "sessionkit")
	case OpPreload:
		store.Set("name", "sessionkit")
		store.Set("n", 0)
	case OpReadN:
		var ok bool
		if n, ok = toInt(store.Get("n")); !ok {
			_ = i.s.Save(ctx, store)
			return 0, errors.New(`"n" not found`)
		}
	case OpHasName:
		if _, ok := store.Get("name").(string); ok {
			n = 1
		}
	case OpSetA:
		store.Set("a", 1)
	case OpSetB:
		store.Set("b", 1)
	case OpCountAB:
		for _, k := range []string{"a", "b"} {
			if store.Get(k) != nil {
				n++
			}
		}
	}
	return n, i.s.Save(ctx, store)
}

// Close does nothing: the session manager has no Close, and the wrapped
// provider asks for no GC goroutine that would need stopping.
func (i *fasthttpSessionInst) Close() {}

// copyIDProvider passes everything to the memory provider, but copies the
// session ID before Save and Regenerate. The memory provider turns the ID
// into its sync.Map key without copying it, and for a request that
// carried a cookie the ID is a slice of fasthttp's request buffer, which
// the next request on the connection overwrites. It also reports that it
// needs no GC: the manager starts a GC goroutine per provider that has no
// way to be stopped, and a benchmark creates many providers. (Nothing
// expires during a benchmark anyway.)
type copyIDProvider struct{ *memory.Provider }

func (p copyIDProvider) Save(id, data []byte, expiration time.Duration) error {
	return p.Provider.Save(bytes.Clone(id), data, expiration)
}

func (p copyIDProvider) Regenerate(id, newID []byte, expiration time.Duration) error {
	return p.Provider.Regenerate(id, bytes.Clone(newID), expiration)
}

func (p copyIDProvider) NeedGC() bool { return false }
