// Package sqlite3 is a sessionkit provider that stores sessions in an
// SQLite database file, through database/sql and
// github.com/mattn/go-sqlite3 (cgo). Sessions survive a restart and are
// shared by every process that opens the file on the same machine. Import
// it for its side effect of registering the "sqlite3" provider:
//
//	import _ "github.com/sessionkit/sessionkit/sqlite3"
//	err := session.SetProvider("sqlite3", &sqlite3.Config{Path: "/var/lib/app/sessions.db"})
//
// # Configuration
//
//	Field         Default               Meaning
//	Path          -                     database file, created if missing; the provider opens and owns a pool
//	DB            -                     an existing pool instead of Path; Close leaves it open
//	Table         "sessionkit_sessions" table name: letters, digits, underscores
//	BusyTimeout   5s                    how long a writer waits for the write lock (Path only)
//	MaxOpenConns  8                     pool size (Path only); negative: unlimited
//	MaxIdleConns  MaxOpenConns          idle connections kept (Path only); negative: none
//	GCBatchSize   1000                  most rows one GC statement deletes
//
// Exactly one of Path and DB is set, and either must lead to a database
// file: ":memory:", other in-memory databases and temporary ones (an
// empty DSN) are refused, because each pooled connection would get a
// database of its own. Open creates the file and checks it can be opened.
//
// # Concurrency
//
// The database runs in WAL mode, so readers never wait for the writer and
// the writer never waits for readers. Writers take turns. Within the
// process they queue in order (one queue per database file, shared by
// every provider on it), because SQLite's own wait for the write lock
// polls with growing sleeps and, under steady contention, can pass over
// one writer until its busy timeout ends. Against other processes each
// connection waits up to BusyTimeout for the write lock instead of
// failing at once with SQLITE_BUSY, and transactions start with BEGIN
// IMMEDIATE, taking the write lock at once rather than upgrading a read
// lock later (an upgrade cannot wait and would fail under contention).
// SQLite cannot interrupt a wait for the lock, so a request whose context
// ends meanwhile returns when the wait does, at most BusyTimeout later,
// with an error wrapping the context's; a wait in the in-process queue
// ends with the context.
//
// A pool passed as DB must be opened with a busy timeout (for example
// "file.db?_busy_timeout=5000"); Open switches its database to WAL mode.
// Every transaction's first statement is a write, which takes the write
// lock as BEGIN IMMEDIATE would, so such a pool does not need
// _txlock=immediate.
//
// # Schema
//
// Open creates the table and its index if they are missing:
//
//	CREATE TABLE IF NOT EXISTS sessionkit_sessions (
//		id         TEXT    NOT NULL PRIMARY KEY,
//		data       BLOB    NOT NULL, -- sessionkit.EncodeValues of the values
//		expires_at INTEGER NOT NULL  -- deadline, Unix milliseconds
//	);
//	CREATE INDEX IF NOT EXISTS sessionkit_sessions_expires_idx ON sessionkit_sessions (expires_at);
//
// The deadline is an integer so that every expiry predicate is a plain
// range on the indexed column. GC deletes expired rows in batches, each a
// short transaction of its own, so requests can write between batches.
package sqlite3

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sqlstore"
)

// Name is the name the provider registers under.
const Name = "sqlite3"

// DefaultBusyTimeout is how long a connection waits for the write lock
// when Config.BusyTimeout is zero.
const DefaultBusyTimeout = 5 * time.Second

// Config configures the sqlite3 provider. Set exactly one of Path and DB.
type Config struct {
	// Path is the database file, created if it does not exist. It must be
	// a file path, not ":memory:" or a "file:" URI, and must not contain
	// '?'.
	Path string
	// DB is an existing pool to use instead of Path. The provider does not
	// configure or close it: its owner does. See the package
	// documentation for the settings it needs.
	//
	// Its database must be a file. Open refuses one that PRAGMA
	// database_list shows without a file (":memory:", an empty DSN, a
	// "file:" URI with mode=memory or ":memory:"): SQLite gives each
	// connection a database of its own, so a call on any connection but
	// the one that created the table would fail with "no such table". A
	// shared-cache in-memory database is refused too: it vanishes, with
	// every session, when database/sql closes its last connection.
	DB *sql.DB
	// Table is the session table, created if missing. Default
	// "sessionkit_sessions"; letters, digits and underscores only.
	Table string
	// BusyTimeout is how long a connection waits for another writer to
	// finish before failing with SQLITE_BUSY. Default 5 seconds.
	BusyTimeout time.Duration
	// MaxOpenConns limits the pool opened from Path. Default 8; writers
	// take turns anyway, so more connections only serve more concurrent
	// readers. Negative means unlimited.
	MaxOpenConns int
	// MaxIdleConns is how many idle connections the pool keeps. Default
	// MaxOpenConns; negative keeps none.
	MaxIdleConns int
	// GCBatchSize is the most expired rows one GC statement deletes.
	// Default 1000; smaller batches hold the write lock for less time.
	GCBatchSize int
}

// ProviderName implements sessionkit.ProviderConfig.
func (*Config) ProviderName() string { return Name }

// driver opens providers for SetProvider.
var driver = sessionkit.DriverFor(New)

func init() { sessionkit.Register(Name, driver) }

// dialect is SQLite's part of the shared SQL implementation.
var dialect = sqlstore.Dialect{
	Name: Name,
	// ?NNN placeholders let a repeated parameter be bound once.
	Placeholder: "?",
	// WAL is a property of the file, so setting it once covers every
	// connection, a caller's pool included.
	Init: []string{"PRAGMA journal_mode=WAL"},
	Schema: []string{
		`CREATE TABLE IF NOT EXISTS {table} (
			id TEXT NOT NULL PRIMARY KEY,
			data BLOB NOT NULL,
			expires_at INTEGER NOT NULL
		)`,
		"CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at)",
	},
	// The DO UPDATE's WHERE sees the stored row; when it is false the
	// statement changes nothing, which is how a live session is detected.
	Create: `INSERT INTO {table} AS s (id, data, expires_at) VALUES (@id, @data, @exp)
		ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at
		WHERE s.expires_at <= @now`,
	// SQLite has no SELECT ... FOR UPDATE. A no-op UPDATE ... RETURNING
	// reads the row and takes the write lock in one step, which, as the
	// transaction's first statement, waits for the lock through the busy
	// timeout even in a deferred transaction, where a SELECT followed by
	// an UPDATE would fail on upgrading its read lock.
	Lock: "UPDATE {table} SET expires_at = expires_at WHERE id = @id AND expires_at > @now RETURNING data, expires_at",
	// Deleting by rowid from an index-driven subquery: plain DELETE ...
	// LIMIT needs a compile-time option the driver does not enable.
	GC:          "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE expires_at <= @now LIMIT @limit)",
	IsDuplicate: isDuplicate,
	Verify:      verifyFile,
	// SQLite has one writer and no deadlocks between statements: a busy
	// database has already been waited for up to the busy timeout.
	DefaultMaxOpenConns: 8,
}

func isDuplicate(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && (e.ExtendedCode == sqlite3.ErrConstraintPrimaryKey || e.ExtendedCode == sqlite3.ErrConstraintUnique)
}

// verifyFile refuses a pool whose main database has no file: an
// in-memory or temporary database, which every connection of the pool
// would have to itself. Path cannot lead there; a caller's DB can.
func verifyFile(ctx context.Context, db *sql.DB, _ string) error {
	var file sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return fmt.Errorf("checking that the database is a file: %w", err)
	}
	if file.String == "" {
		return errors.New("DB's database has no file (it is in memory or temporary), so the pool's connections would not share its sessions, or would lose them with the last one: open DB on a database file, as in sql.Open(\"sqlite3\", \"/var/lib/app/sessions.db?_busy_timeout=5000\")")
	}
	return nil
}

// Provider is the sqlite3 provider. Create it with New or through
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

// New validates cfg, opens the database, switches it to WAL mode, creates
// the table and index if missing, and prepares the statements. ctx bounds
// this start-up work only.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	o := sqlstore.Options{
		DB:           cfg.DB,
		Source:       "Path",
		Table:        cfg.Table,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxIdleConns,
		GCBatchSize:  cfg.GCBatchSize,
	}
	if cfg.DB != nil && cfg.BusyTimeout != 0 {
		return nil, errors.New("sqlite3: BusyTimeout configures connections the provider opens; with DB, put _busy_timeout in its DSN")
	}
	if cfg.DB != nil {
		o.WriterKey = fmt.Sprintf("db:%p", cfg.DB)
	}
	if cfg.Path != "" {
		dsn, err := pathDSN(cfg.Path, cfg.BusyTimeout)
		if err != nil {
			return nil, fmt.Errorf("sqlite3: %w", err)
		}
		o.Connect = func() (*sql.DB, error) { return sql.Open("sqlite3", dsn) }
		// Providers on one file share the writer queue; a path that names
		// the same file differently (a link) falls back on the busy timeout.
		abs, err := filepath.Abs(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("sqlite3: path %q: %w", cfg.Path, err)
		}
		o.WriterKey = "file:" + abs
	}
	s, err := sqlstore.Open(ctx, dialect, o)
	if err != nil {
		return nil, err
	}
	return &Provider{s: s}, nil
}

// pathDSN turns a file path into a go-sqlite3 DSN carrying the
// per-connection settings. The driver strips the query from a DSN that is
// not a "file:" URI and opens the rest as a plain path, so the path needs
// no escaping, only no '?' of its own.
func pathDSN(path string, busy time.Duration) (string, error) {
	switch {
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return "", fmt.Errorf("path %q: need a file path; an in-memory database would be a different, empty database on each pooled connection", path)
	case strings.ContainsRune(path, '?'):
		return "", fmt.Errorf("path %q contains '?', which go-sqlite3 reads as the start of DSN options", path)
	case busy < 0:
		return "", fmt.Errorf("BusyTimeout %v is negative: use 0 for the default (%v)", busy, DefaultBusyTimeout)
	case busy == 0:
		busy = DefaultBusyTimeout
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_txlock", "immediate")
	q.Set("_journal_mode", "WAL")
	return path + "?" + q.Encode(), nil
}

// Get implements sessionkit.Provider: one SELECT, which treats an expired
// row as missing. Undecodable data gives an error wrapping
// sessionkit.ErrCorruptValue.
func (p *Provider) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	return p.s.Get(ctx, id)
}

// Update implements sessionkit.Provider. One made against the session as
// the request read it (Update.Base, which the manager sends with a
// session's first write) is one UPDATE ... WHERE data = the values read;
// the transaction that locks, merges and writes runs only for the others,
// and for that one when another write came in between.
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
// provider opened it from Path, and leaves a Config.DB pool open.
func (p *Provider) Close() error { return p.s.Close() }
