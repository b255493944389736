package sessionkit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"sort"
	"sync"
	"time"
)

// Errors a Provider returns. Providers wrap them with context (fmt.Errorf
// with %w); callers test with errors.Is.
var (
	// ErrNotFound means the session does not exist or has expired. Get,
	// Update (without Create) and Rename return it.
	ErrNotFound = errors.New("sessionkit: session not found")
	// ErrExists means a session with that ID already exists: Update with
	// Create and Rename return it instead of overwriting a live session.
	ErrExists = errors.New("sessionkit: session already exists")
	// ErrClosed is returned by a provider used after Close.
	ErrClosed = errors.New("sessionkit: provider closed")
	// ErrNotSupported is returned when a provider lacks an optional
	// ability, for example Count on a provider that is not a Counter.
	ErrNotSupported = errors.New("sessionkit: not supported by this provider")
)

// Record is what a provider stores for one session: its values, each
// already encoded by the manager, and the time after which the session is
// dead. The values come either as a map (Values) or packed into one string
// (Packed, read when Values is nil); Lookup, All and Map read both.
//
// Neither side modifies a Record's values once Get has returned it: the
// manager never writes to them (so a provider may hand the same map or
// Packed to several callers, as the memory provider does, which makes its
// reads allocation-free), and the provider must never change them
// afterwards either (the manager reads strings straight out of them
// without copying).
type Record struct {
	// Values maps each key to its encoded value. Keys and values are
	// arbitrary bytes; keys that start with a NUL byte are the manager's
	// own bookkeeping and must be stored like any other.
	Values map[string][]byte
	// Packed holds the values instead of Values, for providers that keep a
	// session as one blob (see Packed). It is read only when Values is nil.
	Packed Packed
	// Expires is the deadline set by the last Update or Touch. Providers
	// may round it to their storage's precision (at worst a second).
	Expires time.Time
	// Rev is the provider's revision of the stored session, for a provider
	// that keeps one (a compare-and-swap ID, a write token): a number that
	// every write of the session changes. 0 means none. The manager only
	// hands it back, in Update.Base.
	Rev uint64
}

// Lookup returns the encoded value stored under key.
func (r Record) Lookup(key string) ([]byte, bool) { return r.lookup(key) }

// lookup is Lookup for the manager's hot paths: through a pointer, a
// call copies no Record (seven words).
func (r *Record) lookup(key string) ([]byte, bool) {
	if r.Values != nil {
		v, ok := r.Values[key]
		return v, ok
	}
	return r.Packed.Lookup(key)
}

// Len returns the number of values.
func (r Record) Len() int {
	if r.Values != nil {
		return len(r.Values)
	}
	return r.Packed.Len()
}

// All yields every key and its encoded value.
func (r Record) All() iter.Seq2[string, []byte] {
	if r.Values != nil {
		return maps.All(r.Values)
	}
	return r.Packed.All()
}

// Pack returns the values packed: Packed itself when Values is nil (the
// zero Packed for a Record with neither), otherwise Values packed into a
// new string. It is Map's counterpart for code that writes whole sessions.
func (r Record) Pack() Packed {
	if r.Values != nil {
		return Pack(r.Values)
	}
	return r.Packed
}

// Map returns the values as a map: Values itself when set, otherwise a
// new map of Packed's values. It must not be modified.
func (r Record) Map() map[string][]byte {
	if r.Values != nil {
		return r.Values
	}
	return r.Packed.Map()
}

// Update is one request's change to a session, applied atomically by
// Provider.Update.
//
// A provider applies it as a read-modify-write under its own lock,
// transaction or compare-and-swap: first Clear (if set), then Delete, then
// Set. Keys this Update does not mention keep whatever value is stored now,
// even if another request wrote them after this one read the session; that
// is what keeps two concurrent requests that change different keys from
// losing each other's writes.
//
// The values to set are read with SetLen and SetEntries (AppendPacked,
// PackedSize and Apply read them too); Set holds them all only for a
// provider that is not a MethodReader. The provider may keep references to
// the values' byte slices, which the manager never modifies, but must
// neither change nor keep the Set map or the Delete slice themselves, nor
// keep u to read its values later: the manager reuses their memory once
// Update has returned.
//
// Base lets a provider skip the read of that read-modify-write. It is the
// Record this provider's Get returned earlier in the same request, which
// the changes were made against, and what is stored is often still exactly
// that: the provider may then write u applied to Base (AppendPacked(dst,
// Base.Pack()), say) in one conditional write, "if the stored session is
// still Base", and read and merge only when the condition fails. The
// condition is the provider's to check, by Base.Rev or by comparing the
// stored bytes with Base's. Base is a hint: an Update with a stale or zero
// Base must store exactly what it would store without one. The manager
// passes Base as Get returned it, so a provider may trust that Base's
// values are those of Base.Rev. A provider that has no conditional write
// ignores Base.
type Update struct {
	// Create allows the session to be created. Without it, an Update of a
	// missing or expired session fails with ErrNotFound and writes nothing,
	// so a session that was destroyed or renamed is never brought back. With
	// it, an Update of a live session fails with ErrExists.
	Create bool
	// Clear removes every stored value before Delete and Set apply.
	Clear bool
	// Delete lists keys to remove.
	Delete []string
	// Set maps keys to new encoded values. For a MethodReader the manager
	// leaves it nil and lists the values where only Update's methods see
	// them (SetLen, SetEntries, AppendPacked, PackedSize, Apply). The
	// methods see Set's entries too, and an entry of Set wins over a
	// listed value of the same key, so a wrapper may add to Set.
	Set map[string][]byte
	// Expires is the new deadline. The zero time keeps the stored one
	// (never the case for Create, which always carries a deadline).
	Expires time.Time
	// Base is the session as this request read it, when nothing was
	// written to it since in this request; otherwise, and for Create, the
	// zero Record (Base.Expires is zero only then). See above.
	Base Record

	// set lists the values to store when the manager built the Update
	// for a MethodReader, which leaves Set nil: filling and clearing a
	// map costs more than the rest of a small write. Its keys are
	// distinct, and an entry of Set with the same key replaces one here
	// (see setEntries).
	set []setEntry
}

// put adds key's new value to u: to Set when the manager fills it,
// otherwise to the list.
func (u *Update) put(key string, v []byte) { u.putAt(key, v, 0) }

// putAt is put with setEntry.at, which only a listed value keeps.
func (u *Update) putAt(key string, v []byte, at int) {
	if u.Set != nil {
		u.Set[key] = v
		return
	}
	u.set = append(u.set, setEntry{k: key, v: v, at: at})
}

// SetLen returns the number of keys u sets.
func (u *Update) SetLen() int {
	if len(u.Set) == 0 || len(u.set) == 0 {
		return len(u.set) + len(u.Set)
	}
	n := 0
	for range u.SetEntries() {
		n++
	}
	return n
}

// SetEntries returns an iterator over the keys u sets and their new
// values, each key once, in no particular order. It is the one place
// that says which values an Update sets: the listed ones that Set does
// not replace, then Set's.
func (u *Update) SetEntries() iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		for i := range u.set {
			e := &u.set[i]
			if _, ok := u.Set[e.k]; ok {
				continue
			}
			if !yield(e.k, e.v) {
				return
			}
		}
		for k, v := range u.Set {
			if !yield(k, v) {
				return
			}
		}
	}
}

// lookupSet returns the value u sets for key, or nil: SetEntries's
// answer, written out because a new session's every save asks it.
func (u *Update) lookupSet(key string) []byte {
	if v, ok := u.Set[key]; ok {
		return v
	}
	for i := range u.set {
		if u.set[i].k == key {
			return u.set[i].v
		}
	}
	return nil
}

// Provider stores sessions for a Session manager. It is byte-oriented: the
// manager encodes values before they reach it, so a provider never sees Go
// values and needs no codec.
//
// Every method must be safe for concurrent use, honour ctx (return an error
// wrapping ctx.Err() when the context is done before the work is), and
// treat a session whose Expires has passed as missing even if no garbage
// collection ran yet. IDs reaching a provider are already validated: 16 to
// 256 bytes of [A-Za-z0-9_-].
//
// The conformance suite in package providertest checks all of this; run it
// against any new provider.
//
// Optional abilities are separate interfaces, discovered by type assertion:
// Toucher, Copier, MethodReader, Counter, Ranger and GarbageCollector.
type Provider interface {
	// Get returns the session's record, or an error wrapping ErrNotFound
	// if it does not exist or has expired. The caller does not modify the
	// returned Record.
	Get(ctx context.Context, id string) (Record, error)
	// Update applies u to the session atomically; see Update.
	Update(ctx context.Context, id string, u Update) error
	// Delete removes the session. Deleting a missing session is not an
	// error.
	Delete(ctx context.Context, id string) error
	// Rename moves the session's values from oldID to newID, sets its
	// deadline to expires, and removes oldID, atomically: no reader sees
	// both or neither. It fails with ErrNotFound if oldID is missing and
	// with ErrExists if newID is live.
	Rename(ctx context.Context, oldID, newID string, expires time.Time) error
	// Close releases the provider's resources. Calls after Close return
	// errors (ErrClosed where there is no better one); Close itself may be
	// called more than once.
	Close() error
}

// Toucher is a Provider that can extend a session's deadline more cheaply
// than an Update without changes. Touch of a missing session returns an
// error wrapping ErrNotFound and creates nothing.
type Toucher interface {
	Touch(ctx context.Context, id string, expires time.Time) error
}

// Copier is a Provider whose calls copy whatever they keep: once a call
// returns, the provider holds no reference to its context, to its id strings
// (of any call: Get, Update, Touch, Delete, Rename), or to any byte of the
// values an Update sets. The manager then encodes each save into a buffer
// that it reuses for the next one, keeps each request's ID in a buffer that
// the next request reuses, and hands the provider calls of one request after
// another the same context (reset for each): that saves an allocation per
// write, and leaves a request that only reads with 16 bytes of garbage
// instead of about 90. Without Copier, every save gets memory of its own,
// which the provider may keep (a map provider may store the values as they
// come, say), every ID a string of its own, and every request a context of
// its own.
//
// CopiesUpdates is a marker and is never called. providertest checks the
// promise about ids and values by overwriting them after every call; a
// context kept is not something a test can see, so mind it when wrapping a
// Copier: a wrapper that embeds one is a Copier too.
type Copier interface {
	CopiesUpdates()
}

// MethodReader is a Provider that reads the values an Update sets only
// through the Update's methods (SetLen, SetEntries, AppendPacked,
// PackedSize, Apply), never from its Set field. The manager then leaves
// Set nil and lists the values where only those methods see them, which
// spares every write filling and emptying a map. Without MethodReader,
// Set holds every value.
//
// ReadsUpdatesByMethod is a marker and is never called. providertest
// checks the promise by saving sessions through a Session manager: a
// provider that makes it and reads Set finds no values there. A wrapper
// that embeds a MethodReader is one too, so a wrapper that changes an
// Update's values builds a new Update (or adds to Set, which the methods
// see, making it first if it is nil) rather than writing into a nil Set.
type MethodReader interface {
	ReadsUpdatesByMethod()
}

// Counter is a Provider that can count its live sessions.
type Counter interface {
	Count(ctx context.Context) (int, error)
}

// Ranger is a Provider that can list its live sessions, for example to
// find every session of one user. Range calls fn for each live session
// until fn returns false. The Record passed to fn must not be modified.
// fn may call the provider, to delete the session it is given say (ending
// every session of one user): Range must not hold a lock those calls
// need. Sessions created or removed while Range runs may or may not be
// seen.
type Ranger interface {
	Range(ctx context.Context, fn func(id string, r Record) bool) error
}

// GarbageCollector is a Provider whose storage does not expire data by
// itself. The manager calls GC every Config.GCInterval from one background
// goroutine; GC removes sessions whose deadline has passed and nothing
// else.
type GarbageCollector interface {
	GC(ctx context.Context) error
}

// ClientSide is a Provider that keeps each session in the client's cookie
// instead of on a server (package cookie is one). The manager then never
// calls Get, Update, Delete or Rename: it opens the cookie with
// OpenSession, and seals the whole session into a new cookie with
// SealSession whenever it changed or its deadline moved.
//
// What that trades away: a session cannot be revoked on the server before
// it expires (Destroy only asks the browser to drop the cookie), and
// concurrent requests do not merge (the last response's cookie wins).
type ClientSide interface {
	// OpenSession authenticates and decodes a cookie value made by
	// SealSession for the cookie called name. A value that is forged,
	// tampered with, sealed for another name, expired or malformed gives
	// an error; the manager then starts a fresh session.
	OpenSession(name, value string) (id string, r Record, err error)
	// SealSession encodes the session into a cookie value for the cookie
	// called name. It fails (and the manager writes nothing) when the
	// result would not fit in a cookie. The manager hands r's values over
	// packed (Record.Packed, Values nil): read them through r's methods
	// (Pack, Map, All, Lookup), not r.Values.
	SealSession(name, id string, r Record) (string, error)
}

// ProviderConfig is a provider's configuration, passed to SetProvider.
// ProviderName lets SetProvider report a config handed to the wrong
// provider.
type ProviderConfig interface {
	ProviderName() string
}

// Driver opens providers of one kind. A provider package registers a
// Driver from its init function, the way database/sql drivers do; most
// need no Driver type of their own (see DriverFor):
//
//	func init() { sessionkit.Register("redis", sessionkit.DriverFor(New)) }
//
// Each SetProvider call opens a new Provider from its own config, so two
// managers never share a provider's state.
type Driver interface {
	// Open validates cfg and returns a ready provider. cfg is the value
	// passed to SetProvider; it may be nil, meaning all defaults. Open
	// returns a clear error for a config of the wrong type, an invalid
	// setting or an unreachable server.
	Open(ctx context.Context, cfg ProviderConfig) (Provider, error)
}

// ConfigAs converts the config passed to a Driver's Open into the
// provider's own config type T: nil, or a nil *T, gives T's zero value
// (all defaults); a *T gives a copy of what it points to; anything else
// gives an error wrapping ErrInvalidConfig that names the type expected.
//
// DriverFor builds the Driver that does exactly this; ConfigAs is for a
// Driver that needs more.
func ConfigAs[T any](cfg ProviderConfig) (T, error) {
	var c T
	if cfg == nil {
		return c, nil
	}
	x, ok := any(cfg).(*T)
	if !ok {
		return c, fmt.Errorf("%w: config must be %T, got %T", ErrInvalidConfig, (*T)(nil), cfg)
	}
	if x != nil {
		c = *x
	}
	return c, nil
}

// DriverFor returns the Driver most providers need: its Open converts the
// config with ConfigAs (nil, or a nil *C, meaning all defaults) and calls
// open with it. A provider whose New has that shape registers with
//
//	func init() { sessionkit.Register(Name, sessionkit.DriverFor(New)) }
//
// and one with more to do (a ping, say) with a function literal.
func DriverFor[C any, P Provider](open func(ctx context.Context, c C) (P, error)) Driver {
	return driverFor[C, P](open)
}

type driverFor[C any, P Provider] func(ctx context.Context, c C) (P, error)

func (open driverFor[C, P]) Open(ctx context.Context, cfg ProviderConfig) (Provider, error) {
	c, err := ConfigAs[C](cfg)
	if err != nil {
		return nil, err
	}
	p, err := open(ctx, c)
	if err != nil {
		// Not p: a nil *T in a Provider would not compare equal to nil.
		return nil, err
	}
	return p, nil
}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a provider driver available under name. It panics if
// name is empty, driver is nil, or name is already registered: these are
// programming errors caught at init time.
func Register(name string, driver Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if name == "" {
		panic("sessionkit: Register with an empty provider name")
	}
	if driver == nil {
		panic("sessionkit: Register of a nil driver for provider " + name)
	}
	if _, dup := drivers[name]; dup {
		panic("sessionkit: Register called twice for provider " + name)
	}
	drivers[name] = driver
}

// Drivers returns the sorted names of the registered providers.
func Drivers() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupDriver(name string) (Driver, error) {
	driversMu.RLock()
	d, ok := drivers[name]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("sessionkit: unknown provider %q (registered: %v; did you import its package?)", name, Drivers())
	}
	return d, nil
}
