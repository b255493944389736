package sessionkit

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Defaults applied by DefaultConfig and, field by field, to any zero field
// of a Config passed to New.
const (
	DefaultCookieName      = "sessionid"
	DefaultPath            = "/"
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 24 * time.Hour
	DefaultGCInterval      = time.Minute
	DefaultQueryName       = "sessionid"
	DefaultHeaderName      = "X-Session-Id"
)

// maxCookieAge is the longest Max-Age the manager sends: browsers cap a
// cookie's lifetime at 400 days (RFC 6265bis), so a longer one would mean
// nothing to them.
const maxCookieAge = 400 * 24 * time.Hour

// RequestInfo is what Config.IsSecure may look at to decide whether the
// request reached the site over HTTPS.
type RequestInfo interface {
	// Header returns the first value of the request header name.
	Header(name string) string
	// TLS reports whether the connection to this server is TLS. The
	// manager asks IsSecure only about requests that did not arrive over
	// TLS, since those always get Secure, so there it reports false; it
	// serves an IsSecure shared with code that asks about any request.
	TLS() bool
}

// Config configures a Session manager. Every field has a usable zero
// value: a zero field takes the default documented on it, so Config{}
// behaves exactly like DefaultConfig().
type Config struct {
	// CookieName is the name of the session cookie. Default "sessionid".
	CookieName string
	// Domain is the cookie's Domain attribute. Default "": a host-only
	// cookie, the safe choice. Setting it shares the session with every
	// subdomain of Domain.
	Domain string
	// DisableSubdomainPersistence, when true, omits the Domain attribute
	// even if Domain is set, so the cookie stays host-only. It lets one
	// configuration be switched to host-only cookies per environment.
	DisableSubdomainPersistence bool
	// Path is the cookie's Path attribute. Default "/". It must start
	// with "/" and hold printable ASCII only, without ';', percent-escapes
	// or dot segments, so that fasthttp and net/http send it unchanged.
	Path string
	// Expires is the cookie's lifetime in the browser. 0 (the default)
	// makes a browser-session cookie that the browser drops when it
	// closes; >0 makes a persistent cookie with that Max-Age, refreshed
	// whenever the server extends the session. It does not change how long
	// the server keeps the session: IdleTimeout and AbsoluteTimeout do.
	// Browsers keep a cookie 400 days at most (RFC 6265bis), however long
	// its Max-Age, so a longer Expires is sent as 400 days: a value as
	// large as math.MaxInt64 means as long as browsers allow, refreshed
	// like any other.
	Expires time.Duration
	// Secure forces the cookie's Secure attribute. Whatever its value, the
	// attribute is set on requests that arrive over TLS, or for which
	// IsSecure returns true. Default false, so plain-HTTP development
	// servers work.
	Secure bool
	// IsSecure, if set, decides whether a request reached the site over
	// HTTPS, for servers behind a TLS-terminating proxy (for example by
	// checking X-Forwarded-Proto from a trusted proxy). Default: only the
	// connection's own TLS counts.
	IsSecure func(r RequestInfo) bool
	// HTTPOnlyDisabled turns off the cookie's HttpOnly attribute, which is
	// on by default so scripts cannot read the session ID.
	HTTPOnlyDisabled bool
	// SameSite is the cookie's SameSite attribute. Default
	// http.SameSiteLaxMode (also used for http.SameSiteDefaultMode).
	// SameSiteNoneMode forces Secure, as browsers require.
	SameSite http.SameSite
	// Partitioned sets the cookie's Partitioned attribute (CHIPS) and
	// forces Secure, as browsers require. Default false.
	Partitioned bool
	// IdleTimeout ends a session that has not been used for this long.
	// Default 30 minutes; negative disables it (AbsoluteTimeout still
	// applies).
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after it was created, even
	// if it is used all the time. Default 24 hours; negative disables it
	// (IdleTimeout still applies). Both cannot be disabled.
	AbsoluteTimeout time.Duration
	// GCInterval is how often expired sessions are removed, for providers
	// whose storage does not expire data by itself. Default 1 minute.
	GCInterval time.Duration
	// IDInQuery also accepts the session ID from the URL query parameter
	// QueryName. Off by default: IDs in URLs leak through logs and
	// Referer headers.
	IDInQuery bool
	// QueryName is the query parameter read when IDInQuery is set.
	// Default "sessionid".
	QueryName string
	// IDInHeader also accepts the session ID from the request header
	// HeaderName, and sends a new session's ID back in that response
	// header, for APIs and mobile clients. Off by default.
	//
	// When several sources carry an ID, the header wins, then the cookie,
	// then the query.
	IDInHeader bool
	// HeaderName is the header read and written when IDInHeader is set.
	// Default "X-Session-Id". Header names ignore case; the manager keeps
	// it in canonical form ("x-session-id" becomes "X-Session-Id").
	HeaderName string
	// IDGenerator returns a new session ID. Default: 24 bytes (192 bits)
	// from crypto/rand, base64url-encoded to 32 characters. A custom
	// generator must return 16 to 256 characters of [A-Za-z0-9_-] with at
	// least 128 bits of entropy; IDs it produces that break this rule make
	// Save and Regenerate fail with an error wrapping ErrInvalidID, and
	// nothing is stored or sent under them.
	IDGenerator func() string
	// Codec encodes values that are not scalars. Default MsgpackCodec.
	Codec Codec
	// EncodeCookie, if set, transforms the session ID before it is written
	// to the cookie or header (for example to sign it); DecodeCookie
	// reverses it when reading. Both must be set, or neither. A value
	// DecodeCookie rejects is treated as no ID: a fresh session starts.
	EncodeCookie func(id string) (string, error)
	// DecodeCookie reverses EncodeCookie.
	DecodeCookie func(value string) (string, error)
	// HashIDs stores each session under the SHA-256 of its ID (see
	// HashID) instead of the ID itself, so a leaked copy of the storage
	// holds no usable session IDs. Off by default: it costs one SHA-256
	// per request (worked out once, however many provider calls the
	// request makes; no allocation with a Copier such as the memory
	// provider), about 0.2µs on the W1 benchmark (BenchmarkW1HashedIDs
	// against BenchmarkW1ReadUnchanged: 551 against 347 ns), more than
	// half the rest of a cached read. Switching it on or off orphans the
	// sessions stored before.
	HashIDs bool
	// SignKeys, if set, signs the session ID in the cookie (and header)
	// with HMAC-SHA256 under the first key; any key verifies, so keys
	// rotate by putting the new one first. An ID whose signature does not
	// verify is refused before any provider lookup, so a flood of random
	// IDs costs the storage nothing. Keys must be at least 32 bytes. The
	// signature also expires with AbsoluteTimeout. Cannot be combined with
	// EncodeCookie/DecodeCookie.
	SignKeys [][]byte
	// Logger receives what cannot be returned to a caller: garbage
	// collection errors, corrupt stored sessions, changes made after a
	// response was sent. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		CookieName:      DefaultCookieName,
		Path:            DefaultPath,
		SameSite:        http.SameSiteLaxMode,
		IdleTimeout:     DefaultIdleTimeout,
		AbsoluteTimeout: DefaultAbsoluteTimeout,
		GCInterval:      DefaultGCInterval,
		QueryName:       DefaultQueryName,
		HeaderName:      DefaultHeaderName,
		IDGenerator:     NewID,
		Codec:           MsgpackCodec{},
		Logger:          slog.Default(),
	}
}

// withDefaults fills every zero field with its default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.CookieName == "" {
		c.CookieName = d.CookieName
	}
	if c.Path == "" {
		c.Path = d.Path
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = d.SameSite
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = d.AbsoluteTimeout
	}
	if c.GCInterval <= 0 {
		c.GCInterval = d.GCInterval
	}
	if c.QueryName == "" {
		c.QueryName = d.QueryName
	}
	if c.HeaderName == "" {
		c.HeaderName = d.HeaderName
	}
	// Header names are case-insensitive; the canonical form lets the
	// fasthttp transport set the header without normalizing it each time.
	c.HeaderName = textproto.CanonicalMIMEHeaderKey(c.HeaderName)
	if c.IDGenerator == nil {
		c.IDGenerator = d.IDGenerator
	}
	if c.Codec == nil {
		c.Codec = d.Codec
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("sessionkit: invalid config")

// validate reports the first setting that cannot work, saying how to fix it.
func (c Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if !validToken(c.CookieName) {
		return bad("CookieName %q must be a non-empty HTTP token (letters, digits and !#$%%&'*+-.^_`|~)", c.CookieName)
	}
	if strings.HasPrefix(c.CookieName, "__Host-") && c.Domain != "" && !c.DisableSubdomainPersistence {
		return bad("a __Host- cookie cannot have a Domain: clear Domain %q", c.Domain)
	}
	if strings.HasPrefix(c.CookieName, "__Host-") && c.Path != "/" {
		return bad("a __Host- cookie must have Path \"/\", not %q", c.Path)
	}
	// Browsers ignore a path that does not start with '/' (RFC 6265,
	// section 5.2.4) and scope the cookie to each page's directory.
	if !strings.HasPrefix(c.Path, "/") {
		return bad(`Path %q must start with "/": browsers ignore any other path`, c.Path)
	}
	if i := invalidPathByte(c.Path); i >= 0 {
		return bad("Path %q holds the byte %q, which a cookie's path cannot: use printable ASCII, without ';'", c.Path, c.Path[i])
	}
	// fasthttp normalizes a cookie's path as it does a request's, where
	// net/http sends it as is.
	if sent := fastCookiePath(c.Path); sent != c.Path {
		return bad("Path %q would be sent by fasthttp as %q (it decodes percent-escapes and drops repeated slashes and dot segments): use a path without them", c.Path, sent)
	}
	// A Domain is checked as net/http checks it, which drops one it
	// refuses where fasthttp sends it as is. Only a Domain that is sent is
	// checked: one switched off by DisableSubdomainPersistence never
	// reaches a client, and may hold a development value such as
	// "localhost:8080".
	if c.Domain != "" && !c.DisableSubdomainPersistence && (&http.Cookie{Name: "x", Domain: c.Domain}).Valid() != nil {
		return bad("Domain %q is not a cookie domain: use a host name of letters, digits, '-' and '.' (punycode for an international name), or an IPv4 address, with no scheme, port or path", c.Domain)
	}
	switch c.SameSite {
	case http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode, http.SameSiteNoneMode:
	default:
		return bad("SameSite %d is not an http.SameSite constant: use http.SameSiteLaxMode, http.SameSiteStrictMode or http.SameSiteNoneMode", c.SameSite)
	}
	if c.IdleTimeout < 0 && c.AbsoluteTimeout < 0 {
		return bad("IdleTimeout and AbsoluteTimeout are both disabled: sessions would never expire; set at least one")
	}
	if c.Expires < 0 {
		return bad("Expires %v is negative: use 0 for a browser-session cookie", c.Expires)
	}
	if c.IDInQuery && !validToken(c.QueryName) {
		return bad("QueryName %q is not a valid parameter name", c.QueryName)
	}
	if c.IDInHeader && !validToken(c.HeaderName) {
		return bad("HeaderName %q is not a valid header name", c.HeaderName)
	}
	if len(c.SignKeys) > 0 && (c.EncodeCookie != nil || c.DecodeCookie != nil) {
		return bad("SignKeys and EncodeCookie/DecodeCookie both transform the cookie: use one")
	}
	if (c.EncodeCookie == nil) != (c.DecodeCookie == nil) {
		return bad("set both EncodeCookie and DecodeCookie, or neither")
	}
	if id := c.IDGenerator(); !ValidID(id) {
		return bad("IDGenerator returned %q: IDs must be 16 to 256 characters of [A-Za-z0-9_-]", id)
	}
	return nil
}

// invalidPathByte returns the index of the first byte of path that RFC
// 6265's path-value forbids, or -1: it allows any ASCII character but the
// controls and ';'. The transports differ on such a byte: fasthttp turns
// a ';' or a line break into a space and sends the other bytes as they
// are, where net/http drops each of them, so each would send a path of
// its own, and neither the one configured.
func invalidPathByte(path string) int {
	for i := 0; i < len(path); i++ {
		if b := path[i]; b < 0x20 || b >= 0x7f || b == ';' {
			return i
		}
	}
	return -1
}

// fastCookiePath returns the Path fasthttp sends for path.
func fastCookiePath(path string) string {
	var fc fasthttp.Cookie
	fc.SetPath(path)
	return string(fc.Path())
}

// validToken reports whether s is a non-empty RFC 7230 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
