// Package redis is a sessionkit provider that stores sessions in Redis
// 7.0 or later: a single server, a Sentinel-managed master, or a Redis
// Cluster, through github.com/redis/go-redis/v9.
//
// Import it for its side effect of registering the "redis" provider:
//
//	import _ "github.com/sessionkit/sessionkit/redis"
//
//	err := session.SetProvider("redis", &redis.Config{
//		Addrs:    []string{"10.0.0.5:6379"},
//		Username: "sessions",
//		Password: os.Getenv("REDIS_PASSWORD"),
//	})
//
// # Configuration
//
// Config chooses the deployment from its fields, the way go-redis's
// NewUniversalClient does:
//
//	Deployment        Fields                              Example
//	----------        ------                              -------
//	single server     Addrs with one address (default     Addrs: {"127.0.0.1:6379"}
//	                  127.0.0.1:6379)
//	unix socket       Addrs with one absolute path        Addrs: {"/run/redis/redis.sock"}
//	Sentinel          MasterName + sentinel Addrs         MasterName: "sessions",
//	                  (SentinelUsername/Password if the   Addrs: {"s1:26379", "s2:26379"}
//	                  sentinels need them)
//	Cluster           two or more seed Addrs, or one      Addrs: {"c1:7000", "c2:7000"}
//	                  address with ClusterMode
//	your own client   Client (every connection field      Client: rdb
//	                  must then be left zero)
//
// Username and Password authenticate (ACL users or the legacy
// requirepass), TLSConfig enables TLS, DB selects a database (not in
// Cluster). Timeouts, pool size and retries have the defaults documented
// on each field. Prefix (default "sessionkit:") namespaces the keys, so
// several applications can share a server.
//
// # Storage
//
// Each session is one hash under Prefix+ID with one field per value,
// named "." followed by the key, plus a marker field "" that keeps a
// session whose values were all deleted alive and identifies every write.
// Any key, the empty string included, can be stored. Redis expires the
// hash itself (PEXPIREAT), so the provider has no GC.
//
// Every Get, Update, Touch and Delete is one round trip. Get is a plain
// HGETALL: the hash also holds the deadline, in a field "e" that every
// write of the expiry updates with it, so reading a session runs no script
// (the server's cheapest way to answer, which matters most on the
// commonest, read-only request). The writes are Lua scripts run with
// EVALSHA (after Open loads them; a server that forgot them, for example
// after a restart, costs one extra EVAL): Update checks that the session
// exists (or, with Create, that it does not) and applies Clear, Delete,
// Set and the deadline atomically. The deadline field is what the
// provider reports; a key whose expiry someone else changed with PERSIST
// or PEXPIRE still reads with the deadline it last wrote.
//
// # Rename
//
// On a single server or a Sentinel master, Rename is one atomic script.
// In a Cluster the two IDs hash to different slots, usually on different
// nodes, so no script can see both. There Rename takes three round trips:
// it reads the old session, copies it to the new ID (refusing a live one),
// then deletes the old ID in a script that also hands back its fields if
// an Update changed them after the read; a fourth round trip then brings
// the copy up to date. The guarantees:
//
//   - no successful Update of the old ID is lost: it either lands before
//     the delete, and reaches the new ID, or after it, and fails with
//     ErrNotFound;
//   - a concurrent Delete (or expiry) of the old ID makes Rename fail with
//     ErrNotFound and removes the copy, so nothing is resurrected;
//   - the old ID is never missing while the new one is not yet written.
//
// What the cluster version does not give is the single script's "never
// both": between the copy and the delete, a reader of the old ID still
// sees the session (the new ID is unknown to everyone but the caller until
// Rename returns). If Redis fails between the steps, Rename returns the
// error and removes the copy; the session then stays under the old ID, or,
// if the connection broke after the delete had applied, is lost, but never
// lives on under two IDs. The same Rename serves a Config.Client that is a
// *redis.Ring or any client other than a *redis.Client.
//
// # Retries
//
// go-redis resends a command whose connection broke (Config.MaxRetries).
// Each Update and Rename carries a random token that it stores in the
// marker, so a resent write that had already applied is recognized and
// reported as the success it was, rather than as ErrExists or
// ErrNotFound, and is not applied twice.
//
// # Context
//
// Every call passes its context to go-redis. A context that is already
// done fails the call before anything is sent. By default a context's
// deadline also bounds the socket reads and writes
// (ContextTimeoutEnabled); a cancellation without a deadline cannot
// interrupt a command already on the wire, which then ends within
// ReadTimeout.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionkit/sessionkit"
)

// Name is the name the provider registers under.
const Name = "redis"

// Defaults that New applies to zero Config fields.
const (
	// DefaultAddr is the server address when Addrs is empty.
	DefaultAddr = "127.0.0.1:6379"
	// DefaultPrefix starts every session key when Prefix is empty.
	DefaultPrefix = "sessionkit:"
	// DefaultDialTimeout bounds establishing a connection.
	DefaultDialTimeout = 5 * time.Second
	// DefaultReadTimeout bounds waiting for a reply; writes default to it
	// too.
	DefaultReadTimeout = 3 * time.Second
	// DefaultConnMaxIdleTime is how long an idle connection is kept.
	DefaultConnMaxIdleTime = 30 * time.Minute
	// DefaultMaxRetries is how many times a failed command is resent.
	DefaultMaxRetries = 3
	// DefaultMinRetryBackoff and DefaultMaxRetryBackoff bound the
	// exponential wait between retries.
	DefaultMinRetryBackoff = 8 * time.Millisecond
	DefaultMaxRetryBackoff = 512 * time.Millisecond
	// DefaultScanCount is the COUNT hint of Count's and Range's SCANs.
	DefaultScanCount = 1000
)

// cleanupLimit bounds removing a failed Cluster Rename's copy, which runs
// even after the caller's context is done.
const cleanupLimit = 5 * time.Second

// Config configures the redis provider. The zero value connects to a
// single server at 127.0.0.1:6379 with the defaults below.
//
// Durations and counts are 0 for the default. Where a field says so, a
// negative value switches the feature off.
type Config struct {
	// Client, if set, is used instead of a client built from the fields
	// below, which must then all be zero (Prefix and ScanCount still
	// apply). Any go-redis client works: *redis.Client
	// (also from redis.ParseURL or redis.NewFailoverClient),
	// *redis.ClusterClient or *redis.Ring. The provider does not own it:
	// Close leaves it open, and the caller closes it after the provider.
	Client goredis.UniversalClient

	// Addrs is the server address (host:port, or an absolute path for a
	// unix socket), the sentinels' addresses when MasterName is set, or
	// the seed nodes of a Cluster when there are two or more. Default
	// 127.0.0.1:6379.
	Addrs []string
	// MasterName is the name of the master the sentinels in Addrs
	// monitor. Setting it selects Sentinel mode.
	MasterName string
	// ClusterMode selects Cluster mode with a single seed address, for
	// example a managed cluster's configuration endpoint. Two or more
	// Addrs select it by themselves.
	ClusterMode bool

	// Username and Password authenticate to Redis: an ACL user, or only a
	// Password for requirepass.
	Username string
	Password string
	// SentinelUsername and SentinelPassword authenticate to the
	// sentinels, when they need other credentials than the master.
	SentinelUsername string
	SentinelPassword string
	// DB is the database number. Default 0; a Cluster has only 0.
	DB int
	// TLSConfig enables TLS with this configuration. Set its ServerName
	// when the address is not the certificate's name.
	TLSConfig *tls.Config
	// Protocol is the RESP version, 2 or 3. Default 3; use 2 for proxies
	// that do not speak RESP3.
	Protocol int
	// ClientName is sent with CLIENT SETNAME on each connection, so the
	// sessions' connections can be told apart in CLIENT LIST.
	ClientName string

	// DialTimeout bounds establishing a connection. Default 5s.
	DialTimeout time.Duration
	// DialerRetries is how many times go-redis tries to establish one
	// connection before it reports the dial error; DialerRetryTimeout is
	// the wait between tries. Defaults go-redis's: 5 tries, 100ms. With
	// the server down, a call fails after about
	// (MaxRetries+1) * DialerRetries tries, so lower these when a request
	// should fail fast rather than ride out a failover.
	DialerRetries      int
	DialerRetryTimeout time.Duration
	// ReadTimeout bounds waiting for a reply. Default 3s; negative means
	// no limit but the context's deadline.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending a command. Default ReadTimeout;
	// negative means no limit but the context's deadline.
	WriteTimeout time.Duration
	// IgnoreContextDeadline makes go-redis use only ReadTimeout and
	// WriteTimeout for socket deadlines, not the context's deadline. It
	// avoids closing a connection when a request's deadline expires
	// mid-command, at the price of calls outliving their context.
	IgnoreContextDeadline bool

	// PoolSize is the maximum number of connections per node. Default
	// go-redis's: 10 per GOMAXPROCS.
	PoolSize int
	// MinIdleConns is the number of idle connections kept open, so a
	// burst after a quiet period does not wait for dials. Default 0.
	MinIdleConns int
	// MaxIdleConns caps idle connections. Default 0: no cap.
	MaxIdleConns int
	// MaxActiveConns caps all connections per node, idle or in use.
	// Default 0: no cap beyond PoolSize.
	MaxActiveConns int
	// PoolTimeout bounds waiting for a free connection when all PoolSize
	// are busy. Default ReadTimeout + 1s.
	PoolTimeout time.Duration
	// ConnMaxIdleTime closes connections idle for this long. Default
	// 30m; negative keeps them.
	ConnMaxIdleTime time.Duration
	// ConnMaxLifetime closes connections this old. Default 0: never.
	ConnMaxLifetime time.Duration
	// MaxRetries is how many times go-redis resends a command after a
	// network error or a retryable server reply (LOADING, TRYAGAIN, a
	// failover). Default 3; negative disables retries. See the package
	// documentation on why retried writes are safe.
	MaxRetries int
	// MinRetryBackoff and MaxRetryBackoff bound the wait between retries.
	// Defaults 8ms and 512ms; negative means no wait.
	MinRetryBackoff time.Duration
	MaxRetryBackoff time.Duration

	// Prefix starts every session key, namespacing the provider's keys
	// on a shared server. Default "sessionkit:". Count and Range scan for
	// it, so no other data should use keys that start with it.
	Prefix string
	// ScanCount is the COUNT hint of the SCAN commands behind Count and
	// Range: keys Redis examines per call. Default 1000.
	ScanCount int
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

// driver opens providers for SetProvider.
var driver = sessionkit.DriverFor(New)

func init() { sessionkit.Register(Name, driver) }

// invalid reports a configuration error.
func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: redis: %s", sessionkit.ErrInvalidConfig, fmt.Sprintf(format, a...))
}

// connFieldSet names the first connection field of c that is set, for
// refusing a Config that has both Client and settings it would ignore.
func (c *Config) connFieldSet() string {
	switch {
	case len(c.Addrs) > 0:
		return "Addrs"
	case c.MasterName != "":
		return "MasterName"
	case c.ClusterMode:
		return "ClusterMode"
	case c.Username != "" || c.Password != "":
		return "Username/Password"
	case c.SentinelUsername != "" || c.SentinelPassword != "":
		return "SentinelUsername/SentinelPassword"
	case c.DB != 0:
		return "DB"
	case c.TLSConfig != nil:
		return "TLSConfig"
	case c.Protocol != 0:
		return "Protocol"
	case c.ClientName != "":
		return "ClientName"
	case c.DialTimeout != 0 || c.DialerRetries != 0 || c.DialerRetryTimeout != 0 ||
		c.ReadTimeout != 0 || c.WriteTimeout != 0 || c.IgnoreContextDeadline:
		return "timeouts"
	case c.PoolSize != 0 || c.MinIdleConns != 0 || c.MaxIdleConns != 0 || c.MaxActiveConns != 0 ||
		c.PoolTimeout != 0 || c.ConnMaxIdleTime != 0 || c.ConnMaxLifetime != 0:
		return "pool settings"
	case c.MaxRetries != 0 || c.MinRetryBackoff != 0 || c.MaxRetryBackoff != 0:
		return "retry settings"
	}
	return ""
}

// validate checks c and fills in the provider's own defaults. The
// connection defaults are applied by universalOptions.
func (c *Config) validate() error {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.ScanCount == 0 {
		c.ScanCount = DefaultScanCount
	}
	if c.ScanCount < 0 {
		return invalid("ScanCount %d is negative: use 0 for the default", c.ScanCount)
	}
	if c.Client != nil {
		if f := c.connFieldSet(); f != "" {
			return invalid("Client is set, so %s must be left zero (configure the client instead)", f)
		}
		return nil
	}
	for i, a := range c.Addrs {
		if strings.TrimSpace(a) == "" {
			return invalid("Addrs[%d] is empty", i)
		}
	}
	sentinel := c.MasterName != ""
	cluster := !sentinel && (c.ClusterMode || len(c.Addrs) > 1)
	switch {
	case sentinel && len(c.Addrs) == 0:
		return invalid("MasterName is set but Addrs lists no sentinel")
	case sentinel && c.ClusterMode:
		return invalid("MasterName (Sentinel) and ClusterMode exclude each other")
	case cluster && c.DB != 0:
		return invalid("DB %d in Cluster mode: a cluster has only database 0", c.DB)
	case c.DB < 0:
		return invalid("DB %d is negative", c.DB)
	case c.Protocol != 0 && c.Protocol != 2 && c.Protocol != 3:
		return invalid("Protocol %d: must be 2 or 3 (0 for the default)", c.Protocol)
	case c.DialTimeout < 0:
		return invalid("DialTimeout %v is negative", c.DialTimeout)
	case c.DialerRetries < 0 || c.DialerRetryTimeout < 0:
		return invalid("DialerRetries and DialerRetryTimeout must not be negative")
	case c.PoolTimeout < 0:
		return invalid("PoolTimeout %v is negative", c.PoolTimeout)
	case c.ConnMaxLifetime < 0:
		return invalid("ConnMaxLifetime %v is negative: use 0 for no limit", c.ConnMaxLifetime)
	case c.PoolSize < 0 || c.MinIdleConns < 0 || c.MaxIdleConns < 0 || c.MaxActiveConns < 0:
		return invalid("PoolSize, MinIdleConns, MaxIdleConns and MaxActiveConns must not be negative")
	}
	return nil
}

// orOff maps the Config convention (0 default, negative off) to
// go-redis's (0 default, -1 off).
func orOff[T int | time.Duration](v, def T) T {
	switch {
	case v < 0:
		return -1
	case v == 0:
		return def
	}
	return v
}

// universalOptions translates a validated Config without Client. It sets
// the timeouts and retries explicitly so that the defaults documented on
// Config hold whatever go-redis's own defaults are.
func (c *Config) universalOptions() *goredis.UniversalOptions {
	addrs := c.Addrs
	if len(addrs) == 0 {
		addrs = []string{DefaultAddr}
	}
	read := orOff(c.ReadTimeout, DefaultReadTimeout)
	poolTimeout := c.PoolTimeout
	if poolTimeout == 0 && read > 0 {
		poolTimeout = read + time.Second
	}
	return &goredis.UniversalOptions{
		Addrs:                 addrs,
		MasterName:            c.MasterName,
		IsClusterMode:         c.ClusterMode,
		ClientName:            c.ClientName,
		DB:                    c.DB,
		Protocol:              c.Protocol,
		Username:              c.Username,
		Password:              c.Password,
		SentinelUsername:      c.SentinelUsername,
		SentinelPassword:      c.SentinelPassword,
		TLSConfig:             c.TLSConfig,
		DialTimeout:           orOff(c.DialTimeout, DefaultDialTimeout),
		DialerRetries:         c.DialerRetries,
		DialerRetryTimeout:    c.DialerRetryTimeout,
		ReadTimeout:           read,
		WriteTimeout:          orOff(c.WriteTimeout, read),
		ContextTimeoutEnabled: !c.IgnoreContextDeadline,
		PoolSize:              c.PoolSize,
		MinIdleConns:          c.MinIdleConns,
		MaxIdleConns:          c.MaxIdleConns,
		MaxActiveConns:        c.MaxActiveConns,
		PoolTimeout:           poolTimeout,
		ConnMaxIdleTime:       orOff(c.ConnMaxIdleTime, DefaultConnMaxIdleTime),
		ConnMaxLifetime:       c.ConnMaxLifetime,
		MaxRetries:            orOff(c.MaxRetries, DefaultMaxRetries),
		MinRetryBackoff:       orOff(c.MinRetryBackoff, DefaultMinRetryBackoff),
		MaxRetryBackoff:       orOff(c.MaxRetryBackoff, DefaultMaxRetryBackoff),
	}
}

// describe names the servers of a validated Config for error messages.
func (c *Config) describe() string {
	switch {
	case c.Client != nil:
		switch cl := c.Client.(type) {
		case *goredis.Client:
			return "redis at " + cl.Options().Addr
		case *goredis.ClusterClient:
			return "Redis Cluster at " + strings.Join(cl.Options().Addrs, ",")
		}
		return "the Redis server of Config.Client"
	case c.MasterName != "":
		return fmt.Sprintf("Redis master %q via the sentinels at %s", c.MasterName, strings.Join(c.Addrs, ","))
	case len(c.Addrs) > 1 || c.ClusterMode:
		return "Redis Cluster at " + strings.Join(c.Addrs, ",")
	case len(c.Addrs) == 1:
		return "redis at " + c.Addrs[0]
	}
	return "redis at " + DefaultAddr
}

// Provider is the redis provider. Create it with New or through
// sessionkit's SetProvider. It is safe for concurrent use.
type Provider struct {
	client goredis.UniversalClient
	owned  bool // Close closes client only if New built it
	prefix string
	match  string // SCAN pattern for prefix
	// atomicRename is true when both IDs of a Rename are on one server,
	// so one script can move the session.
	atomicRename bool
	scanCount    int64
	closed       atomic.Bool
	// afterCopy, if set, runs between a Cluster Rename's copy and its
	// take, so tests can write to the old session at the worst moment.
	afterCopy func()
}

// Errors for the expected outcomes, built once so the common miss costs
// no allocation.
var (
	errNotFound = fmt.Errorf("redis: %w", sessionkit.ErrNotFound)
	errExists   = fmt.Errorf("redis: %w", sessionkit.ErrExists)
	errClosed   = fmt.Errorf("redis: %w", sessionkit.ErrClosed)
)

// New connects to Redis as cfg says and returns a ready provider. It
// sends a PING, loads the provider's Lua scripts and checks that the
// server has PEXPIRETIME (Redis 7), all under ctx, bounded by
// DialTimeout + ReadTimeout + 1s (10s for a Config.Client) when ctx has
// no deadline, so an unreachable server or a bad password fails here,
// with an error naming the address, rather than on the first request.
// Configuration errors wrap sessionkit.ErrInvalidConfig.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Provider{
		client:    cfg.Client,
		prefix:    cfg.Prefix,
		match:     globEscape(cfg.Prefix) + "*",
		scanCount: int64(cfg.ScanCount),
	}
	limit := 10 * time.Second
	if p.client == nil {
		opts := cfg.universalOptions()
		p.client = goredis.NewUniversalClient(opts)
		p.owned = true
		limit = max(opts.DialTimeout, 0) + max(opts.ReadTimeout, 0) + time.Second
	}
	_, p.atomicRename = p.client.(*goredis.Client)
	if err := p.open(ctx, limit); err != nil {
		if p.owned {
			_ = p.client.Close()
		}
		return nil, fmt.Errorf("redis: cannot use %s: %w", cfg.describe(), err)
	}
	return p, nil
}

// open checks the server: reachable, authenticated, recent enough.
func (p *Provider) open(ctx context.Context, limit time.Duration) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if err := p.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("PING: %w", err)
	}
	// Loading now saves each script's first call the NOSCRIPT round trip;
	// a Cluster client loads on every master.
	for _, s := range allScripts {
		if err := s.Load(ctx, p.client).Err(); err != nil {
			return fmt.Errorf("SCRIPT LOAD: %w", err)
		}
	}
	// The read script runs PEXPIRETIME first, so a missing key tells
	// whether the server has it.
	err := getScript.Run(ctx, p.client, []string{p.prefix + "\x00probe"}).Err()
	switch {
	case err == nil || errors.Is(err, goredis.Nil):
		return nil
	case strings.Contains(strings.ToLower(err.Error()), "unknown"):
		return fmt.Errorf("the server lacks PEXPIRETIME; Redis 7.0 or later is required: %w", err)
	}
	return err
}

// globEscape quotes SCAN MATCH's special characters in a prefix.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (p *Provider) key(id string) string { return p.prefix + id }

func (p *Provider) check(ctx context.Context, op string) error {
	if p.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	return nil
}

// fail wraps an error from go-redis. WRONGTYPE means the key is not one
// of the provider's hashes; a client closed under a running call is
// reported as ErrClosed; and an error caused by the context's deadline
// (a socket timeout, to go-redis) also wraps ctx.Err(), so callers can
// test for it.
func (p *Provider) fail(ctx context.Context, op string, err error) error {
	switch {
	case goredis.HasErrorPrefix(err, "WRONGTYPE"):
		return fmt.Errorf("redis: %s: %w: %v", op, sessionkit.ErrCorruptValue, err)
	case errors.Is(err, goredis.ErrClosed):
		return fmt.Errorf("redis: %s: %w: %v", op, sessionkit.ErrClosed, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redis: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// result maps a script's status code to the provider's errors.
func result(op string, code int64) error {
	switch code {
	case codeOK:
		return nil
	case codeExists:
		return errExists
	case codeNotFound:
		return errNotFound
	case codeCorrupt:
		return fmt.Errorf("redis: %s: %w: the key holds a hash this provider did not write", op, sessionkit.ErrCorruptValue)
	}
	return fmt.Errorf("redis: %s: unexpected script result %d", op, code)
}

// unixMilli is a deadline as a script argument: Unix milliseconds, at
// least 1 so that a deadline in the distant past is not read as 0, "keep".
func unixMilli(t time.Time) int64 { return max(t.UnixMilli(), 1) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// token returns a fresh write token. It only needs to differ from the
// tokens of other writes to the same session, not to be unpredictable.
func token() uint64 { return rand.Uint64() }

// getRaw runs the read script: HGETALL's field/value list followed by the
// deadline, or ErrNotFound.
func (p *Provider) getRaw(ctx context.Context, key string) ([]any, error) {
	reply, err := getScript.Run(ctx, p.client, []string{key}).Slice()
	if errors.Is(err, goredis.Nil) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, p.fail(ctx, "get", err)
	}
	return reply, nil
}

// decode turns a read script's reply (getScript, takeScript) into a
// Record, returning the marker's token too. The deadline is the key's
// expiry that ends the reply.
func decode(reply []any) (sessionkit.Record, string, error) {
	n := len(reply) - 1
	if n < 0 || n%2 != 0 {
		return sessionkit.Record{}, "", fmt.Errorf("redis: get: %w: malformed reply of %d items", sessionkit.ErrCorruptValue, len(reply))
	}
	for _, v := range reply[:n] {
		if _, ok := v.(string); !ok {
			return sessionkit.Record{}, "", fmt.Errorf("redis: get: %w: non-string field", sessionkit.ErrCorruptValue)
		}
	}
	ms, ok := reply[n].(int64)
	if !ok || ms < 0 {
		return sessionkit.Record{}, "", errNoExpiry
	}
	h, err := decodeFields(func(yield func(f, v string) bool) {
		for i := 0; i < n; i += 2 {
			if !yield(reply[i].(string), reply[i+1].(string)) {
				return
			}
		}
	})
	if err != nil {
		return sessionkit.Record{}, "", err
	}
	h.rec.Expires = time.UnixMilli(ms)
	return h.rec, h.tok, nil
}

// errNoExpiry reports a session key without an expiry (PEXPIRETIME -1):
// this provider never writes one, and such a session would never end.
var errNoExpiry = fmt.Errorf("redis: get: %w: the session key has no expiry", sessionkit.ErrCorruptValue)

// hash is a session hash as read.
type hash struct {
	rec         sessionkit.Record // Expires set only if hasDeadline
	tok         string            // the marker's write token
	hasDeadline bool              // the hash holds the deadline field
}

// decodeFields builds a session from its hash's fields, which fields
// yields twice: once to check and size them, once to copy the values.
func decodeFields(fields iter.Seq2[string, string]) (hash, error) {
	// The values are packed into one string (sessionkit.Packed): one
	// allocation instead of a map and a copy of every value. The first
	// pass checks the fields and sizes the buffer.
	var h hash
	marked, size, values := false, 0, 0
	for f, v := range fields {
		switch {
		case f == "":
			h.tok, marked = v, true
		case f[0] == '.':
			size += len(f) - 1 + len(v)
			values++
		case f == deadlineField:
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 {
				return hash{}, fmt.Errorf("redis: get: %w: bad deadline field %q", sessionkit.ErrCorruptValue, v)
			}
			h.rec.Expires, h.hasDeadline = time.UnixMilli(ms), true
		default:
			return hash{}, fmt.Errorf("redis: get: %w: field %q was not written by this provider", sessionkit.ErrCorruptValue, f)
		}
	}
	if !marked {
		return hash{}, fmt.Errorf("redis: get: %w: the hash has no marker field, so this provider did not write it", sessionkit.ErrCorruptValue)
	}
	pb := sessionkit.NewPackedBuilder(values, size)
	for f, v := range fields {
		if f != "" && f[0] == '.' {
			pb.Add(f[1:], v)
		}
	}
	h.rec.Packed = pb.Packed()
	return h, nil
}

// Get implements sessionkit.Provider in one round trip: a plain HGETALL,
// which costs the server less than a script (the deadline is a field; see
// the storage notes in scripts.go). A session written before the deadline
// field existed costs a second round trip, for PEXPIRETIME, until its next
// write. A key that is not one of the provider's hashes gives an error
// wrapping sessionkit.ErrCorruptValue.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	if err := p.check(ctx, "get"); err != nil {
		return sessionkit.Record{}, err
	}
	key := p.key(id)
	m, err := p.client.HGetAll(ctx, key).Result()
	if err != nil {
		return sessionkit.Record{}, p.fail(ctx, "get", err)
	}
	if len(m) == 0 {
		// Redis has no empty hashes: the key is gone (or expired).
		return sessionkit.Record{}, errNotFound
	}
	h, err := decodeFields(func(yield func(f, v string) bool) {
		for f, v := range m {
			if !yield(f, v) {
				return
			}
		}
	})
	if err != nil || h.hasDeadline {
		return h.rec, err
	}
	ms, err := p.client.Do(ctx, "PEXPIRETIME", key).Int64()
	switch {
	case err != nil:
		return sessionkit.Record{}, p.fail(ctx, "get", err)
	case ms == -2:
		return sessionkit.Record{}, errNotFound // deleted in between
	case ms < 0:
		return sessionkit.Record{}, errNoExpiry
	}
	h.rec.Expires = time.UnixMilli(ms)
	return h.rec, nil
}

// Update implements sessionkit.Provider in one round trip.
func (p *Provider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	if err := p.check(ctx, "update"); err != nil {
		return err
	}
	if u.Create && u.Expires.IsZero() {
		return errors.New("redis: update: Create without an Expires deadline")
	}
	var deadline int64
	if !u.Expires.IsZero() {
		deadline = unixMilli(u.Expires)
	}
	del := u.Delete
	if u.Clear {
		del = nil // Clear removes them anyway
	}
	args := make([]any, 0, 5+len(del)+2*len(u.Set))
	args = append(args, flag(u.Create), flag(u.Clear), deadline, token(), len(del))
	for _, k := range del {
		args = append(args, k)
	}
	for k, v := range u.Set {
		args = append(args, k, v)
	}
	code, err := updateScript.Run(ctx, p.client, []string{p.key(id)}, args...).Int64()
	if err != nil {
		return p.fail(ctx, "update", err)
	}
	return result("update", code)
}

// Touch implements sessionkit.Toucher in one round trip.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := p.check(ctx, "touch"); err != nil {
		return err
	}
	if expires.IsZero() {
		return errors.New("redis: touch: zero deadline")
	}
	code, err := touchScript.Run(ctx, p.client, []string{p.key(id)}, unixMilli(expires)).Int64()
	if err != nil {
		return p.fail(ctx, "touch", err)
	}
	return result("touch", code)
}

// Delete implements sessionkit.Provider in one round trip.
func (p *Provider) Delete(ctx context.Context, id string) error {
	if err := p.check(ctx, "delete"); err != nil {
		return err
	}
	if err := p.client.Del(ctx, p.key(id)).Err(); err != nil {
		return p.fail(ctx, "delete", err)
	}
	return nil
}

// Rename implements sessionkit.Provider: one atomic script on a single
// server or Sentinel master, the multi-step copy described in the package
// documentation in a Cluster.
func (p *Provider) Rename(ctx context.Context, oldID, newID string, expires time.Time) error {
	if err := p.check(ctx, "rename"); err != nil {
		return err
	}
	if expires.IsZero() {
		return errors.New("redis: rename: zero deadline")
	}
	if oldID == newID {
		return fmt.Errorf("redis: rename to the same ID: %w", sessionkit.ErrExists)
	}
	if !p.atomicRename {
		return p.renameSharded(ctx, p.key(oldID), p.key(newID), unixMilli(expires))
	}
	code, err := renameScript.Run(ctx, p.client, []string{p.key(oldID), p.key(newID)}, unixMilli(expires), token()).Int64()
	if goredis.HasErrorPrefix(err, "CROSSSLOT") {
		// A *redis.Client talking to a cluster proxy or to one node of a
		// cluster: the keys are on different slots after all.
		return p.renameSharded(ctx, p.key(oldID), p.key(newID), unixMilli(expires))
	}
	if err != nil {
		return p.fail(ctx, "rename", err)
	}
	return result("rename", code)
}

// renameSharded renames across nodes in three round trips: read the old
// session, copy it to the new key, then take the old key (delete it, and
// get its fields back if an Update changed them since the read). A fourth
// brings the copy up to date in that case.
func (p *Provider) renameSharded(ctx context.Context, oldKey, newKey string, deadline int64) error {
	reply, err := p.getRaw(ctx, oldKey)
	if err != nil {
		return err
	}
	_, oldTok, err := decode(reply)
	if err != nil {
		return err
	}
	tok := token()
	code, err := putScript.Run(ctx, p.client, []string{newKey}, putArgs(deadline, tok, "c", reply)...).Int64()
	if err != nil {
		p.undoCopy(ctx, newKey, tok)
		return p.fail(ctx, "rename", err)
	}
	if code != codeOK {
		return result("rename", code)
	}
	if p.afterCopy != nil {
		p.afterCopy()
	}
	taken, err := takeScript.Run(ctx, p.client, []string{oldKey}, oldTok).Result()
	if err != nil {
		// The take may have applied, and deleted the old key, before the
		// connection failed: the session may then be lost, but keeping
		// the copy could duplicate it under an ID the caller never got.
		p.undoCopy(ctx, newKey, tok)
		return p.fail(ctx, "rename", err)
	}
	switch v := taken.(type) {
	case int64:
		if v != codeOK {
			// Deleted or expired mid-move: keeping the copy would bring
			// it back.
			p.undoCopy(ctx, newKey, tok)
			return result("rename", v)
		}
		return nil
	case []any:
		if _, _, err := decode(v); err != nil {
			p.undoCopy(ctx, newKey, tok)
			return err
		}
		code, err := putScript.Run(ctx, p.client, []string{newKey}, putArgs(deadline, tok, "r", v)...).Int64()
		if err == nil && code != codeOK {
			err = errors.New("the copy was changed by another client")
		}
		if err != nil {
			p.undoCopy(ctx, newKey, tok)
			return p.fail(ctx, "rename", err)
		}
		return nil
	}
	p.undoCopy(ctx, newKey, tok)
	return fmt.Errorf("redis: rename: unexpected reply %T", taken)
}

// putArgs builds putScript's arguments from a getScript reply whose
// fields decode has checked: the fields pass through unchanged, except the
// marker and the deadline, which the script writes itself.
func putArgs(deadline int64, tok uint64, mode string, reply []any) []any {
	args := make([]any, 0, len(reply)+2)
	args = append(args, deadline, tok, mode)
	for i := 0; i+1 < len(reply); i += 2 {
		if f := reply[i]; f != "" && f != deadlineField {
			args = append(args, f, reply[i+1])
		}
	}
	return args
}

// undoCopy removes a rename's copy if it is still unchanged. It runs even
// when ctx is done, since leaving the copy would leave the session under
// two IDs, but within a bound of its own.
func (p *Provider) undoCopy(ctx context.Context, newKey string, tok uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupLimit)
	defer cancel()
	_ = dropScript.Run(ctx, p.client, []string{newKey}, tok).Err()
}

// shards returns the clients to scan: every master of a Cluster, every
// shard of a Ring, or the client itself.
func (p *Provider) shards(ctx context.Context) ([]scanner, error) {
	var (
		mu  sync.Mutex
		out []scanner
	)
	collect := func(_ context.Context, c *goredis.Client) error {
		mu.Lock()
		out = append(out, c)
		mu.Unlock()
		return nil
	}
	var err error
	switch c := p.client.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, collect)
	case *goredis.Ring:
		err = c.ForEachShard(ctx, collect)
	default:
		out = append(out, p.client)
	}
	return out, err
}

// scanner is the part of a go-redis client that SCAN needs.
type scanner interface {
	ScanType(ctx context.Context, cursor uint64, match string, count int64, keyType string) *goredis.ScanCmd
}

// scan calls fn with the IDs of the session keys on one shard. SCAN skips
// expired keys; like any SCAN it may return a key twice if the keyspace is
// resized meanwhile.
func (p *Provider) scan(ctx context.Context, s scanner, fn func(id string) bool) error {
	var cursor uint64
	for {
		keys, next, err := s.ScanType(ctx, cursor, p.match, p.scanCount, "hash").Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			// The pattern also matches longer prefixes that start with
			// this one; their remainders are not valid IDs.
			if id := strings.TrimPrefix(k, p.prefix); sessionkit.ValidID(id) && !fn(id) {
				return nil
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// Count implements sessionkit.Counter. It SCANs every master (in
// parallel in a Cluster), so it costs time in proportion to the number of
// keys in the database, not just sessions, and never blocks Redis for
// long. Counting keys while they are created or expire, or while Redis
// resizes its table, can be off by those keys.
func (p *Provider) Count(ctx context.Context) (int, error) {
	if err := p.check(ctx, "count"); err != nil {
		return 0, err
	}
	shards, err := p.shards(ctx)
	if err != nil {
		return 0, p.fail(ctx, "count", err)
	}
	var (
		total atomic.Int64
		wg    sync.WaitGroup
		errs  = make([]error, len(shards))
	)
	for i, s := range shards {
		wg.Go(func() {
			errs[i] = p.scan(ctx, s, func(string) bool { total.Add(1); return true })
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, p.fail(ctx, "count", err)
	}
	return int(total.Load()), nil
}

// Range implements sessionkit.Ranger: SCAN over every master, one after
// the other, and a Get for each session found, so fn is never
// called concurrently. Sessions that expire or become unreadable before
// their read are skipped; like SCAN, Range may rarely visit a session
// twice.
func (p *Provider) Range(ctx context.Context, fn func(id string, r sessionkit.Record) bool) error {
	if err := p.check(ctx, "range"); err != nil {
		return err
	}
	shards, err := p.shards(ctx)
	if err != nil {
		return p.fail(ctx, "range", err)
	}
	var stop bool
	var getErr error
	for _, s := range shards {
		err := p.scan(ctx, s, func(id string) bool {
			r, err := p.Get(ctx, id)
			switch {
			case errors.Is(err, sessionkit.ErrNotFound), errors.Is(err, sessionkit.ErrCorruptValue):
				return true
			case err != nil:
				getErr = err
				return false
			}
			stop = !fn(id, r)
			return !stop
		})
		switch {
		case getErr != nil:
			return getErr
		case err != nil:
			return p.fail(ctx, "range", err)
		case stop:
			return nil
		}
	}
	return nil
}

// Close implements sessionkit.Provider. It closes the client if New built
// it; a Config.Client stays open, for its owner to close. Later calls fail
// with an error wrapping sessionkit.ErrClosed.
func (p *Provider) Close() error {
	if p.closed.Swap(true) || !p.owned {
		return nil
	}
	return p.client.Close()
}

var (
	_ sessionkit.Provider = (*Provider)(nil)
	_ sessionkit.Toucher  = (*Provider)(nil)
	_ sessionkit.Counter  = (*Provider)(nil)
	_ sessionkit.Ranger   = (*Provider)(nil)
)
