// Package postgres is a sessionkit provider that stores sessions in a
// PostgreSQL table, through database/sql and github.com/lib/pq. Import it
// for its side effect of registering the "postgres" provider:
//
//	import _ "github.com/sessionkit/sessionkit/postgres"
//	err := session.SetProvider("postgres", &postgres.Config{
//		DSN: "postgres://app@db.internal/app?sslmode=verify-full",
//	})
//
// # Configuration
//
//	Field            Default               Meaning
//	DSN              -                     lib/pq connection string or URL; the provider opens and owns a pool
//	DB               -                     an existing pool instead of DSN; Close leaves it open
//	Table            "sessionkit_sessions" table name, optionally schema-qualified (schema.table)
//	MaxOpenConns     25                    pool size (DSN only); negative: unlimited
//	MaxIdleConns     MaxOpenConns          idle connections kept (DSN only); negative: none
//	ConnMaxLifetime  5m                    connection reuse limit (DSN only); negative: forever
//	GCBatchSize      1000                  most rows one GC statement deletes
//
// Exactly one of DSN and DB is set. Open pings the server, so an
// unreachable database is reported at start-up, not at the first request.
//
// # Schema
//
// Open creates the table and its index if they are missing:
//
//	CREATE TABLE IF NOT EXISTS sessionkit_sessions (
//		id         TEXT COLLATE "C" PRIMARY KEY,
//		data       BYTEA  NOT NULL, -- sessionkit.EncodeValues of the values
//		expires_at BIGINT NOT NULL  -- deadline, Unix milliseconds
//	);
//	CREATE INDEX IF NOT EXISTS sessionkit_sessions_expires_idx ON sessionkit_sessions (expires_at);
//
// The deadline is an integer rather than a timestamptz so that it compares
// without time-zone conversions and every expiry predicate is a plain
// range on the indexed column. "Now" is the application's clock, the one
// that computed the deadlines. Concurrent Opens of a new table are
// serialised with an advisory lock, so several instances may start at once.
//
// # Statements
//
// Get is one SELECT that checks expiry. Update with Create is one INSERT
// ... ON CONFLICT DO UPDATE that replaces only an expired row. An Update
// made against the session as the request read it (Update.Base, which the
// manager sends with a session's first write) is one UPDATE ... WHERE
// data = the values read; other Updates, and that one when another write
// came in between, lock the row with SELECT ... FOR UPDATE, merge, and
// UPDATE in one transaction. Touch is one guarded UPDATE. GC deletes expired rows in
// batches through the expiry index, skipping rows other transactions hold
// (FOR UPDATE SKIP LOCKED), so several instances can collect at once.
// Statements are prepared once per connection, which rules out PgBouncer
// in transaction-pooling mode before its 1.21 release.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sqlstore"
)

// Name is the name the provider registers under.
const Name = "postgres"

// Config configures the postgres provider. Set exactly one of DSN and DB.
type Config struct {
	// DSN is a lib/pq connection string ("host=... dbname=...") or URL
	// ("postgres://user@host/db?sslmode=disable"). The provider opens its
	// own pool from it and closes that pool on Close.
	DSN string
	// DB is an existing pool to use instead of DSN. The provider does not
	// configure or close it: its owner does.
	DB *sql.DB
	// Table is the session table, created if missing. Default
	// "sessionkit_sessions". Letters, digits and underscores only, with an
	// optional schema qualifier ("sessions.web"); names are not quoted, so
	// PostgreSQL folds them to lower case.
	Table string
	// MaxOpenConns limits the pool opened from DSN. Default 25; negative
	// means unlimited (mind the server's max_connections).
	MaxOpenConns int
	// MaxIdleConns is how many idle connections the pool keeps. Default
	// MaxOpenConns, so bursts do not reconnect; negative keeps none.
	MaxIdleConns int
	// ConnMaxLifetime closes connections after this long, so load
	// balancers and failovers are followed. Default 5 minutes; negative
	// means connections are reused forever.
	ConnMaxLifetime time.Duration
	// GCBatchSize is the most expired rows one GC statement deletes.
	// Default 1000; smaller batches hold locks for less time.
	GCBatchSize int
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

// driver opens providers for SetProvider.
var driver = sessionkit.DriverFor(New)

func init() { sessionkit.Register(Name, driver) }

// dialect is PostgreSQL's part of the shared SQL implementation.
var dialect = sqlstore.Dialect{
	Name:        Name,
	Placeholder: "$",
	Schema: []string{
		// CREATE ... IF NOT EXISTS is not safe against itself: two
		// sessions creating the same table at once can fail on a catalog
		// unique index. The transaction-scoped advisory lock serialises
		// them.
		"SELECT pg_advisory_xact_lock(1936943979, hashtext('{table}'))",
		`CREATE TABLE IF NOT EXISTS {table} (
			id TEXT COLLATE "C" PRIMARY KEY,
			data BYTEA NOT NULL,
			expires_at BIGINT NOT NULL
		)`,
		"CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at)",
	},
	// ON CONFLICT waits for a concurrent insert of the same id to commit,
	// then re-checks the WHERE on the committed row: exactly one of two
	// racing Creates succeeds.
	Create: `INSERT INTO {table} AS s (id, data, expires_at) VALUES (@id, @data, @exp)
		ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at
		WHERE s.expires_at <= @now`,
	Lock: "SELECT data, expires_at FROM {table} WHERE id = @id AND expires_at > @now FOR UPDATE",
	// The outer expires_at test re-checks a row that changed between the
	// subquery's snapshot and the delete (a Create replacing an expired
	// row): PostgreSQL re-evaluates it on the new row version.
	GC: `DELETE FROM {table} WHERE id IN (
			SELECT id FROM {table} WHERE expires_at <= @now LIMIT @limit FOR UPDATE SKIP LOCKED
		) AND expires_at <= @now`,
	IsDuplicate: func(err error) bool { return sqlState(err) == "23505" },
	// 40P01 deadlock_detected, 40001 serialization_failure.
	IsRetryable:            func(err error) bool { s := sqlState(err); return s == "40P01" || s == "40001" },
	DefaultMaxOpenConns:    25,
	DefaultConnMaxLifetime: 5 * time.Minute,
}

func sqlState(err error) string {
	var e *pq.Error
	if errors.As(err, &e) {
		return string(e.Code)
	}
	return ""
}

// Provider is the postgres provider. Create it with New or through
// sessionkit's SetProvider.
type Provider struct {
	s *sqlstore.Store
}

var (
	_ sessionkit.Provider         = (*Provider)(nil)
	_ sessionkit.Toucher          = (*Provider)(nil)
	_ sessionkit.MethodReader     = (*Provider)(nil)
	_ sessionkit.Counter          = (*Provider)(nil)
	_ sessionkit.Ranger           = (*Provider)(nil)
	_ sessionkit.GarbageCollector = (*Provider)(nil)
)

// New validates cfg, connects, creates the table and index if missing,
// and prepares the statements. ctx bounds this start-up work only.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	o := sqlstore.Options{
		DB:              cfg.DB,
		Source:          "DSN",
		Table:           cfg.Table,
		QualifiedTable:  true,
		MaxOpenConns:    cfg.MaxOpenConns,
		MaxIdleConns:    cfg.MaxIdleConns,
		ConnMaxLifetime: cfg.ConnMaxLifetime,
		GCBatchSize:     cfg.GCBatchSize,
	}
	if cfg.DSN != "" {
		o.Connect = func() (*sql.DB, error) {
			c, err := pq.NewConnector(cfg.DSN)
			if err != nil {
				return nil, fmt.Errorf("invalid DSN: %w", err)
			}
			return sql.OpenDB(c), nil
		}
	}
	s, err := sqlstore.Open(ctx, dialect, o)
	if err != nil {
		return nil, err
	}
	return &Provider{s: s}, nil
}

// Get implements sessionkit.Provider: one SELECT, which treats an expired
// row as missing. Undecodable data gives an error wrapping
// sessionkit.ErrCorruptValue.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	return p.s.Get(ctx, id)
}

// Update implements sessionkit.Provider.
func (p *Provider) Update(ctx context.Context, id string, u sessionkit.Update) error {
	return p.s.Update(ctx, id, u)
}

// ReadsUpdatesByMethod implements sessionkit.MethodReader: Update reads
// the values it stores through the Update's methods only.
func (*Provider) ReadsUpdatesByMethod() {}

// Touch implements sessionkit.Toucher with one UPDATE of the deadline.
func (p *Provider) Touch(ctx context.Context, id string, expires time.Time) error {
	return p.s.Touch(ctx, id, expires)
}

// Delete implements sessionkit.Provider.
func (p *Provider) Delete(ctx context.Context, id string) error { return p.s.Delete(ctx, id) }

// Rename implements sessionkit.Provider, in one transaction.
func (p *Provider) Rename(ctx context.Context, oldID, newID string, expires time.Time) error {
	return p.s.Rename(ctx, oldID, newID, expires)
}

// Count implements sessionkit.Counter.
func (p *Provider) Count(ctx context.Context) (int, error) { return p.s.Count(ctx) }

// Range implements sessionkit.Ranger. Rows are streamed over one
// connection while fn runs, so fn may call the provider only if the pool
// has another connection free.
func (p *Provider) Range(ctx context.Context, fn func(id string, r sessionkit.Record) bool) error {
	return p.s.Range(ctx, fn)
}

// GC implements sessionkit.GarbageCollector, deleting expired rows in
// batches of GCBatchSize.
func (p *Provider) GC(ctx context.Context) error { return p.s.GC(ctx) }

// Close implements sessionkit.Provider. It closes the pool if the
// provider opened it from DSN, and leaves a Config.DB pool open.
func (p *Provider) Close() error { return p.s.Close() }
