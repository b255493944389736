package compare

import (
	"errors"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/valyala/fasthttp"
)

func sessionkitLib() Lib {
	return Lib{
		Name:        "sessionkit",
		Module:      "github.com/sessionkit/sessionkit (this repository)",
		Setup:       "memory provider, default Config (30 min idle timeout)",
		Benchmarked: true,
		New: func() (Instance, error) {
			return newSessionkit(memory.New(memory.Config{}))
		},
	}
}

type sessionkitInst struct{ m *sessionkit.Session }

func newSessionkit(p sessionkit.Provider) (*sessionkitInst, error) {
	m := sessionkit.New(sessionkit.Config{CookieName: CookieName})
	if err := m.UseProvider(p); err != nil {
		return nil, err
	}
	return &sessionkitInst{m: m}, nil
}

func (i *sessionkitInst) Serve(ctx *fasthttp.RequestCtx, op Op) (int, error) {
	return i.ServeAfterStart(ctx, op, nil)
}

func (i *sessionkitInst) ServeAfterStart(ctx *fasthttp.RequestCtx, op Op, afterStart func()) (int, error) {
	s, err := i.m.Start(ctx)
	if err != nil {
		return 0, err
	}
	if afterStart != nil {
		afterStart()
	}
	n, err := sessionkitWork(s, op)
	if err != nil {
		return 0, err
	}
	return n, s.Save(ctx)
}

// sessionkitWork does op's work on a started session, for both servers.
func sessionkitWork(s *sessionkit.Store, op Op) (n int, err error) {
	switch op {
	case W1:
		_, _ = s.GetString("name")
	case W2:
		n, _ = s.GetInt("n")
		n++
		s.Set("n", n)
	case W3:
		s.Set("name", "sessionkit")
	case OpPreload:
		s.Set("name", "sessionkit")
		s.Set("n", 0)
	case OpReadN:
		return s.GetInt("n")
	case OpHasName:
		if _, err := s.GetString("name"); err == nil {
			n = 1
		} else if !errors.Is(err, sessionkit.ErrKeyNotFound) {
			return 0, err
		}
	case OpSetA:
		s.Set("a", 1)
	case OpSetB:
		s.Set("b", 1)
	case OpCountAB:
		for _, k := range []string{"a", "b"} {
			if s.Has(k) {
				n++
			}
		}
	}
	return n, nil
}

func (i *sessionkitInst) Close() { _ = i.m.Close() }
