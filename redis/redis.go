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
// Each session is one string under Prefix+ID: a header holding the
// deadline and a write token, then the session's values packed as
// sessionkit.Packed. Redis expires the key itself (SET ... PXAT), so the
// provider has no GC. Any key, the empty string included, can be stored.
//
// Every Get, Update, Touch and Delete is one round trip. Get is a plain
// GET, the cheapest read Redis answers, and the values are read in place
// in its reply. Creating a session is a plain SET NX. The other writes are
// Lua scripts run with EVALSHA (after Open loads them; a server that
// forgot them, for example after a restart, costs one extra EVAL): an
// Update checks that the session exists and merges Clear, Delete and Set
// into the stored values atomically, so two concurrent requests that set
// different keys both keep their writes. Get reports the session's write
// token as the Record's Rev; when the stored token is still the one of
// the session an Update was made against (Update.Base), the script stores
// the values Go merged from it, without parsing the stored ones.
//
// Sessions stored by earlier versions of this provider, as one hash each,
// are still read (with a second command) and are converted to the string
// layout by their next write; scripts.go describes both layouts. Upgrade
// every instance sharing the server at once: an earlier version cannot
// read a session once it has been converted.
//
// # Local cache
//
// With Config.LocalCache, each process also keeps the sessions it read or
// wrote in its own memory. A request whose session is cached then reads
// it with no round trip: a read-only request costs none, a request that
// writes costs one (the write), and a new session one (the SET NX). The
// cost is Redis's pub/sub traffic: every write and delete of a session is
// announced, by the same script and in the same atomic step, on the
// channel Prefix+"invalidate" (the new write token, 16 characters, or
// "----------------" for a deletion, then the key), and every process
// receives every announcement. In a Cluster a PUBLISH reaches every node.
//
// What holds:
//
//   - No write is ever lost, and concurrent writes merge as without the
//     cache: every write goes to Redis, and one made against a copy that
//     turns out to be stale merges in Lua as usual.
//   - A process reads its own writes: a write ends by caching what Redis
//     now holds, or by dropping the copy when it cannot know.
//   - A process reads another's write once Redis's announcement of it has
//     reached it (well under a millisecond on a LAN: on a single server
//     the write's reply and its announcement leave Redis in the same
//     event-loop turn; in a Cluster the announcement takes one more hop,
//     over the cluster bus, when the process subscribed through another
//     node). Until then it may read the session as it was.
//   - Announcements are lost while a subscription is down. The cache is
//     emptied and bypassed from the moment the subscriber sees its
//     connection fail until it has subscribed again; a connection that
//     stays silent for three seconds despite a PING counts as failed.
//   - A change made without the provider (a key deleted or rewritten by
//     hand, or by a process without LocalCache) is not announced, and is
//     seen when the copy reaches LocalCacheMaxAge, one minute by default.
//     To have it seen at once, announce it in the format above.
//     This includes the writes of processes not yet restarted while
//     LocalCache is being turned on across a fleet: keep LocalCacheMaxAge
//     short until every process has it.
//
// A copy is also read from Redis again once its session's deadline has
// passed, since a Touch announced elsewhere may have moved it. The cache
// holds at most LocalCacheSize sessions (100,000 by default) and evicts an
// arbitrary one when full. Provider.CacheStats counts its hits, misses,
// evictions, invalidations and outages, for monitoring.
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
// Each write carries a random token that it stores in the session's
// header, so a resent write that had already applied is recognized and
// reported as the success it was, rather than as ErrExists or
// ErrNotFound, and is not applied twice. (A Create whose SET NX finds the
// key taken reads it once more to tell its own resent write from another
// session.)
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
	"math/rand/v2"
	"reflect"
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
	// DefaultLocalCacheSize is how many sessions LocalCache keeps at
	// most when LocalCacheSize is 0.
	DefaultLocalCacheSize = 100_000
	// DefaultLocalCacheMaxAge is how long LocalCache uses a copy at most
	// when LocalCacheMaxAge is 0.
	DefaultLocalCacheMaxAge = time.Minute
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

	// LocalCache keeps the sessions this process read or wrote in its own
	// memory, so that a request whose session is cached reads it with no
	// round trip: a read-only request then costs none, and a request that
	// writes costs one (the write). Off by default. See "Local cache" in
	// the package documentation for what it guarantees; in short, a
	// process may read a session changed by another process for as long
	// as Redis's announcement of the change takes to reach it (well
	// under a millisecond on a LAN), never for longer, and no write is
	// ever lost.
	//
	// Every process that writes the sessions under Prefix must set it,
	// since only processes that set it announce their writes. It needs
	// PUBLISH and SUBSCRIBE on the server (an ACL user needs the channel
	// Prefix+"invalidate"), holds one connection of its own for the
	// subscription, beside the pool, and is refused for a *redis.Ring
	// Config.Client, whose shards do not share messages.
	LocalCache bool
	// LocalCacheSize caps the number of sessions LocalCache keeps.
	// Default 100,000. The cache is split into up to 64 parts, each with
	// its share of the cap and its own lock, so caching a session evicts
	// another one of its part once that part is full, which can happen
	// before the cache as a whole is.
	LocalCacheSize int
	// LocalCacheMaxAge bounds how long LocalCache uses a copy before it
	// reads the session from Redis again. Default 1m. It is what bounds
	// how long a change made without the provider (a key deleted by hand)
	// goes unseen.
	LocalCacheMaxAge time.Duration
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
	if c.LocalCacheSize < 0 || c.LocalCacheMaxAge < 0 {
		return invalid("LocalCacheSize and LocalCacheMaxAge must not be negative: use 0 for the default")
	}
	if (c.LocalCacheSize != 0 || c.LocalCacheMaxAge != 0) && !c.LocalCache {
		return invalid("LocalCacheSize or LocalCacheMaxAge is set but LocalCache is off")
	}
	if c.LocalCacheSize == 0 {
		c.LocalCacheSize = DefaultLocalCacheSize
	}
	if c.LocalCacheMaxAge == 0 {
		c.LocalCacheMaxAge = DefaultLocalCacheMaxAge
	}
	if v := reflect.ValueOf(c.Client); v.Kind() == reflect.Pointer && v.IsNil() {
		// An unset variable of a client type: go-redis would panic on
		// its first command.
		return invalid("Client is a nil %T: set it to a client made by go-redis (redis.NewClient, NewClusterClient, ...), or leave Client unset for New to build one from the other fields", c.Client)
	}
	if _, ring := c.Client.(*goredis.Ring); ring && c.LocalCache {
		return invalid("LocalCache needs one pub/sub for all sessions, which a *redis.Ring's shards do not share")
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
	scripts      *scripts
	// cache and sub are set with Config.LocalCache.
	cache  *localCache
	sub    *subscriber
	closed atomic.Bool
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
		scripts:   plainScripts,
	}
	if cfg.LocalCache {
		p.scripts = newScripts(channelFor(cfg.Prefix))
		p.cache = newLocalCache(cfg.LocalCacheSize, cfg.LocalCacheMaxAge)
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

// open checks the server: reachable, authenticated, recent enough; with
// the local cache, it also subscribes to the announcements of writes.
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
	for _, s := range p.scripts.all() {
		if err := s.Load(ctx, p.client).Err(); err != nil {
			return fmt.Errorf("SCRIPT LOAD: %w", err)
		}
	}
	// Legacy hash sessions without a deadline field read their deadline
	// with PEXPIRETIME (Redis 7); a missing key tells whether the server
	// has it.
	err := p.client.Do(ctx, "PEXPIRETIME", p.prefix+"\x00probe").Err()
	switch {
	case err == nil:
	case strings.Contains(strings.ToLower(err.Error()), "unknown"):
		return fmt.Errorf("the server lacks PEXPIRETIME; Redis 7.0 or later is required: %w", err)
	default:
		return err
	}
	if p.cache == nil {
		return nil
	}
	p.sub = &subscriber{client: p.client, channel: channelFor(p.prefix), prefix: p.prefix, cache: p.cache,
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := p.sub.subscribe(ctx); err != nil {
		p.sub = nil
		return fmt.Errorf("SUBSCRIBE for LocalCache: %w", err)
	}
	return nil
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

// fail wraps an error from go-redis. WRONGTYPE means the key is not a
// session; a client closed under a running call is reported as
// ErrClosed; and an error caused by the context's deadline (a socket
// timeout, to go-redis) also wraps ctx.Err(), so callers can test for it.
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
	case codeOK, codeStoredBase:
		return nil
	case codeExists:
		return errExists
	case codeNotFound:
		return errNotFound
	case codeCorrupt:
		return fmt.Errorf("redis: %s: %w: the key holds a value this provider did not write", op, sessionkit.ErrCorruptValue)
	}
	return fmt.Errorf("redis: %s: unexpected script result %d", op, code)
}

// token returns a fresh write token. It only needs to differ from the
// tokens of other writes to the same session, not to be unpredictable.
func token() uint64 { return rand.Uint64() }

// Get implements sessionkit.Provider in one round trip: a plain GET,
// whose reply the Record's values are read from in place. A session stored
// as a hash by an earlier version costs a second round trip (HGETALL, and
// a third, PEXPIRETIME, if it lacks the deadline field) until its next
// write. A key that is not a session gives an error wrapping
// sessionkit.ErrCorruptValue.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	if err := p.check(ctx, "get"); err != nil {
		return sessionkit.Record{}, err
	}
	c := p.cache
	if c == nil {
		return p.read(ctx, p.key(id))
	}
	if r, ok := c.get(ctx, id); ok {
		return r, nil
	}
	f := c.begin(id)
	r, err := p.read(ctx, p.key(id))
	c.end(ctx, id, f, r, err == nil, false)
	return r, err
}

// read returns the session at key, its write token as Rev.
func (p *Provider) read(ctx context.Context, key string) (sessionkit.Record, error) {
	v, err := p.client.Get(ctx, key).Result()
	switch {
	case err == nil:
		return parseValue(v)
	case errors.Is(err, goredis.Nil):
		return sessionkit.Record{}, errNotFound
	case goredis.HasErrorPrefix(err, "WRONGTYPE"):
		return p.readLegacy(ctx, key)
	}
	return sessionkit.Record{}, p.fail(ctx, "get", err)
}

// readLegacy reads a session stored as a hash by an earlier version.
func (p *Provider) readLegacy(ctx context.Context, key string) (sessionkit.Record, error) {
	m, err := p.client.HGetAll(ctx, key).Result()
	if err != nil {
		return sessionkit.Record{}, p.fail(ctx, "get", err)
	}
	if len(m) == 0 {
		// Redis has no empty hashes: the key is gone (or expired).
		return sessionkit.Record{}, errNotFound
	}
	h, err := decodeLegacy(func(yield func(f, v string) bool) {
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

// errNoExpiry reports a session key without an expiry (PEXPIRETIME -1):
// this provider never writes one, and such a session would never end.
var errNoExpiry = fmt.Errorf("redis: get: %w: the session key has no expiry", sessionkit.ErrCorruptValue)

// Update implements sessionkit.Provider in one round trip: a SET NX for
// Create, otherwise the update script, which merges u into the stored
// values.
func (p *Provider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	if err := p.check(ctx, "update"); err != nil {
		return err
	}
	if u.Create {
		return p.create(ctx, id, u)
	}
	var dl int64 // keep the stored deadline
	if !u.Expires.IsZero() {
		dl = deadline(u.Expires)
	}
	// With a Base, the script writes the session Go merged from it if
	// the stored one is still Base (its token is Base.Rev's), without
	// parsing anything. The Set entries and the keys to drop travel too,
	// so that when another write came in between the same round trip
	// merges instead.
	var base uint64
	var full []byte
	if u.Base.Rev != 0 && !u.Clear {
		base, full = u.Base.Rev, u.AppendPacked(nil, u.Base.Pack())
	}
	tok := token()
	args := make([]any, scriptHead, scriptHead+2+u.SetLen()+len(u.Delete))
	args = append(args, updateArg(&u, dl, tok, base), full)
	if !u.Clear {
		// The stored keys to drop: what Set replaces and what Delete
		// removes (Clear removes everything anyway).
		for k := range u.SetEntries() {
			args = append(args, k)
		}
		for _, k := range u.Delete {
			args = append(args, k)
		}
	}
	f := p.cache.begin(id)
	code, err := p.scripts.update.run(ctx, p.client, p.key(id), args).Int64()
	if p.cache != nil {
		// What Redis holds is known only when the script stored what Go
		// merged; otherwise the copy is dropped.
		var r sessionkit.Record
		if code == codeStoredBase && err == nil {
			r = sessionkit.Record{Packed: sessionkit.Packed(full), Expires: u.Base.Expires, Rev: tok}
			if !u.Expires.IsZero() {
				r.Expires = time.UnixMilli(deadline(u.Expires))
			}
		}
		p.cache.end(ctx, id, f, r, r.Rev != 0, true)
	}
	if err != nil {
		return p.fail(ctx, "update", err)
	}
	return result("update", code)
}

// create writes a new session with SET NX, which needs no script. If the
// key exists, one more read tells why: a retry by go-redis of this very
// SET that had applied (the stored token is this call's, and the create
// succeeded), a live session (ErrExists), or something else
// (ErrCorruptValue).
func (p *Provider) create(ctx context.Context, id string, u sessionkit.Update) error {
	if u.Expires.IsZero() {
		return errors.New("redis: update: Create without an Expires deadline")
	}
	key := p.key(id)
	dl, tok := deadline(u.Expires), token()
	// Clear and Delete mean nothing for a session that does not exist
	// yet: the value is the header and Set.
	val := appendHeader(make([]byte, 0, headerLen+u.PackedSize("")), dl, tok)
	val = u.AppendPacked(val, "")
	f := p.cache.begin(id)
	err := p.client.Do(ctx, "SET", key, val, "NX", "PXAT", expireAt(dl)).Err()
	if p.cache != nil {
		// A key that was taken is left to the session that holds it.
		r := sessionkit.Record{Packed: sessionkit.Packed(val[headerLen:]), Expires: time.UnixMilli(dl), Rev: tok}
		p.cache.end(ctx, id, f, r, err == nil, err == nil)
	}
	if !errors.Is(err, goredis.Nil) {
		if err != nil {
			return p.fail(ctx, "update", err)
		}
		return nil
	}
	stored, err := p.read(ctx, key)
	switch {
	case errors.Is(err, sessionkit.ErrNotFound):
		// Expired or deleted since: whoever held the ID had it first.
		return errExists
	case err != nil:
		return err
	case stored.Rev == tok:
		return nil
	}
	return errExists
}

// ReadsUpdatesByMethod implements sessionkit.MethodReader: Update reads
// the values it stores through the Update's methods only.
func (*Provider) ReadsUpdatesByMethod() {}

// Touch implements sessionkit.Toucher in one round trip.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := p.check(ctx, "touch"); err != nil {
		return err
	}
	if expires.IsZero() {
		return errors.New("redis: touch: zero deadline")
	}
	code, err := p.scripts.touch.Run(ctx, p.client, []string{p.key(id)}, deadlineArg(deadline(expires)), tokenArg(token())).Int64()
	p.cache.forget(id)
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
	var err error
	if p.cache == nil {
		err = p.client.Del(ctx, p.key(id)).Err()
	} else {
		err = p.scripts.del.Run(ctx, p.client, []string{p.key(id)}).Err()
		p.cache.forget(id)
	}
	if err != nil {
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
	dl := deadlineArg(deadline(expires))
	defer p.cache.forget(oldID)
	defer p.cache.forget(newID)
	if !p.atomicRename {
		return p.renameSharded(ctx, p.key(oldID), p.key(newID), dl)
	}
	code, err := p.scripts.rename.Run(ctx, p.client, []string{p.key(oldID), p.key(newID)}, dl, tokenArg(token())).Int64()
	if goredis.HasErrorPrefix(err, "CROSSSLOT") {
		// A *redis.Client talking to a cluster proxy or to one node of a
		// cluster: the keys are on different slots after all.
		return p.renameSharded(ctx, p.key(oldID), p.key(newID), dl)
	}
	if err != nil {
		return p.fail(ctx, "rename", err)
	}
	return result("rename", code)
}

// renameSharded renames across nodes in three round trips: read the old
// session, copy it to the new key, then take the old key (delete it, and
// get its values back if a write changed them since the read). A fourth
// brings the copy up to date in that case. dl is the new deadline as a
// script argument.
func (p *Provider) renameSharded(ctx context.Context, oldKey, newKey, dl string) error {
	r, err := p.read(ctx, oldKey)
	if err != nil {
		return err
	}
	tok := tokenArg(token())
	code, err := p.scripts.put.Run(ctx, p.client, []string{newKey}, dl, tok, "c", string(r.Packed)).Int64()
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
	taken, err := p.scripts.take.Run(ctx, p.client, []string{oldKey}, tokenArg(r.Rev)).Result()
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
	case string:
		fresh, err := parseValue(v)
		if err != nil {
			p.undoCopy(ctx, newKey, tok)
			return err
		}
		code, err := p.scripts.put.Run(ctx, p.client, []string{newKey}, dl, tok, "r", string(fresh.Packed)).Int64()
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

// undoCopy removes a rename's copy if it is still unchanged. It runs even
// when ctx is done, since leaving the copy would leave the session under
// two IDs, but within a bound of its own.
func (p *Provider) undoCopy(ctx context.Context, newKey, tok string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupLimit)
	defer cancel()
	_ = p.scripts.undo.Run(ctx, p.client, []string{newKey}, tok).Err()
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
	Scan(ctx context.Context, cursor uint64, match string, count int64) *goredis.ScanCmd
}

// scan calls fn with the IDs of the session keys on one shard. SCAN skips
// expired keys; like any SCAN it may return a key twice if the keyspace is
// resized meanwhile.
func (p *Provider) scan(ctx context.Context, s scanner, fn func(id string) bool) error {
	var cursor uint64
	for {
		// No TYPE filter: sessions are strings, or hashes until an
		// earlier version's are next written.
		keys, next, err := s.Scan(ctx, cursor, p.match, p.scanCount).Result()
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
// long. It counts every key under Prefix whose remainder is a valid ID,
// whatever it holds (Range skips those that are not sessions). Counting
// keys while they are created or expire, or while Redis resizes its table,
// can be off by those keys.
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
	if p.closed.Swap(true) {
		return nil
	}
	if p.sub != nil {
		p.sub.close()
	}
	if !p.owned {
		return nil
	}
	return p.client.Close()
}

var (
	_ sessionkit.Provider     = (*Provider)(nil)
	_ sessionkit.Toucher      = (*Provider)(nil)
	_ sessionkit.MethodReader = (*Provider)(nil)
	_ sessionkit.Counter      = (*Provider)(nil)
	_ sessionkit.Ranger       = (*Provider)(nil)
)
