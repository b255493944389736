// Package cookie is a sessionkit provider that keeps each session in the
// client's cookie, sealed with AES-256-GCM (sessionkit.Sealer): no server
// state at all.
//
//	import "github.com/sessionkit/sessionkit/cookie"
//	err := session.SetProvider("cookie", &cookie.Config{Keys: [][]byte{key}})
//
// Config:
//
//	field    default   meaning
//	Keys     required  32-byte keys; the first seals, every key opens (rotate by prepending)
//	MaxAge   24h       a sealed cookie older than this is refused, whatever it says inside
//	MaxSize  4096      limit on len(name)+1+len(value), at most 4096; Save fails beyond it
//
// The trade-offs of client-side sessions (see sessionkit.ClientSide): a
// session cannot be revoked before it expires, since a copied cookie stays
// valid until its deadline or MaxAge; concurrent requests do not merge,
// the last response's cookie wins; and everything stored travels with
// every request, within the browser's 4096-byte limit. A Save that would
// exceed it fails with ErrTooLarge and writes nothing, so the client keeps
// its previous, still valid cookie.
//
// Of the conformance suite (providertest), the client-side cases apply:
// round trips, binary safety, the size limit, tampering, name binding,
// expiry, key rotation and Close. The server-side cases (Update merges,
// Delete, Rename, Count, GC) have no meaning without server state.
package cookie

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sessionkit/sessionkit"
)

// Name is the name the provider registers under.
const Name = "cookie"

// Defaults.
const (
	DefaultMaxAge  = 24 * time.Hour
	DefaultMaxSize = 4096
)


// ErrTooLarge is returned by SealSession when the session does not fit in
// a cookie.
var ErrTooLarge = errors.New("cookie: session too large for a cookie")

// Config configures the cookie provider.
type Config struct {
	// Keys are AES-256 keys, 32 bytes each: the first seals, every key
	// opens, so a new key is rolled out by putting it first and an old
	// one retired by removing it. Required.
	Keys [][]byte
	// MaxAge refuses cookies sealed longer ago than this. Default 24h.
	// Every save re-seals, so it bounds how long an unused copy of a
	// cookie stays valid; keep it at least the manager's IdleTimeout.
	MaxAge time.Duration
	// MaxSize bounds len(cookie name)+1+len(value). Default 4096, what
	// every browser accepts, and the most New allows: the manager ignores
	// a longer cookie, so a session sealed past 4096 bytes would save and
	// then be lost, the next request starting a fresh one.
	MaxSize int
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

// driver opens providers for SetProvider (New refuses a config without
// Keys).
var driver = sessionkit.DriverFor(func(_ context.Context, c Config) (*Provider, error) { return New(c) })

func init() { sessionkit.Register(Name, driver) }

// Provider is the cookie provider.
type Provider struct {
	sealer  *sessionkit.Sealer
	maxAge  time.Duration
	maxSize int
	closed  atomic.Bool
}

// New returns a cookie provider, or an error if the keys are unusable.
func New(cfg Config) (*Provider, error) {
	if cfg.MaxAge < 0 || cfg.MaxSize < 0 {
		return nil, fmt.Errorf("cookie: MaxAge and MaxSize must not be negative (0 means the default)")
	}
	// The manager drops a longer value without opening it, so with a
	// larger limit Save would send cookies that never come back.
	if cfg.MaxSize > sessionkit.MaxClientValue {
		return nil, fmt.Errorf("cookie: MaxSize is %d; it must be at most %d (sessionkit.MaxClientValue), the longest cookie the manager reads back", cfg.MaxSize, sessionkit.MaxClientValue)
	}
	s, err := sessionkit.NewSealer(cfg.Keys...)
	if err != nil {
		return nil, fmt.Errorf("cookie: %w", err)
	}
	p := &Provider{sealer: s, maxAge: cfg.MaxAge, maxSize: cfg.MaxSize}
	if p.maxAge == 0 {
		p.maxAge = DefaultMaxAge
	}
	if p.maxSize == 0 {
		p.maxSize = DefaultMaxSize
	}
	return p, nil
}

// Plaintext layout: ID length (1 byte), ID, deadline (8 bytes, unix
// nanoseconds), then sessionkit.EncodeValues of the values.
//
// The length byte says 1 to 255 as itself and 256 (sessionkit.MaxIDLength)
// as 0, so that cookies sealed before 256-byte IDs were allowed still read
// as they did. 0 was free: the empty ID it used to mean never opened a
// session, since sessionkit.ValidID refuses it.

// longestID is the longest ID the length byte can say. It is not
// sessionkit.MaxIDLength itself so that, were that ever raised, a longer ID
// would be refused here instead of wrapping to a wrong length.
const longestID = 256

// SealSession implements sessionkit.ClientSide.
func (p *Provider) SealSession(name, id string, r sessionkit.Record) (string, error) {
	if p.closed.Load() {
		return "", sessionkit.ErrClosed
	}
	if len(id) == 0 || len(id) > longestID {
		return "", fmt.Errorf("cookie: %w: %d bytes; a sealed ID must be 1 to %d bytes (see sessionkit.ValidID)", sessionkit.ErrInvalidID, len(id), longestID)
	}
	// The values travel packed: a Record that already holds them so (the
	// manager's always does) is sealed as it is.
	values := r.Pack()
	if values == "" {
		values = sessionkit.Pack(nil) // no values at all, in the stored form
	}
	plain := make([]byte, 0, 1+len(id)+8+len(values))
	plain = append(plain, byte(len(id))) // 256 wraps to 0
	plain = append(plain, id...)
	plain = binary.BigEndian.AppendUint64(plain, uint64(r.Expires.UnixNano()))
	plain = append(plain, values...)
	v, err := p.sealer.Seal(name, plain)
	if err != nil {
		return "", fmt.Errorf("cookie: %w", err)
	}
	if n := len(name) + 1 + len(v); n > p.maxSize {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, p.maxSize)
	}
	return v, nil
}

// OpenSession implements sessionkit.ClientSide.
func (p *Provider) OpenSession(name, value string) (string, sessionkit.Record, error) {
	if p.closed.Load() {
		return "", sessionkit.Record{}, sessionkit.ErrClosed
	}
	if len(name)+1+len(value) > p.maxSize {
		return "", sessionkit.Record{}, fmt.Errorf("%w: cookie of %d bytes", ErrTooLarge, len(value))
	}
	plain, err := p.sealer.Open(name, value, p.maxAge)
	if err != nil {
		return "", sessionkit.Record{}, fmt.Errorf("cookie: %w", err)
	}
	if len(plain) < 1 {
		return "", sessionkit.Record{}, fmt.Errorf("cookie: %w: short payload", sessionkit.ErrCorruptValue)
	}
	n := int(plain[0])
	if n == 0 {
		n = longestID
	}
	if len(plain) < 1+n+8 {
		return "", sessionkit.Record{}, fmt.Errorf("cookie: %w: short payload", sessionkit.ErrCorruptValue)
	}
	exp := time.Unix(0, int64(binary.BigEndian.Uint64(plain[1+n:])))
	if !time.Now().Before(exp) {
		return "", sessionkit.Record{}, fmt.Errorf("cookie: %w: session expired", sessionkit.ErrNotFound)
	}
	// plain is Open's own buffer and is never written again: the ID and
	// the values are read out of it in place.
	str := unsafe.String(unsafe.SliceData(plain), len(plain))
	id := str[1 : 1+n]
	values, err := sessionkit.ParsePackedString(str[1+n+8:])
	if err != nil {
		return "", sessionkit.Record{}, fmt.Errorf("cookie: %w", err)
	}
	return id, sessionkit.Record{Packed: values, Expires: exp}, nil
}

// errServerSide answers the server-side methods, which the manager never
// calls on a client-side provider.
var errServerSide = fmt.Errorf("cookie: sessions live in the client's cookie: %w", sessionkit.ErrNotSupported)

// Get implements sessionkit.Provider; see errServerSide.
func (p *Provider) Get(context.Context, string) (sessionkit.Record, error) {
	return sessionkit.Record{}, errServerSide
}

// Update implements sessionkit.Provider; see errServerSide.
func (p *Provider) Update(context.Context, string, sessionkit.Update) error { return errServerSide }

// Delete implements sessionkit.Provider; see errServerSide.
func (p *Provider) Delete(context.Context, string) error { return errServerSide }

// Rename implements sessionkit.Provider; see errServerSide.
func (p *Provider) Rename(context.Context, string, string, time.Time) error { return errServerSide }

// Close implements sessionkit.Provider. Sealing and opening fail
// afterwards.
func (p *Provider) Close() error {
	p.closed.Store(true)
	return nil
}
