// Package sessionkit gives fasthttp and net/http servers fast, secure HTTP
// sessions with pluggable storage.
//
// A Session manager finds the session ID in a cookie (or, if enabled, a
// header or URL query parameter), loads the session from a Provider, and
// hands the request a Store. Values are encoded per key, only what a
// request changed is written back, and nothing is written (and no cookie
// sent) for a request that never stores anything.
//
// Providers live in subpackages (memory, and server-backed ones) that
// register themselves when imported, the way database/sql drivers do:
//
//	session := sessionkit.New(sessionkit.DefaultConfig())
//	if err := session.SetProvider("memory", &memory.Config{}); err != nil {
//		log.Fatal(err)
//	}
//	fasthttp.ListenAndServe(":8080", func(ctx *fasthttp.RequestCtx) {
//		store, err := session.Start(ctx)
//		if err != nil {
//			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
//			return
//		}
//		defer store.Save(ctx)
//		store.Set("name", "sessionkit")
//	})
//
// Security: IDs carry 192 bits from crypto/rand; an ID the provider does
// not know is never adopted (a fresh one is issued), and a malformed one
// never reaches the provider. Cookies are HttpOnly and SameSite=Lax by
// default, and Secure whenever the request arrived over TLS.
package sessionkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// ErrNoProvider is returned by Start and friends before SetProvider or
// UseProvider succeeded.
var ErrNoProvider = errors.New("sessionkit: no provider set: call SetProvider first")

// Session is a session manager. Create it with New, give it a provider with
// SetProvider, and use it from any number of goroutines.
type Session struct {
	cfg Config
	// key finds this manager's Store in a request's context.
	key storeKey
	// secureAlways is true when the cookie must always be Secure,
	// whatever the request.
	secureAlways bool
	// signer verifies signed IDs (Config.SignKeys) without copying the
	// request's bytes first.
	signer *Signer
	// defaultIDs is set when Config.IDGenerator was left to NewID, whose
	// IDs a Store can then make in memory it already has (see fillID).
	defaultIDs bool
	// fastCookieAttrs holds, by [secure][deleting], what fasthttp writes
	// after the session cookie's value (see fastTransport.setCookie).
	fastCookieAttrs [2][2][]byte
	cfgErr          error

	state atomic.Pointer[providerState]
	mu    sync.Mutex // serialises SetProvider, UseProvider and Close
}

type providerState struct {
	p       Provider
	toucher Toucher
	client  ClientSide // non-nil for providers that keep sessions in the cookie
	copies  bool       // a Copier: saves may reuse their memory (see Copier)
	listed  bool       // a MethodReader: an Update's values are listed, Set nil
	stopGC  context.CancelFunc
	gcDone  chan struct{}
}

// storeKey is a pointer-shaped context key, one per manager, so several
// managers can serve one request.
type storeKey struct{ m *Session }

// New returns a manager for cfg. Zero fields of cfg take their defaults
// (see Config). cfg is validated here and the first problem is returned by
// SetProvider and UseProvider, so New itself cannot fail.
func New(cfg Config) *Session {
	defaultIDs := cfg.IDGenerator == nil
	cfg = cfg.withDefaults()
	m := &Session{cfg: cfg, cfgErr: cfg.validate(), defaultIDs: defaultIDs}
	if m.cfgErr == nil && len(cfg.SignKeys) > 0 {
		m.cfgErr = m.useSigner()
	}
	m.key = storeKey{m}
	m.secureAlways = cfg.Secure || cfg.Partitioned || cfg.SameSite == http.SameSiteNoneMode ||
		strings.HasPrefix(cfg.CookieName, "__Host-") || strings.HasPrefix(cfg.CookieName, "__Secure-")
	for secure := range 2 {
		for deleting := range 2 {
			m.fastCookieAttrs[secure][deleting] = appendFastCookieAttrs(nil, m.cookieFor(secure == 1, "", deleting == 1))
		}
	}
	return m
}

// useSigner makes the Signer of Config.SignKeys, which then signs and
// verifies every ID sent and received. It stays out of the Config's
// EncodeCookie and DecodeCookie, so that Config returns what New was
// given, and New(m.Config()) makes the same manager again.
func (m *Session) useSigner() error {
	signer, err := NewSigner(m.cfg.SignKeys...)
	if err != nil {
		return fmt.Errorf("SignKeys: %w", err)
	}
	m.signer = signer
	return nil
}

// Config returns the manager's configuration with defaults filled in.
func (m *Session) Config() Config { return m.cfg }

// SetProvider opens the provider registered under name with cfg and makes
// it the manager's storage, replacing (and closing) any earlier one. It
// returns an error for an invalid manager Config, an unknown name, a config
// of the wrong type, or a provider that cannot start (for example an
// unreachable server).
func (m *Session) SetProvider(name string, cfg ProviderConfig) error {
	return m.SetProviderContext(context.Background(), name, cfg)
}

// SetProviderContext is SetProvider with a context that bounds connecting
// to the provider's server.
func (m *Session) SetProviderContext(ctx context.Context, name string, cfg ProviderConfig) error {
	if err := m.ready(); err != nil {
		return err
	}
	d, err := lookupDriver(name)
	if err != nil {
		return err
	}
	if cfg != nil && cfg.ProviderName() != name {
		return fmt.Errorf("%w: SetProvider(%q) was given a config for provider %q", ErrInvalidConfig, name, cfg.ProviderName())
	}
	p, err := d.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("sessionkit: open provider %q: %w", name, err)
	}
	return m.UseProvider(p)
}

// UseProvider makes p the manager's storage, replacing (and closing) any
// earlier one. It is how a provider built by hand, outside the registry,
// is plugged in.
func (m *Session) UseProvider(p Provider) error {
	if err := m.ready(); err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("%w: nil provider", ErrInvalidConfig)
	}
	st := &providerState{p: p}
	st.toucher, _ = p.(Toucher)
	st.client, _ = p.(ClientSide)
	// A client-side session keeps what it saved as its base (see
	// sealLocked), so its saves never reuse memory.
	if _, ok := p.(Copier); ok && st.client == nil {
		st.copies = true
	}
	_, st.listed = p.(MethodReader)
	if gc, ok := p.(GarbageCollector); ok {
		ctx, cancel := context.WithCancel(context.Background())
		st.stopGC, st.gcDone = cancel, make(chan struct{})
		go m.runGC(ctx, gc, st.gcDone)
	}
	m.mu.Lock()
	old := m.state.Swap(st)
	m.mu.Unlock()
	if old != nil {
		return old.close()
	}
	return nil
}

// ready returns why the manager cannot take a provider: its Config's
// first problem, or that it was not made by New. A zero Session has no
// defaults (no GC interval, ID generator or logger), so it would fail
// later and worse: its GC goroutine would panic and end the process.
func (m *Session) ready() error {
	if m.key.m == nil {
		return fmt.Errorf("%w: a Session must be made by sessionkit.New", ErrInvalidConfig)
	}
	return m.cfgErr
}

func (st *providerState) close() error {
	if st.stopGC != nil {
		st.stopGC()
		<-st.gcDone
	}
	return st.p.Close()
}

// runGC collects expired sessions every GCInterval until ctx is canceled.
func (m *Session) runGC(ctx context.Context, gc GarbageCollector, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(m.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := gc.GC(ctx); err != nil && ctx.Err() == nil {
				m.cfg.Logger.Error("sessionkit: garbage collection failed", "err", err)
			}
		}
	}
}

// Close stops garbage collection and closes the provider. The manager
// cannot be used afterwards.
func (m *Session) Close() error {
	m.mu.Lock()
	old := m.state.Swap(nil)
	m.mu.Unlock()
	if old == nil {
		return nil
	}
	return old.close()
}

func (m *Session) provider() (*providerState, error) {
	st := m.state.Load()
	if st == nil {
		return nil, ErrNoProvider
	}
	return st, nil
}

// Start returns the session of a fasthttp request, loading it from the
// provider, or a new empty one if the request carries no valid, live
// session ID. Calling Start again in the same request returns the same
// Store. The caller must call Store.Save before the handler returns
// (usually with defer), or use Handler. The Store belongs to this request:
// fasthttp releases it when it resets the request (see Store).
//
// An error means the provider failed; the handler should answer with an
// error page rather than carry on with an empty session.
func (m *Session) Start(ctx *fasthttp.RequestCtx) (*Store, error) {
	if s, ok := ctx.UserValue(m.key).(*Store); ok {
		return s, nil
	}
	st, err := m.provider()
	if err != nil {
		return nil, err
	}
	s, err := m.load(ctx, st, newStore(m, fastTransport{ctx}, st.copies), m.rawIDFast(ctx))
	if err != nil {
		return nil, err
	}
	ctx.SetUserValue(m.key, s)
	return s, nil
}

// StartHTTP is Start for net/http. Cookies are response headers, so Save
// must run before the handler writes its body; Middleware arranges that
// by itself. Inside Middleware, StartHTTP returns the middleware's Store.
// Without Middleware, calling Store.Close once the response is written
// lets a later request reuse the Store's state; without it the state is
// left to the garbage collector.
func (m *Session) StartHTTP(w http.ResponseWriter, r *http.Request) (*Store, error) {
	if s, ok := r.Context().Value(m.key).(*Store); ok {
		return s, nil
	}
	st, err := m.provider()
	if err != nil {
		return nil, err
	}
	// The transport lives in the Store's pooled state, so that it costs
	// no allocation: it is needed exactly as long as the state is.
	h := newStore(m, nil, st.copies)
	h.s.ht = httpTransport{w: w, r: r}
	h.s.t = &h.s.ht
	return m.load(r.Context(), st, h, m.rawIDHTTP(r))
}

// rawIDFast finds the client's session ID in a fasthttp request: header,
// then cookie, then query. The bytes belong to fasthttp's request buffer.
func (m *Session) rawIDFast(ctx *fasthttp.RequestCtx) []byte {
	if m.cfg.IDInHeader {
		if v := ctx.Request.Header.Peek(m.cfg.HeaderName); len(v) > 0 {
			return v
		}
	}
	if v := ctx.Request.Header.Cookie(m.cfg.CookieName); len(v) > 0 {
		return v
	}
	if m.cfg.IDInQuery {
		return ctx.QueryArgs().Peek(m.cfg.QueryName)
	}
	return nil
}

// rawIDHTTP is rawIDFast for net/http. The bytes share the request's
// strings, which are immutable: like fasthttp's buffer, they are only
// read, and copied (Store.setID) before they outlive the lookup.
func (m *Session) rawIDHTTP(r *http.Request) []byte {
	if m.cfg.IDInHeader {
		if v := r.Header.Get(m.cfg.HeaderName); v != "" {
			return bytesOf(v)
		}
	}
	if v := cookieValue(r.Header, m.cfg.CookieName); v != "" {
		return bytesOf(v)
	}
	if m.cfg.IDInQuery {
		return bytesOf(r.URL.Query().Get(m.cfg.QueryName))
	}
	return nil
}

// parseID turns what the client sent into a session ID, or "" if it is not
// one. The result may alias raw, which belongs to fasthttp's request
// buffer: it must be copied (Store.setID does) before it outlives the
// lookup, or a reused buffer would hand one user's session to another.
func (m *Session) parseID(raw []byte) string {
	if len(raw) == 0 || len(raw) > MaxClientValue {
		return ""
	}
	switch {
	case m.signer != nil:
		// Verify keeps nothing of its input and returns a substring of
		// it, so the request's bytes can be read in place; the caller
		// copies the ID (Store.setID) before it outlives the request.
		id, err := m.signer.Verify(m.cfg.CookieName, unsafe.String(&raw[0], len(raw)), max(m.cfg.AbsoluteTimeout, 0))
		if err != nil || !ValidID(id) {
			return ""
		}
		return id
	case m.cfg.DecodeCookie == nil:
		if !validID(raw) {
			return ""
		}
		return unsafe.String(&raw[0], len(raw))
	}
	id, err := m.cfg.DecodeCookie(string(raw))
	if err != nil || !ValidID(id) {
		return ""
	}
	return strings.Clone(id)
}

// MaxClientValue is the longest session cookie, header or query value the
// manager reads: anything longer is refused outright, before any decoding,
// and the request gets a fresh session. A ClientSide provider must not
// seal a longer value, since it would never come back (the cookie
// provider's MaxSize is capped at it).
const MaxClientValue = 4096

// Reserved keys: the manager's own bookkeeping inside a session's values.
// User keys may not start with a NUL byte.
const (
	reservedPrefix = "\x00"
	// keyMeta holds the creation time (unix nanoseconds) and, if set by
	// UpdateExpiration, the session's own idle timeout (nanoseconds), as
	// varints. One key, so loading a session costs one lookup for both.
	keyMeta     = "\x00m"
	flashPrefix = "\x00f" // flash values: flashPrefix + user key
)

// load opens the session of a request whose client sent raw in h, the
// request's new Store.
func (m *Session) load(ctx context.Context, st *providerState, h *Store, raw []byte) (*Store, error) {
	// Nobody else holds h yet, so s needs no locking here.
	s := h.s
	if st.client != nil {
		m.loadClient(s, st.client, raw)
		return h, nil
	}
	id := m.parseID(raw)
	if id == "" {
		return h, nil
	}
	// Copy the ID out of the request buffer before anything (a provider
	// included) can hold on to it.
	s.setID(id)
	now := Now(ctx)
	rec, err := st.p.Get(s.withClock(ctx, now, st.copies), s.keyFor(st))
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		s.id = ""
		return h, nil
	case errors.Is(err, ErrCorruptValue):
		s.id = ""
		m.cfg.Logger.Error("sessionkit: stored session is corrupt; starting a fresh one", "err", err)
		return h, nil
	default:
		_ = h.Close()
		return nil, fmt.Errorf("sessionkit: load session: %w", err)
	}
	if !m.adopt(s, rec, now) {
		s.id = ""
	}
	return h, nil
}

// adopt makes rec the Store's session if it is sound and live, and
// reports whether it did.
func (m *Session) adopt(s *storeState, rec Record, now time.Time) bool {
	created, idle, err := readMeta(&rec)
	if err != nil {
		m.cfg.Logger.Error("sessionkit: stored session is corrupt; starting a fresh one", "err", err)
		return false
	}
	// Zero Expires (no deadline) gives the least Duration: not expired
	// by the first test, due for a touch by mayTouch.
	left := until(rec.Expires, now)
	if !rec.Expires.IsZero() && left <= 0 ||
		m.cfg.AbsoluteTimeout > 0 && now.UnixNano() >= addNanos(created, m.cfg.AbsoluteTimeout) {
		return false
	}
	s.isNew = false
	s.base, s.created, s.idle, s.now = rec, time.Unix(0, created), idle, now
	if s.mayTouch(left) {
		// Save has a touch to judge (see storeState.quiet).
		s.stir()
	}
	return true
}

// loadClient opens a session kept in the cookie itself.
func (m *Session) loadClient(s *storeState, cs ClientSide, raw []byte) {
	if len(raw) == 0 || len(raw) > MaxClientValue {
		return
	}
	id, rec, err := cs.OpenSession(m.cfg.CookieName, string(raw))
	if err != nil || !ValidID(id) {
		// Forged, tampered, expired or sealed with a retired key: a
		// fresh session, as for an unknown ID.
		return
	}
	if m.adopt(s, rec, time.Now()) {
		s.setID(id)
	}
}

// DestroyByID removes the session with the given ID from the provider,
// for example to log a user out of another device. Its cookie stays in
// that browser but no longer opens a session.
func (m *Session) DestroyByID(ctx context.Context, id string) error {
	st, err := m.provider()
	if err != nil {
		return err
	}
	if !ValidID(id) {
		return nil
	}
	return st.p.Delete(ctx, m.storageKey(id))
}

// Count returns the number of live sessions, or an error wrapping
// ErrNotSupported if the provider cannot count.
func (m *Session) Count(ctx context.Context) (int, error) {
	st, err := m.provider()
	if err != nil {
		return 0, err
	}
	c, ok := st.p.(Counter)
	if !ok {
		return 0, fmt.Errorf("sessionkit: Count: %w", ErrNotSupported)
	}
	return c.Count(ctx)
}

// Destroy ends the request's session: its data is removed from the
// provider and the browser is told to delete the cookie. See
// Store.Destroy.
func (m *Session) Destroy(ctx *fasthttp.RequestCtx) error {
	s, err := m.Start(ctx)
	if err != nil {
		return err
	}
	return s.Destroy(ctx)
}

// DestroyHTTP is Destroy for net/http.
func (m *Session) DestroyHTTP(w http.ResponseWriter, r *http.Request) error {
	s, err := m.StartHTTP(w, r)
	if err != nil {
		return err
	}
	return s.Destroy(r.Context())
}

// Regenerate gives the request's session a new ID, keeping its data, and
// kills the old ID. Call it whenever privileges change, above all at
// login, to defeat session fixation. See Store.Regenerate.
func (m *Session) Regenerate(ctx *fasthttp.RequestCtx) (*Store, error) {
	s, err := m.Start(ctx)
	if err != nil {
		return nil, err
	}
	return s, s.Regenerate(ctx)
}

// RegenerateHTTP is Regenerate for net/http.
func (m *Session) RegenerateHTTP(w http.ResponseWriter, r *http.Request) (*Store, error) {
	s, err := m.StartHTTP(w, r)
	if err != nil {
		return nil, err
	}
	return s, s.Regenerate(r.Context())
}

// ShiftExpiration extends the request's session by a full idle timeout
// from now (capped by the absolute timeout) when it is next saved, even if
// it would not otherwise be touched yet.
func (m *Session) ShiftExpiration(ctx *fasthttp.RequestCtx) error {
	s, err := m.Start(ctx)
	if err != nil {
		return err
	}
	s.ShiftExpiration()
	return nil
}

// UpdateExpiration sets the request's session idle timeout to d from now
// on (capped by the absolute timeout); see Store.UpdateExpiration.
func (m *Session) UpdateExpiration(ctx *fasthttp.RequestCtx, d time.Duration) error {
	s, err := m.Start(ctx)
	if err != nil {
		return err
	}
	return s.UpdateExpiration(d)
}

// secure reports whether the cookie for this request gets the Secure
// attribute.
func (m *Session) secure(t transport) bool {
	if m.secureAlways || t.isTLS() {
		return true
	}
	return m.cfg.IsSecure != nil && m.cfg.IsSecure(requestInfo{t})
}

// writeID sends id to the client: the cookie and, with IDInHeader, the
// response header.
//
// id may lie in a buffer that a later request reuses (see
// storeData.idBuf), so what keeps it gets a copy: a hook of the user's
// may keep its argument (the signer keeps nothing), and net/http keeps
// a header's value as it is given.
func (m *Session) writeID(t transport, id string) error {
	value := id
	switch {
	case m.signer != nil:
		value = m.signer.Sign(m.cfg.CookieName, id)
	case m.cfg.EncodeCookie != nil:
		v, err := m.cfg.EncodeCookie(strings.Clone(id))
		if err != nil {
			return fmt.Errorf("sessionkit: encode cookie: %w", err)
		}
		value = v
	case m.cfg.IDInHeader:
		value = strings.Clone(id)
	}
	m.writeValue(t, value)
	return nil
}

// writeValue sends the cookie's value as is.
func (m *Session) writeValue(t transport, value string) {
	t.setCookie(m.cookie(t, value, false))
	if m.cfg.IDInHeader {
		t.setHeader(m.cfg.HeaderName, value)
	}
	markUncacheable(t)
}

// deleteID tells the client to drop its session cookie. The deletion
// cookie carries the same Domain and Path as the one it deletes, or the
// browser would keep the original.
func (m *Session) deleteID(t transport) {
	t.setCookie(m.cookie(t, "", true))
	markUncacheable(t)
}

// cookie returns the session cookie carrying value for t's response, or
// the cookie that deletes it.
func (m *Session) cookie(t transport, value string, deleting bool) cookie {
	secure := m.secure(t)
	c := m.cookieFor(secure, value, deleting)
	c.fastAttrs = m.fastCookieAttrs[b2i(secure)][b2i(deleting)]
	return c
}

// cookieFor returns the session cookie, secure or not, carrying value, or
// the cookie that deletes it.
func (m *Session) cookieFor(secure bool, value string, deleting bool) cookie {
	c := cookie{
		name:        m.cfg.CookieName,
		value:       value,
		path:        m.cfg.Path,
		secure:      secure,
		httpOnly:    !m.cfg.HTTPOnlyDisabled,
		partitioned: m.cfg.Partitioned,
		sameSite:    m.cfg.SameSite,
	}
	switch {
	case deleting:
		c.maxAge = -1
	case m.cfg.Expires > 0:
		// Capped before rounding up, so the sum cannot overflow, and the
		// seconds fit an int of 32 bits.
		c.maxAge = int((min(m.cfg.Expires, maxCookieAge) + time.Second - 1) / time.Second)
	}
	if !m.cfg.DisableSubdomainPersistence && !strings.HasPrefix(m.cfg.CookieName, "__Host-") {
		c.domain = m.cfg.Domain
	}
	return c
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
