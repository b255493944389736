package sessionkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Store is one request's view of its session. Reads see the values loaded
// at Start plus this request's own changes; Save sends the provider only
// the changes, so concurrent requests that change different keys do not
// overwrite each other.
//
// A Store is safe for concurrent use by the goroutines of one request, and
// belongs to that request only. It is a small handle: the session state
// behind it is recycled for later requests once the request is over
// (on fasthttp when the server resets the RequestCtx, which closes its
// user values; with Middleware when the wrapped handler returns; or when
// Close is called). A Store used after that, from a goroutine that
// outlived its handler say, can never reach a later request's session:
// its getters return ErrStoreReleased, Get and Has report nothing, its
// changes are dropped, and Save returns ErrStoreReleased.
type Store struct {
	s   *storeState
	gen uint64 // s.gen while this handle's request owns s
}

// storeState is the state behind a Store, recycled through statePool.
type storeState struct {
	mu  sync.Mutex
	gen uint64 // bumped at every release; handles of older requests stop working
	// setMap is the Set map of this state's saves, kept across requests
	// (see takeSetMap).
	setMap map[string][]byte
	// encBuf is the buffer a Copier's saves are encoded into, kept across
	// requests too (see encodeChanges).
	encBuf []byte
	// handles are fresh handles for this state's next requests, the rest
	// of a block allocated at once (see newStore).
	handles []Store
	// clks are fresh contexts for the provider calls of this state's
	// next requests, allocated in blocks like handles, and for the same
	// reason: a provider may keep a context past the call (database/sql's
	// Rows watch it from a goroutine of their own), and what it answers
	// must not change. A Copier promises to keep none, so its requests
	// share ownClk instead, and a read-only request leaves no garbage
	// but its handle (see withClock).
	clks   []clockCtx
	ownClk clockCtx
	// idArr holds the ID of a request whose provider is a Copier, copied
	// out of the request or made there, so that costs no allocation on
	// the commonest, read-only path (see storeData.idBuf).
	idArr [DefaultIDLength]byte
	// keyArr holds the storage key of such a request under
	// Config.HashIDs (see hashedKey).
	keyArr [hashIDLen]byte
	// quiet is gen+1 while a Save through a handle of generation gen has
	// nothing to do: the session is unchanged, holds no misuse to report,
	// and its deadline is not due for extending. Save reads it without
	// taking mu, so that a read-only request takes the lock twice (its
	// getter and its release) rather than three times: each pair is two
	// atomic read-modify-writes, and three were an eighth of such a
	// request. It is set for each request before its handle is handed
	// out (by Close for the state's next request, a new and empty
	// session, and cleared by adopt if the session loaded may need a
	// touch), and lock clears it before any method that may give Save
	// something to do runs (those that only read take read instead), so
	// Save either sees it set before such a call, and runs before it, or
	// finds it clear and takes the lock.
	quiet atomic.Uint64
	storeData
}

// handleBlock is how many handles (or provider contexts, see clks) are
// allocated at once. A handle is never reused, so each request needs a
// fresh one: taking it from a block the state holds costs a slice step
// rather than an allocation, which was a tenth of a read-only request's
// instructions. A handle kept past its request (say, by a goroutine the
// handler started) keeps its block's memory, 512 bytes, rather than its
// own 16.
const handleBlock = 32

// storeData is everything of a storeState that a release clears.
type storeData struct {
	m *Session
	t transport
	// ht is t for net/http (StartHTTP points t at it): kept here, in the
	// pooled state, rather than allocated per request.
	ht httpTransport

	id      string // "" until a new session needs one
	isNew   bool   // nothing stored under id yet
	base    Record // the session as loaded (or as saved, for client-side ones)
	written bool   // this request wrote the session (so base is not what is stored)
	created time.Time
	now     time.Time     // when the request started using the session
	clk     *clockCtx     // the context for provider calls (see withClock); nil until needed
	idle    time.Duration // per-session idle timeout; 0 = Config.IdleTimeout
	// cache holds values of base decoded by the codec, filled on first
	// read. Scalars are decoded on every read instead: that costs less
	// than a map.
	cache map[string]any
	// pending holds this request's changes.
	pending changes
	cleared bool
	shift   bool  // ShiftExpiration was called
	err     error // a misuse to report from Save
	// idBuf is the buffer id may lie in: the state's idArr when the
	// request's provider is a Copier, nil otherwise. The state's next
	// request reuses it, so the ID must be out of it before anything
	// keeps it past this request: a Copier keeps nothing, and ID and
	// writeID hand out copies. If the provider is replaced by one that
	// is no Copier during the request, the ID is moved out before every
	// call to it (see keyFor).
	idBuf     *[DefaultIDLength]byte
	idBufUsed bool // idBuf is used once only
	// key is the storage key of keyOf, the ID it was worked out for,
	// under Config.HashIDs (see hashedKey).
	key, keyOf string
	// hintKey and hintOld are the value a typed getter last read out of
	// base, as it lies there: a save that overwrites it at the same length
	// tells the provider where (setEntry.at) without looking it up again,
	// and AppendPacked then patches a copy of the stored session rather
	// than parsing it (see placeOf).
	hintKey string
	hintOld []byte
	// setBuf holds a save's Update.set, so listing it costs nothing.
	setBuf [4]setEntry
	// metaBuf holds a new session's bookkeeping for a Copier's save.
	metaBuf [metaLen]byte
}

var statePool = sync.Pool{New: func() any {
	s := new(storeState)
	s.quiet.Store(s.gen + 1) // see Close
	return s
}}

// ErrStoreReleased is returned by a Store used after its request ended.
var ErrStoreReleased = errors.New("sessionkit: the Store's request is over; a Store must not be used after its handler returns")

// ErrHeaderSent is wrapped by the error of a Regenerate made after the
// response header was written (net/http, under Middleware): the new
// cookie could not reach the client. Regenerate before writing the body.
var ErrHeaderSent = errors.New("sessionkit: the response header was already written, so the session cookie cannot change")

// newStore returns a handle on a fresh state for one request. ownID says
// the request's provider is a Copier, so that its ID may lie in the
// state's own buffer.
func newStore(m *Session, t transport, ownID bool) *Store {
	s := statePool.Get().(*storeState)
	if len(s.handles) == 0 {
		s.handles = make([]Store, handleBlock)
	}
	h := &s.handles[0]
	s.handles = s.handles[1:]
	h.s, h.gen = s, s.gen
	s.m, s.t, s.isNew = m, t, true
	if ownID {
		s.idBuf = &s.idArr
	}
	return h
}

// lock locks the state for a call through h, or reports that h's request
// is over (the state may serve another request by now). The call may
// change the session, so Save's shortcut is off from now on (see quiet).
func (h *Store) lock() (*storeState, bool) { return h.acquire(true) }

// read is lock for calls that change nothing Save looks at: they leave
// Save's shortcut as it is. A call that may change anything at all takes
// lock.
func (h *Store) read() (*storeState, bool) { return h.acquire(false) }

func (h *Store) acquire(change bool) (*storeState, bool) {
	if h == nil || h.s == nil {
		return nil, false
	}
	s := h.s
	s.mu.Lock()
	if s.gen != h.gen {
		s.mu.Unlock()
		return nil, false
	}
	if change {
		s.stir()
	}
	return s, true
}

// stir turns off Save's shortcut: the session may change (see quiet).
// The load first spares a clear flag the atomic store, which is a
// read-modify-write on x86.
func (s *storeState) stir() {
	if s.quiet.Load() != 0 {
		s.quiet.Store(0)
	}
}

// Close ends the Store's use and recycles its state; unsaved changes are
// dropped. fasthttp calls it when it resets the request (Store implements
// io.Closer, and fasthttp closes a request's user values), and Middleware
// when the wrapped handler returns, so handlers do not need to. Calls
// after the first do nothing.
func (h *Store) Close() error {
	s, ok := h.read()
	if !ok {
		return nil
	}
	s.gen++
	// The state's next request starts with a new, empty session, which
	// has nothing to save. Set here rather than in newStore: an atomic
	// store waits for the writes before it to reach the cache, and just
	// after the lock's own atomic operation there are none, where in
	// newStore the writes of the request's parsing would still be on
	// their way.
	s.quiet.Store(s.gen + 1)
	s.pending.reset()
	list := s.pending.list[:0]
	s.storeData = storeData{}
	s.ownClk = clockCtx{} // nor is the request's context kept
	if cap(list) > len(s.pending.inline) {
		// A grown change list is kept for the next request.
		s.pending.list = list
	}
	s.mu.Unlock()
	statePool.Put(s)
	return nil
}

// ErrReservedKey is returned by Save when a key starting with a NUL byte
// was set: such keys hold the manager's own bookkeeping.
var ErrReservedKey = errors.New("sessionkit: keys starting with a NUL byte are reserved")

// ID returns the session ID. A new session gets its ID on the first call
// (or when first saved); it is sent to the client only once the session
// holds something. The string is the caller's own: keeping it keeps
// nothing of the request's in memory.
func (h *Store) ID() string {
	s, ok := h.read()
	if !ok {
		return ""
	}
	defer s.mu.Unlock()
	id := s.ensureID()
	if s.idInBuf() {
		// The ID lies in the state's buffer, which its next request
		// reuses.
		return strings.Clone(id)
	}
	return id
}

// setID copies id into the Store's own buffer when it fits, so that
// holding it costs no separate allocation.
func (s *storeState) setID(id string) {
	if s.idBuf == nil || s.idBufUsed || len(id) > len(s.idBuf) {
		s.id = strings.Clone(id)
		return
	}
	n := copy(s.idBuf[:], id)
	s.id, s.idBufUsed = unsafe.String(&s.idBuf[0], n), true
}

// newArena returns an empty buffer with room for n bytes, after the ID if
// the ID is still in idBuf and moves there (see encodeChanges).
func (s *storeState) newArena(n int) []byte {
	if !s.idInBuf() {
		return make([]byte, 0, n)
	}
	b := make([]byte, len(s.id), len(s.id)+n)
	copy(b, s.id)
	s.id = unsafe.String(&b[0], len(s.id))
	return b[len(b):]
}

func (s *storeState) idInBuf() bool {
	return s.id != "" && s.idBuf != nil && unsafe.StringData(s.id) == &s.idBuf[0]
}

// keyFor returns the key the session is stored under in st. Every
// provider call by the session's ID takes its key here: a provider that is
// no Copier may keep the key, so the ID first gets a string of its own if
// it still lies in idBuf (possible only when the manager's provider was
// replaced mid-request); a Copier keeps nothing, and gets the ID where it
// lies.
func (s *storeState) keyFor(st *providerState) string {
	if !st.copies && s.idInBuf() {
		s.id = strings.Clone(s.id)
	}
	if !s.m.cfg.HashIDs {
		return s.id
	}
	return s.hashedKey(st.copies)
}

func (s *storeState) ensureID() string {
	switch {
	case s.id != "":
	case s.m.defaultIDs && s.idBuf != nil && !s.idBufUsed:
		// A new session's ID, made in the state's buffer like a loaded
		// one: no allocation unless a provider that keeps it needs a
		// copy (keyFor).
		fillID(s.idBuf)
		s.id, s.idBufUsed = unsafe.String(&s.idBuf[0], len(s.idBuf)), true
	default:
		s.id = s.m.cfg.IDGenerator()
	}
	return s.id
}

// IsNew reports whether the session has not been stored yet: the request
// carried no live session ID, or the session was destroyed.
func (h *Store) IsNew() bool {
	s, ok := h.read()
	if !ok {
		return true
	}
	defer s.mu.Unlock()
	return s.isNew
}

// Get returns the value stored under key, or nil if there is none or it
// cannot be decoded (the typed getters and Decode report why).
func (h *Store) Get(key string) any {
	v, _ := h.lookup(key)
	return v
}

func (h *Store) lookup(key string) (any, error) {
	s, ok := h.read()
	if !ok {
		return nil, ErrStoreReleased
	}
	defer s.mu.Unlock()
	return s.getLocked(key)
}

func (s *storeState) getLocked(key string) (any, error) {
	if e, ok := s.pending.get(key); ok {
		switch {
		case e.del:
			return nil, keyNotFound(key)
		case e.raw != nil:
			// An immutable value: every read gets a fresh copy.
			return decodeValue(s.m.cfg.Codec, e.raw)
		}
		return e.v, nil
	}
	if s.cleared {
		return nil, keyNotFound(key)
	}
	if v, ok := s.cache[key]; ok {
		return v, nil
	}
	raw, ok := s.base.lookup(key)
	if !ok {
		return nil, keyNotFound(key)
	}
	// Stored bytes are never modified (see Record), so strings may share
	// them.
	v, err := decodeShared(s.m.cfg.Codec, raw)
	if err != nil {
		return nil, fmt.Errorf("sessionkit: key %q: %w", key, err)
	}
	if raw[0] == tagCodec {
		if s.cache == nil {
			s.cache = make(map[string]any)
		}
		s.cache[key] = v
	}
	return v, nil
}

// Has reports whether a value is stored under key.
func (h *Store) Has(key string) bool {
	s, ok := h.read()
	if !ok {
		return false
	}
	defer s.mu.Unlock()
	return s.hasLocked(key)
}

func (s *storeState) hasLocked(key string) bool {
	if e, ok := s.pending.get(key); ok {
		return !e.del
	}
	if s.cleared {
		return false
	}
	_, ok := s.base.lookup(key)
	return ok
}

// Set stores v under key. v is encoded when the session is saved, so
// changes made to v between Set and Save are saved too. A value the codec
// cannot encode makes Save fail, and the stored session stays as it was.
func (h *Store) Set(key string, v any) {
	s, ok := h.lock()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	if strings.HasPrefix(key, reservedPrefix) {
		s.err = fmt.Errorf("%w: Set(%q)", ErrReservedKey, key)
		return
	}
	s.setLocked(key, entry{v: v})
}

// SetImmutable stores v under key and encodes it at once: later changes to
// v are not saved, and every Get returns a fresh copy, so no caller can
// change the stored value through what Get returned. An error means v
// cannot be encoded, and nothing was stored.
func (h *Store) SetImmutable(key string, v any) error {
	if strings.HasPrefix(key, reservedPrefix) {
		return fmt.Errorf("%w: SetImmutable(%q)", ErrReservedKey, key)
	}
	s, ok := h.lock()
	if !ok {
		return ErrStoreReleased
	}
	defer s.mu.Unlock()
	raw, err := encodeValue(s.m.cfg.Codec, v)
	if err != nil {
		return fmt.Errorf("sessionkit: encode %q: %w", key, err)
	}
	s.setLocked(key, entry{raw: raw})
	return nil
}

func (s *storeState) setLocked(key string, e entry) {
	s.pending.put(key, e)
	if s.cache != nil {
		delete(s.cache, key)
	}
}

// Delete removes key.
func (h *Store) Delete(key string) {
	s, ok := h.lock()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	s.deleteLocked(key)
}

func (s *storeState) deleteLocked(key string) {
	if s.cleared || s.isNew {
		// Clear already removes every stored value; a new session has
		// none, and nobody else knows its ID to have stored any.
		s.pending.remove(key)
		return
	}
	// The delete is sent even for a key this request did not see, since
	// a concurrent request may have stored it since.
	s.setLocked(key, entry{del: true})
}

// Keys returns the keys of all values, sorted. Flashes are not included.
func (h *Store) Keys() []string {
	s, ok := h.read()
	if !ok {
		return nil
	}
	defer s.mu.Unlock()
	var keys []string
	s.eachKeyLocked(func(k string) {
		if !strings.HasPrefix(k, reservedPrefix) {
			keys = append(keys, k)
		}
	})
	sort.Strings(keys)
	return keys
}

// eachKeyLocked calls fn once for every live key, bookkeeping included.
func (s *storeState) eachKeyLocked(fn func(k string)) {
	if !s.cleared {
		for k := range s.base.All() {
			if s.pending.find(k) < 0 {
				fn(k)
			}
		}
	}
	for _, c := range s.pending.list {
		if !c.del {
			fn(c.key)
		}
	}
}

// GetAll returns a new map of every value that can be decoded, by key.
// Flashes are not included.
func (h *Store) GetAll() map[string]any {
	all := make(map[string]any)
	h.VisitAll(func(k string, v any) { all[k] = v })
	return all
}

// VisitAll calls fn for every value, in key order. Flashes are not
// included. fn must not call the Store's methods.
func (h *Store) VisitAll(fn func(key string, v any)) {
	for _, k := range h.Keys() {
		if v, err := h.lookup(k); err == nil {
			fn(k, v)
		}
	}
}

// Clear removes every value and flash.
func (h *Store) Clear() {
	s, ok := h.lock()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	s.clearLocked()
}

// Flush is Clear, under the name fasthttpsession users know.
func (h *Store) Flush() { h.Clear() }

func (s *storeState) clearLocked() {
	// Bookkeeping survives: it describes the session, not its contents.
	e, ok := s.pending.get(keyMeta)
	if !ok && !s.cleared {
		var raw []byte
		raw, ok = s.base.lookup(keyMeta)
		e = entry{raw: raw}
	}
	s.pending.reset()
	if ok {
		e.saved = false
		s.pending.put(keyMeta, e)
	}
	s.cache, s.cleared = nil, true
}

// Decode reads the value under key into the value dst points to, using
// the codec directly so that structs and typed maps and slices come back
// with their own types.
//
// A value Set in this request goes through the codec as well, as it will
// once saved, so that Decode succeeds or fails alike in this request and
// the later ones: a *User decodes into a User, a map[string]int into a
// map[string]any. A value of exactly dst's element type is assigned as it
// is instead: until Save the Store holds what Set was given (see Set), and
// Decode shares it, its maps, slices and pointers included, as Get does,
// without the cost of encoding it. A value stored with SetImmutable is
// decoded afresh by every call, so nothing Decode returns can change it.
func (h *Store) Decode(key string, dst any) error {
	s, ok := h.read()
	if !ok {
		return ErrStoreReleased
	}
	defer s.mu.Unlock()
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		// Checked here, not left to the codec, which would report a
		// corrupt value.
		return fmt.Errorf("%w: decode destination must be a non-nil pointer, got %T", ErrWrongType, dst)
	}
	if e, ok := s.pending.get(key); ok && !e.del && e.raw == nil && e.v != nil &&
		reflect.TypeOf(e.v) == dv.Type().Elem() {
		dv.Elem().Set(reflect.ValueOf(e.v))
		return nil
	}
	raw, err := s.rawLocked(key)
	if err != nil {
		return err
	}
	return decodeInto(s.m.cfg.Codec, raw, dst)
}

// rawLocked returns the encoded form of key's value.
func (s *storeState) rawLocked(key string) ([]byte, error) {
	if e, ok := s.pending.get(key); ok {
		if e.del {
			return nil, keyNotFound(key)
		}
		if e.raw != nil {
			return e.raw, nil
		}
		raw, err := encodeValue(s.m.cfg.Codec, e.v)
		if err != nil {
			return nil, fmt.Errorf("sessionkit: encode %q: %w", key, err)
		}
		return raw, nil
	}
	if raw, ok := s.base.lookup(key); ok && !s.cleared {
		return raw, nil
	}
	return nil, keyNotFound(key)
}

// ShiftExpiration makes the next Save extend the session by a full idle
// timeout from now (capped by the absolute timeout), and refresh a
// persistent cookie, even if it would not be touched yet.
func (h *Store) ShiftExpiration() {
	s, ok := h.lock()
	if !ok {
		return
	}
	defer s.mu.Unlock()
	s.shift = true
}

// UpdateExpiration sets this session's idle timeout to d, from now on and
// for every later request (for example a long one for "remember me"). The
// absolute timeout still caps it. d must be positive.
func (h *Store) UpdateExpiration(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: UpdateExpiration(%v): the duration must be positive", ErrInvalidConfig, d)
	}
	s, ok := h.lock()
	if !ok {
		return ErrStoreReleased
	}
	defer s.mu.Unlock()
	s.idle = d
	if !s.isNew {
		// A new session writes its bookkeeping when first saved.
		s.setLocked(keyMeta, entry{raw: encodeMeta(s.created, d)})
	}
	s.shift = true
	return nil
}

// encodeMeta encodes the value of keyMeta.
func encodeMeta(created time.Time, idle time.Duration) []byte {
	return appendMeta(nil, created, idle)
}

// appendMeta encodes the value of keyMeta into dst, or into a new buffer
// if dst is nil.
func appendMeta(dst []byte, created time.Time, idle time.Duration) []byte {
	if dst == nil {
		dst = make([]byte, 0, metaLen)
	}
	dst = binary.AppendVarint(dst, created.UnixNano())
	if idle > 0 {
		dst = binary.AppendVarint(dst, int64(idle))
	}
	return dst
}

// metaLen is the longest value of keyMeta.
const metaLen = 2 * binary.MaxVarintLen64

// readMeta returns a stored session's creation time and idle timeout.
// The creation time is returned as unix nanoseconds, as stored.
func readMeta(r *Record) (created int64, idle time.Duration, err error) {
	raw, _ := r.lookup(keyMeta)
	c, k := readVarint(raw)
	if k <= 0 {
		return 0, 0, fmt.Errorf("%w: missing or bad creation time", ErrCorruptValue)
	}
	if rest := raw[k:]; len(rest) > 0 {
		i, k := readVarint(rest)
		if k <= 0 || k != len(rest) || i <= 0 {
			return 0, 0, fmt.Errorf("%w: bad idle timeout", ErrCorruptValue)
		}
		idle = time.Duration(i)
	}
	return c, idle, nil
}

// idleTimeout is the session's own idle timeout if UpdateExpiration set
// one, else the manager's.
func (s *storeState) idleTimeout() time.Duration {
	if s.idle > 0 {
		return s.idle
	}
	return s.m.cfg.IdleTimeout
}

// deadline is when the session expires if it is saved at now, the zero
// time for never. It is worked out in Unix nanoseconds, clamped as
// providers store deadlines (see UnixNano): every write computes it, and
// that costs less than half of what time.Time's arithmetic did.
func (s *storeState) deadline(now time.Time) time.Time {
	d, ok := int64(0), false
	if idle := s.idleTimeout(); idle > 0 {
		d, ok = addNanos(UnixNano(now), idle), true
	}
	if abs := s.m.cfg.AbsoluteTimeout; abs > 0 {
		if limit := addNanos(UnixNano(s.created), abs); !ok || limit < d {
			d, ok = limit, true
		}
	}
	if !ok {
		return time.Time{}
	}
	return time.Unix(0, d)
}

// touchEvery is the fraction of the idle timeout after which an unchanged
// session's deadline is pushed back: touching on every request would cost
// a write per read.
const touchEvery = 10

// dirty reports whether Save has anything to write.
func (s *storeState) dirty() bool { return s.cleared && !s.isNew || s.pending.unsaved() }

// Save writes this request's changes to the provider. It writes nothing
// for an unchanged session unless its deadline needs extending (at most
// once per tenth of the idle timeout), nothing for a new session that
// holds nothing, and nothing after Destroy. Saving twice is harmless: the
// second call writes only what changed since the first.
//
// For a new session Save also sends the session cookie. On net/http that
// only works before the body is written; Middleware takes care of it.
//
// On error nothing was written and the Store keeps its changes, so Save
// may be retried.
func (h *Store) Save(ctx context.Context) error {
	if h != nil && h.s != nil && h.s.quiet.Load() == h.gen+1 {
		// Nothing to write: the commonest save, decided without the lock.
		return nil
	}
	s, ok := h.lock()
	if !ok {
		return ErrStoreReleased
	}
	// One deferred call and one return keep the defer open-coded (inlined
	// at the return); with Save's body here, its many returns made the
	// compiler queue it in the runtime instead, at about 150 of the 4,300
	// instructions of a read-only request.
	defer s.mu.Unlock()
	return s.saveLocked(ctx)
}

// saveLocked is Save's body.
func (s *storeState) saveLocked(ctx context.Context) error {
	if s.err != nil {
		err := s.err
		s.err = nil
		return err
	}
	st, err := s.m.provider()
	if err != nil {
		return err
	}
	if !s.dirty() {
		if s.isNew {
			return nil
		}
		// The request's start time is close enough to decide whether a
		// touch is due, and saves a clock read on the commonest path.
		return s.touchLocked(ctx, st, s.now)
	}
	if st.client != nil {
		return s.sealLocked(st.client)
	}
	return s.writeLocked(ctx, st)
}

// writeLocked writes the pending changes.
func (s *storeState) writeLocked(ctx context.Context, st *providerState) error {
	now := s.clock(ctx)
	ctx = s.withClock(ctx, now, st.copies)
	var u Update
	if err := s.pendingUpdate(&u, now, st.copies, st.listed); err != nil {
		return err
	}
	if u.Set != nil {
		// Deferred so that even a provider's panic leaves the map empty
		// for the state's next request: it must never carry one
		// session's values into another's save.
		defer s.releaseSetMap(&u)
	}
	if err := s.updateLocked(ctx, st, &u); err != nil {
		return err
	}
	wasNew := s.isNew
	s.markSaved(&u)
	if wasNew || s.m.cfg.Expires > 0 {
		return s.m.writeID(s.t, s.id)
	}
	return nil
}

// pendingUpdate builds in u, a zero Update, the one that saves this
// request's changes at now: the changes encoded, a new session's
// bookkeeping, the deadline. reuse encodes into the state's own buffer,
// for a Copier. listed lists the values in the state's own buffer, for a
// MethodReader (and for the manager's own use); otherwise they go into
// u.Set, a map the caller gives back with releaseSetMap once the Update
// is sent. (An Update is twenty words: filled in place, rather than
// returned, it is not copied on every write.)
func (s *storeState) pendingUpdate(u *Update, now time.Time, reuse, listed bool) error {
	u.Create, u.Clear = s.isNew, s.cleared
	if listed {
		u.set = s.setBuf[:0]
	} else {
		u.Set = s.takeSetMap()
	}
	if s.isNew {
		// The bookkeeping goes first: every request looks it up when it
		// loads the session, and a packed lookup scans from the front.
		// A Copier copies it, so it may lie in the state's own buffer.
		s.created = now
		var dst []byte
		if reuse {
			dst = s.metaBuf[:0]
		}
		u.put(keyMeta, appendMeta(dst, now, s.idle))
	} else if !s.written {
		u.Base = s.base
	}
	if err := s.encodeChanges(u, reuse); err != nil {
		s.releaseSetMap(u)
		return err
	}
	u.Expires = s.deadline(now)
	return nil
}

// clock returns the time a write of this request is stamped with (see
// Now): on fasthttp the request's start time, which fasthttp provides or
// the Store read when it loaded the session; elsewhere the current time.
func (s *storeState) clock(ctx context.Context) time.Time {
	if rc, ok := ctx.(*fasthttp.RequestCtx); ok {
		if t := rc.Time(); !t.IsZero() {
			return t
		}
		if !s.now.IsZero() {
			return s.now
		}
	}
	return wallNow()
}

// withClock returns the context for a provider call made at now: ctx
// carrying now, so the provider does not read the clock again.
//
// A context handed to a provider never changes afterwards, since the
// provider may keep it, unless the provider is a Copier (copier), which
// keeps none. The request's first one is the state's own for a Copier
// (reused by the state's next requests) and otherwise one of a block of
// contexts never reused (see clks); later calls share it when they are
// made for the same fasthttp request at the same instant (a load and a
// save on fasthttp, the usual request, so they cost nothing). A Copier's
// is then simply overwritten, since the Copier kept nothing of the last
// call (so a load and a save on net/http, whose save reads the clock
// again, cost nothing either), and other providers' later calls get one
// allocated. Should the manager's provider change from a Copier to
// another in mid-request, the state's own is not handed on.
func (s *storeState) withClock(ctx context.Context, now time.Time, copier bool) context.Context {
	c := s.clk
	switch {
	case c == nil && copier:
		c = &s.ownClk
		s.clk = c
	case c == nil || !copier && c == &s.ownClk:
		if len(s.clks) == 0 {
			s.clks = make([]clockCtx, handleBlock)
		}
		c, s.clk, s.clks = &s.clks[0], &s.clks[0], s.clks[1:]
	}
	switch {
	case c.Context == nil:
		*c = clockCtx{Context: ctx, now: now}
		return c
	case sameRequest(c.Context, ctx) && c.now.Equal(now):
		return c
	case c == &s.ownClk:
		*c = clockCtx{Context: ctx, now: now}
		return c
	}
	return &clockCtx{Context: ctx, now: now}
}

// sameRequest reports whether a and b are the same fasthttp request. It
// compares no other contexts: == on an interface panics when its dynamic
// type is not comparable, which a context's need not be.
func sameRequest(a, b context.Context) bool {
	x, ok := a.(*fasthttp.RequestCtx)
	if !ok {
		return false
	}
	y, ok := b.(*fasthttp.RequestCtx)
	return ok && x == y
}

// takeSetMap returns an empty map for an Update's Set. Providers do not
// keep Set past Update (see Update), so the state keeps one map for all
// its saves, across requests too; releaseSetMap empties it afterwards.
func (s *storeState) takeSetMap() map[string][]byte {
	if s.setMap == nil {
		s.setMap = make(map[string][]byte, 4)
	}
	return s.setMap
}

// releaseSetMap empties u's Set map for the state's next save. (A list,
// in setBuf, is cleared with the rest of the state when the request ends;
// a later save of the same request writes its own entries over it.)
func (s *storeState) releaseSetMap(u *Update) {
	if len(u.Set) > 64 {
		s.setMap = nil // let an unusually large one go rather than keep it
		return
	}
	clear(u.Set)
}

// maxKeptBuffer bounds the encoding buffer a state keeps between
// requests: an unusually large save's buffer is left to the collector.
const maxKeptBuffer = 4 << 10

// encodeChanges adds this request's unsaved changes to u. The values are
// encoded into one shared buffer; each is a capacity-capped slice of it,
// so a provider that keeps one can neither see nor overwrite another.
//
// While the ID still lives in idBuf, it is moved to the front of the same
// buffer: the provider may keep the ID (see keyFor), and one allocation
// then serves both.
//
// With reuse (the provider is a Copier, which keeps neither), the values
// go into the state's encBuf instead, and the ID stays where it is: a
// write then allocates nothing here once the buffer has grown to fit.
func (s *storeState) encodeChanges(u *Update, reuse bool) error {
	var arena []byte
	size := 0
	list := s.pending.list
	// Indexed, not ranged by value: a change is eight words to copy.
	for i := range list {
		if c := &list[i]; !c.saved && !c.del && c.raw == nil {
			size += encodedSize(c.v)
		}
	}
	// patch: every value so far overwrites one of the session as read,
	// at its length (see placeOf); once one does not, none is looked for.
	patch := len(u.Base.Packed) > 0
	for i := range list {
		c := &list[i]
		switch {
		case c.saved:
		case c.del:
			u.Delete = append(u.Delete, c.key)
			patch = false
		case c.raw != nil && c.key == keyMeta && s.isNew:
			// A new session's bookkeeping is pendingUpdate's, made
			// now; a list holds each key once.
		case c.raw != nil:
			u.put(c.key, c.raw)
			patch = false
		default:
			if arena == nil {
				if reuse {
					arena = slices.Grow(s.encBuf[:0], size)
					if cap(arena) <= maxKeptBuffer {
						s.encBuf = arena
					}
				} else {
					arena = s.newArena(size)
				}
			}
			start := len(arena)
			var err error
			if arena, err = appendValue(arena, s.m.cfg.Codec, c.v); err != nil {
				return fmt.Errorf("sessionkit: encode %q: %w", c.key, err)
			}
			v := arena[start:len(arena):len(arena)]
			at := 0
			if patch {
				at = s.placeOf(u.Base.Packed, c.key, v)
				patch = at != 0
			}
			u.putAt(c.key, v, at)
		}
	}
	return nil
}

// placeOf returns setEntry.at for v, about to be saved under key: where
// the value it replaces lies in base (the session as the request read
// it, Update.Base.Packed), if it is as long as v, else 0. A value a getter
// read is where it noted it (hintOld); another is looked up, which costs
// far less than the merge the place spares (see appendPatched). The
// offset is taken from the slices' addresses and checked to lie inside
// base, so a note left from before base changed is never used.
func (s *storeState) placeOf(base Packed, key string, v []byte) int {
	old := s.hintOld
	if key != s.hintKey {
		var ok bool
		if old, ok = base.Lookup(key); !ok {
			return 0
		}
	}
	if len(old) != len(v) || len(old) == 0 {
		return 0
	}
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(old))) - uintptr(unsafe.Pointer(unsafe.StringData(string(base)))))
	if off < 0 || off > len(base)-len(old) {
		return 0
	}
	return off + 1
}

// markSaved records that u, built from the pending changes, was written.
func (s *storeState) markSaved(u *Update) {
	for i := range s.pending.list {
		s.pending.list[i].saved = true
	}
	if s.cleared {
		s.base, s.cache = Record{}, nil
	}
	if s.isNew {
		s.pending.put(keyMeta, entry{raw: u.lookupSet(keyMeta), saved: true})
	}
	s.cleared, s.isNew, s.shift, s.base.Expires = false, false, false, u.Expires
	s.written = true
}

// sealLocked saves a client-side session: the whole session, changes
// merged, sealed into a new cookie. If it cannot be sealed (too large for
// a cookie), nothing is written and the client keeps its previous cookie.
func (s *storeState) sealLocked(cs ClientSide) error {
	var u Update
	if err := s.pendingUpdate(&u, wallNow(), false, true); err != nil {
		return err
	}
	// base holds everything saved so far: sealLocked folds every save
	// into it and keeps no saved changes pending. The whole session is
	// merged packed, as the cookie carries it, with no map in between.
	full := ownPacked(u.AppendPacked(nil, s.base.Pack()))
	id := s.ensureID()
	if err := s.m.checkGenerated(id); err != nil {
		return fmt.Errorf("sessionkit: save: %w", err)
	}
	value, err := cs.SealSession(s.m.cfg.CookieName, id, Record{Packed: full, Expires: u.Expires})
	if err != nil {
		return fmt.Errorf("sessionkit: save: %w", err)
	}
	s.markSaved(&u)
	s.base.Values, s.base.Packed, s.cache = nil, full, nil
	s.pending.reset()
	s.m.writeValue(s.t, value)
	return nil
}

// updateLocked sends u, choosing a fresh ID if a new session's ID is
// taken (possible only with a weak custom IDGenerator).
func (s *storeState) updateLocked(ctx context.Context, st *providerState, u *Update) error {
	s.ensureID()
	for tries := 0; ; tries++ {
		if u.Create {
			if err := s.m.checkGenerated(s.id); err != nil {
				return fmt.Errorf("sessionkit: save: %w", err)
			}
		}
		err := st.p.Update(ctx, s.keyFor(st), *u)
		switch {
		case err == nil:
			return nil
		case u.Create && errors.Is(err, ErrExists) && tries < 3:
			s.id = s.m.cfg.IDGenerator()
			continue
		case errors.Is(err, ErrNotFound):
			return fmt.Errorf("sessionkit: save: the session was ended by another request: %w", err)
		}
		return fmt.Errorf("sessionkit: save: %w", err)
	}
}

// mayTouch reports whether a save of the session unchanged, with left to
// go before its deadline, might extend that deadline. The new deadline is
// at most idle away, so one still more than idle-idle/touchEvery away
// needs no touch: the commonest case, decided without working out the new
// deadline.
func (s *storeState) mayTouch(left time.Duration) bool {
	idle := s.idleTimeout()
	return s.shift || idle > 0 && left <= idle-idle/touchEvery
}

// touchLocked extends an unchanged session's deadline when due.
func (s *storeState) touchLocked(ctx context.Context, st *providerState, now time.Time) error {
	if !s.mayTouch(until(s.base.Expires, now)) {
		return nil
	}
	idle := s.idleTimeout()
	next := s.deadline(now)
	if !s.shift && next.Sub(s.base.Expires) < idle/touchEvery {
		return nil
	}
	if st.client != nil {
		return s.sealLocked(st.client)
	}
	var err error
	ctx = s.withClock(ctx, now, st.copies)
	if st.toucher != nil {
		err = st.toucher.Touch(ctx, s.keyFor(st), next)
	} else {
		err = st.p.Update(ctx, s.keyFor(st), Update{Expires: next})
	}
	if errors.Is(err, ErrNotFound) {
		// Another request ended the session meanwhile: there is nothing
		// to extend, and nothing of this request's is lost.
		return nil
	}
	if err != nil {
		return fmt.Errorf("sessionkit: touch: %w", err)
	}
	s.base.Expires, s.shift, s.written = next, false, true
	if s.m.cfg.Expires > 0 {
		return s.m.writeID(s.t, s.id)
	}
	return nil
}

// Destroy removes the session from the provider and tells the browser to
// delete its cookie. The Store then holds a new, empty session with no ID:
// Save writes nothing unless values are set again, in which case they go
// to a brand-new session under a new ID, never the destroyed one.
func (h *Store) Destroy(ctx context.Context) error {
	s, ok := h.lock()
	if !ok {
		return ErrStoreReleased
	}
	defer s.mu.Unlock()
	st, err := s.m.provider()
	if err != nil {
		return err
	}
	if !s.isNew && st.client == nil {
		if err := st.p.Delete(ctx, s.keyFor(st)); err != nil {
			return fmt.Errorf("sessionkit: destroy: %w", err)
		}
	}
	s.id, s.isNew, s.base, s.cache, s.cleared, s.shift = "", true, Record{}, nil, false, false
	s.idle, s.created = 0, time.Time{}
	s.pending.reset()
	s.m.deleteID(s.t)
	return nil
}

// Regenerate moves the session to a new ID, keeping its data, and kills
// the old ID at once; the new cookie is sent immediately. Call it at login
// and whenever privileges change. If another request destroyed the session
// meanwhile, Regenerate returns an error wrapping ErrNotFound and the Store
// holds a new, empty session.
//
// Under Middleware, once the handler has started writing its response the
// new cookie can no longer be sent: Regenerate of a stored session then
// returns an error wrapping ErrHeaderSent and changes nothing, where
// moving the session would leave the client with the old, dead ID and
// log the user out unseen.
func (h *Store) Regenerate(ctx context.Context) error {
	s, ok := h.lock()
	if !ok {
		return ErrStoreReleased
	}
	defer s.mu.Unlock()
	st, err := s.m.provider()
	if err != nil {
		return err
	}
	if !s.isNew && s.t != nil && s.t.headerSent() {
		return fmt.Errorf("sessionkit: regenerate: %w", ErrHeaderSent)
	}
	if s.isNew {
		// Nothing is stored yet; a new ID is all it takes (the save
		// checks it).
		s.id = s.m.cfg.IDGenerator()
		return nil
	}
	if st.client != nil {
		// The session lives in the cookie: a new ID and a new cookie
		// are all it takes; the old cookie stays valid until it expires
		// (see ClientSide).
		newID := s.m.cfg.IDGenerator()
		if err := s.m.checkGenerated(newID); err != nil {
			return fmt.Errorf("sessionkit: regenerate: %w", err)
		}
		s.id, s.shift = newID, true
		return s.sealLocked(st.client)
	}
	now := time.Now()
	next := s.deadline(now)
	for tries := 0; ; tries++ {
		newID := s.m.cfg.IDGenerator()
		if err := s.m.checkGenerated(newID); err != nil {
			return fmt.Errorf("sessionkit: regenerate: %w", err)
		}
		err := st.p.Rename(ctx, s.keyFor(st), s.m.storageKey(newID), next)
		switch {
		case err == nil:
			s.id, s.base.Expires, s.written = newID, next, true
			return s.m.writeID(s.t, s.id)
		case errors.Is(err, ErrExists) && tries < 3:
			continue
		case errors.Is(err, ErrNotFound):
			s.id, s.isNew, s.base, s.cache, s.cleared = "", true, Record{}, nil, false
			s.pending.reset()
			return fmt.Errorf("sessionkit: regenerate: %w", err)
		}
		return fmt.Errorf("sessionkit: regenerate: %w", err)
	}
}
