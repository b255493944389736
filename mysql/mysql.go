// Package mysql is a sessionkit provider that stores sessions in a MySQL
// or MariaDB table (InnoDB), through database/sql and
// github.com/go-sql-driver/mysql. Import it for its side effect of
// registering the "mysql" provider:
//
//	import _ "github.com/sessionkit/sessionkit/mysql"
//	err := session.SetProvider("mysql", &mysql.Config{
//		DSN: "app:secret@tcp(db.internal:3306)/app",
//	})
//
// # Configuration
//
//	Field            Default               Meaning
//	DSN              -                     go-sql-driver/mysql DSN; the provider opens and owns a pool
//	DB               -                     an existing pool instead of DSN; Close leaves it open
//	Table            "sessionkit_sessions" table name: letters, digits, underscores
//	MaxOpenConns     25                    pool size (DSN only); negative: unlimited
//	MaxIdleConns     MaxOpenConns          idle connections kept (DSN only); negative: none
//	ConnMaxLifetime  5m                    connection reuse limit (DSN only); negative: forever
//	GCBatchSize      1000                  most rows one GC statement deletes
//
// Exactly one of DSN and DB is set. Open pings the server, so an
// unreachable database is reported at start-up, not at the first request.
// The connection must not use clientFoundRows=true: Update with Create
// tells a live session from a new one by the affected-row count, which
// that option changes. Open checks this and refuses such a pool.
//
// # Schema
//
// Open creates the table, with its index, if it is missing:
//
//	CREATE TABLE IF NOT EXISTS sessionkit_sessions (
//		id         VARCHAR(256) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
//		data       LONGBLOB NOT NULL, -- sessionkit.EncodeValues of the values
//		expires_at BIGINT   NOT NULL, -- deadline, Unix milliseconds
//		PRIMARY KEY (id),
//		INDEX sessionkit_sessions_expires_idx (expires_at)
//	) ENGINE=InnoDB
//
// The id is compared in binary: with the server's usual case-insensitive
// collation, two IDs differing only in case would be one session. The
// deadline is an integer rather than a DATETIME so that it compares without
// time-zone conversions and every expiry predicate is a plain range on the
// indexed column. "Now" is the application's clock, the one that computed
// the deadlines. A table that already exists is used as it is, so an
// existing table must have the expiry index for GC to be cheap.
//
// # Statements
//
// Get is one SELECT that checks expiry. Update with Create is one INSERT
// ... ON DUPLICATE KEY UPDATE whose assignments replace only an expired
// row (it uses the VALUES() function, which MySQL 8 deprecates but still
// runs, and which MariaDB needs). An Update made against the session as
// the request read it (Update.Base, which the manager sends with a
// session's first write) is one UPDATE ... WHERE data = the values read;
// other Updates, and that one when another write came in between, lock
// the row with SELECT ... FOR UPDATE, merge, and UPDATE in one
// transaction. Touch is one
// guarded UPDATE. GC runs DELETE ... WHERE expires_at <= ? LIMIT n until a
// batch comes back short. A transaction InnoDB picks as a deadlock victim
// is retried.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sqlstore"
)

// Name is the name the provider registers under.
const Name = "mysql"

// Config configures the mysql provider. Set exactly one of DSN and DB.
type Config struct {
	// DSN is a go-sql-driver/mysql data source name, for example
	// "user:password@tcp(127.0.0.1:3306)/dbname". The provider opens its
	// own pool from it and closes that pool on Close.
	DSN string
	// DB is an existing pool to use instead of DSN. The provider does not
	// configure or close it: its owner does.
	DB *sql.DB
	// Table is the session table, created if missing. Default
	// "sessionkit_sessions"; letters, digits and underscores only.
	Table string
	// MaxOpenConns limits the pool opened from DSN. Default 25; negative
	// means unlimited (mind the server's max_connections).
	MaxOpenConns int
	// MaxIdleConns is how many idle connections the pool keeps. Default
	// MaxOpenConns, so bursts do not reconnect; negative keeps none.
	MaxIdleConns int
	// ConnMaxLifetime closes connections after this long, before the
	// server's wait_timeout or a proxy drops them. Default 5 minutes;
	// negative means connections are reused forever.
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

// MySQL error numbers the provider acts on.
const (
	errDupEntry     = 1062
	errLockDeadlock = 1213
)

// dialect is MySQL's part of the shared SQL implementation.
var dialect = sqlstore.Dialect{
	Name: Name,
	Schema: []string{`CREATE TABLE IF NOT EXISTS {table} (
			id VARCHAR(256) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
			data LONGBLOB NOT NULL,
			expires_at BIGINT NOT NULL,
			PRIMARY KEY (id),
			INDEX {index} (expires_at)
		) ENGINE=InnoDB`},
	// On a duplicate key both assignments keep the stored values unless
	// the stored row has expired. data is assigned first because MySQL
	// evaluates assignments in order and the second must still see the
	// old expires_at. A live row is left unchanged, which MySQL reports as
	// zero affected rows; InnoDB locks the duplicate row, so racing
	// Creates are serialised.
	Create: `INSERT INTO {table} (id, data, expires_at) VALUES (@id, @data, @exp)
		ON DUPLICATE KEY UPDATE
			data = IF(expires_at <= @now, VALUES(data), data),
			expires_at = IF(expires_at <= @now, VALUES(expires_at), expires_at)`,
	Lock:                   "SELECT data, expires_at FROM {table} WHERE id = @id AND expires_at > @now FOR UPDATE",
	GC:                     "DELETE FROM {table} WHERE expires_at <= @now LIMIT @limit",
	IsDuplicate:            func(err error) bool { return errNumber(err) == errDupEntry },
	IsRetryable:            func(err error) bool { return errNumber(err) == errLockDeadlock },
	ProbeRenameTarget:      true,
	UnchangedNotCounted:    true,
	Verify:                 verifyAffectedRows,
	DefaultMaxOpenConns:    25,
	DefaultConnMaxLifetime: 5 * time.Minute,
}

func errNumber(err error) uint16 {
	var e *mysql.MySQLError
	if errors.As(err, &e) {
		return e.Number
	}
	return 0
}

// verifyAffectedRows refuses a pool whose connections report matched
// rather than changed rows (clientFoundRows=true): with it, Update with
// Create could not tell a live session from a new one. It updates a row
// to its own value inside a transaction that is rolled back, and expects
// zero affected rows. The empty id can never be a real session's.
func verifyAffectedRows(ctx context.Context, db *sql.DB, table string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (id, data, expires_at) VALUES ('', '', 0) ON DUPLICATE KEY UPDATE expires_at = 0"); err != nil {
		return fmt.Errorf("checking affected-row counts: %w", err)
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+table+" SET expires_at = 0 WHERE id = ''")
	if err != nil {
		return fmt.Errorf("checking affected-row counts: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 0 {
		return errors.New("the connection reports matched rather than changed rows (clientFoundRows=true), which the provider cannot work with: remove clientFoundRows from the DSN")
	}
	return nil
}

// Provider is the mysql provider. Create it with New or through
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

// New validates cfg, connects, creates the table if missing, and prepares
// the statements. ctx bounds this start-up work only.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	o := sqlstore.Options{
		DB:              cfg.DB,
		Source:          "DSN",
		Table:           cfg.Table,
		MaxOpenConns:    cfg.MaxOpenConns,
		MaxIdleConns:    cfg.MaxIdleConns,
		ConnMaxLifetime: cfg.ConnMaxLifetime,
		GCBatchSize:     cfg.GCBatchSize,
	}
	if cfg.DSN != "" {
		o.Connect = func() (*sql.DB, error) {
			mc, err := mysql.ParseDSN(cfg.DSN)
			if err != nil {
				return nil, err // already says "invalid DSN"
			}
			c, err := mysql.NewConnector(mc)
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

// Touch implements sessionkit.Toucher with one UPDATE of the deadline
// (and a check for the row if it already had that deadline).
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
