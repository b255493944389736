// Package sqlstore is the database/sql implementation shared by the SQL
// providers (mysql, postgres, sqlite3). Each provider package is a thin
// layer: its Config, its driver registration, and a Dialect holding the
// few statements and error tests that differ between databases. Everything
// else — the transaction logic, expiry checks, batching, error wrapping —
// lives here once.
//
// Storage model: one row per session, (id, data, expires_at), where data
// is sessionkit.EncodeValues of the values and expires_at is the deadline
// in Unix milliseconds. An integer deadline compares the same in every
// database and time zone and keeps the expiry index usable by plain range
// predicates. "Now" is always the application's clock, passed as a
// parameter, the same clock that computed the deadlines.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionkit/sessionkit"
)

// Defaults shared by the SQL providers.
const (
	// DefaultTable is the table used when the config names none.
	DefaultTable = "sessionkit_sessions"
	// DefaultGCBatchSize is how many expired rows one GC statement
	// deletes at most.
	DefaultGCBatchSize = 1000
	// maxIdentLen bounds each part of a table name so that the index name
	// derived from it (table + indexSuffix) fits PostgreSQL's 63-byte
	// identifier limit; the same rule for every database keeps a table
	// name portable between providers.
	maxIdentLen = 63 - len(indexSuffix)
	indexSuffix = "_expires_idx"
	// maxSwap is the most bytes of values, old and new together, that an
	// Update sends in the swap statement (see swapFrom).
	maxSwap = 1 << 20
	// maxAttempts bounds how often a transaction that lost a deadlock or
	// serialization conflict is run again.
	maxAttempts = 3
)

// Dialect is what differs between databases. Statements are templates:
// {table} and {index} are replaced by the table and expiry-index names,
// and parameters are written @name (see the param constants), which
// Open rewrites into the database's placeholder style. Writing
// parameters by name is what lets one template set serve $1-style,
// ?1-style and plain-? databases, with a repeated parameter bound once
// or twice as the style needs.
type Dialect struct {
	// Name prefixes error messages; it is the provider's name.
	Name string
	// Placeholder selects the parameter style: "$" gives $1, $2 (a
	// repeated parameter reuses its number), "?" gives ?1, ?2 likewise,
	// and "" gives a bare ? per occurrence (MySQL).
	Placeholder string
	// Init runs once at Open, outside any transaction, before Schema
	// (SQLite's journal mode cannot change inside one).
	Init []string
	// Schema creates the table and its expiry index if missing. It runs
	// in one transaction at Open.
	Schema []string
	// Create inserts a session, replacing an expired row with the same
	// id, with parameters @id, @data, @exp and @now. It must affect no
	// row when a live session (expires_at > @now) holds the id: that is
	// how Update with Create detects ErrExists in one statement.
	Create string
	// Lock selects data and expires_at of the live session @id (deadline
	// after @now), and locks its row until the transaction ends.
	Lock string
	// GC deletes at most @limit rows whose expires_at <= @now. The
	// predicate must be on the bare column, so the expiry index serves it.
	GC string
	// IsDuplicate reports whether err is a unique-key violation.
	IsDuplicate func(error) bool
	// IsRetryable reports whether err aborted a transaction that may
	// simply be run again (deadlock, serialization failure). Nil means
	// never.
	IsRetryable func(error) bool
	// ProbeRenameTarget makes Rename read the new ID's row, with a plain
	// read that locks nothing, and delete it only if it is there and
	// expired, where otherwise it deletes an expired row there blindly.
	// For InnoDB (MySQL), whose blind delete of a key that is in no row
	// locks the gap where the key would go, under repeatable read: two
	// renames into one gap then each wait for the other's gap lock to
	// insert their new key, and one dies as a deadlock victim, again and
	// again under a burst of logins. Not for a single-writer engine
	// (SQLite), whose transaction must write first: one that reads first
	// cannot take the write lock once another writer has it, and fails
	// with "database is locked" rather than wait.
	ProbeRenameTarget bool
	// UnchangedNotCounted is set for databases (MySQL) whose UPDATE
	// reports zero affected rows when the row matched but already held
	// the new values; Touch then checks for the row before reporting
	// ErrNotFound.
	UnchangedNotCounted bool
	// Verify, if set, runs once at Open after Schema, to refuse a
	// connection whose settings would make the statements above wrong.
	Verify func(ctx context.Context, db *sql.DB, table string) error
	// DefaultMaxOpenConns and DefaultConnMaxLifetime are the pool
	// defaults for a pool the provider opens itself.
	DefaultMaxOpenConns    int
	DefaultConnMaxLifetime time.Duration
}

// Statements every dialect shares. Only Create, Lock and GC differ enough
// to belong to the Dialect.
const (
	getSQL    = "SELECT data, expires_at FROM {table} WHERE id = @id AND expires_at > @now"
	existsSQL = "SELECT 1 FROM {table} WHERE id = @id AND expires_at > @now"
	saveSQL   = "UPDATE {table} SET data = @data, expires_at = @exp WHERE id = @id"
	// swapSQL writes a session only if it still holds the values a
	// request read (Update.Base): the whole read-modify-write in one
	// statement, for the commonest write.
	swapSQL   = "UPDATE {table} SET data = @data, expires_at = @exp WHERE id = @id AND data = @old AND expires_at > @now"
	touchSQL  = "UPDATE {table} SET expires_at = @exp WHERE id = @id AND expires_at > @now"
	deleteSQL = "DELETE FROM {table} WHERE id = @id"
	countSQL  = "SELECT COUNT(*) FROM {table} WHERE expires_at > @now"
	rangeSQL  = "SELECT id, data, expires_at FROM {table} WHERE expires_at > @now"
	// Rename first removes an expired row squatting on the new id (a live
	// one makes the move fail on the primary key), looking for it first
	// where the dialect says so (Dialect.ProbeRenameTarget), then moves
	// the row by rewriting its key, so the values never travel.
	renameFindSQL  = "SELECT expires_at FROM {table} WHERE id = @new"
	renameClearSQL = "DELETE FROM {table} WHERE id = @new AND expires_at <= @now"
	renameMoveSQL  = "UPDATE {table} SET id = @new, expires_at = @exp WHERE id = @id AND expires_at > @now"
)

// Options is the part of a provider's configuration that sqlstore
// handles.
type Options struct {
	// DB is a pool the caller owns: Close leaves it open. Exactly one of
	// DB and Connect is set.
	DB *sql.DB
	// Connect opens the provider's own pool, which Close closes.
	Connect func() (*sql.DB, error)
	// Source names the config field Connect is built from ("DSN",
	// "Path"), for error messages.
	Source string
	// Table is the table name; empty means DefaultTable.
	Table string
	// QualifiedTable allows a schema-qualified name (schema.table).
	QualifiedTable bool
	// MaxOpenConns, MaxIdleConns and ConnMaxLifetime configure a pool
	// opened through Connect: zero means the default, negative means no
	// limit (MaxIdleConns: keep none idle; ConnMaxLifetime: reuse
	// forever). They must be zero with DB, whose owner configures it.
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// GCBatchSize is the most rows one GC statement deletes; zero means
	// DefaultGCBatchSize.
	GCBatchSize int
	// WriterKey, if not empty, names the database for a single-writer
	// engine (SQLite): every store of the process with the same key takes
	// turns at writing through one in-process queue. The engine's own
	// wait for its write lock polls with growing sleeps and is not fair:
	// under steady contention a writer can lose every round until its
	// busy timeout ends. Queueing in Go first leaves the engine's wait
	// for other processes only.
	WriterKey string
}

// gate is a FIFO, context-aware mutex: a send enters, a receive leaves.
// Goroutines blocked on a channel send are served in order.
type gate chan struct{}

var (
	gatesMu sync.Mutex
	gates   = map[string]*sharedGate{}
)

type sharedGate struct {
	g    gate
	refs int
}

// acquireGate returns the gate for key, shared by every open store with
// that key, and the function that drops this store's reference.
func acquireGate(key string) (gate, func()) {
	gatesMu.Lock()
	defer gatesMu.Unlock()
	sg := gates[key]
	if sg == nil {
		sg = &sharedGate{g: make(gate, 1)}
		gates[key] = sg
	}
	sg.refs++
	return sg.g, func() {
		gatesMu.Lock()
		defer gatesMu.Unlock()
		if sg.refs--; sg.refs == 0 {
			delete(gates, key)
		}
	}
}

// ValidateTable checks a table name and returns it, or DefaultTable for
// the empty string. Names are spliced into SQL unquoted, so only letters,
// digits and underscores are allowed (not starting with a digit), at most
// 51 bytes per part, with one optional schema qualifier where qualified
// is true.
func ValidateTable(name string, qualified bool) (string, error) {
	if name == "" {
		return DefaultTable, nil
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 || (len(parts) == 2 && !qualified) {
		if qualified {
			return "", fmt.Errorf("table name %q: at most one schema qualifier (schema.table) is allowed", name)
		}
		return "", fmt.Errorf("table name %q: a qualified name is not supported here", name)
	}
	for _, p := range parts {
		if !validIdent(p) {
			return "", fmt.Errorf("table name %q: each part must be 1 to %d letters, digits or underscores, not starting with a digit", name, maxIdentLen)
		}
	}
	return name, nil
}

func validIdent(s string) bool {
	if len(s) == 0 || len(s) > maxIdentLen || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// IndexName is the name of the expiry index of table. It is built from
// the unqualified table name because an index lives in its table's schema
// and may not be named with a qualifier.
func IndexName(table string) string {
	return table[strings.LastIndexByte(table, '.')+1:] + indexSuffix
}

// param names a statement parameter.
type param uint8

const (
	pID    param = iota // @id: the session ID
	pNew                // @new: the new ID of a Rename
	pData               // @data: the encoded values
	pExp                // @exp: the new deadline, Unix milliseconds
	pNow                // @now: the current time, Unix milliseconds
	pLimit              // @limit: the GC batch size
	pOld                // @old: the encoded values a write expects to replace
)

var paramNames = map[string]param{"id": pID, "new": pNew, "data": pData, "exp": pExp, "now": pNow, "limit": pLimit, "old": pOld}

// args holds the values a statement's parameters are bound from.
type args struct {
	id, newID       string
	data, old       []byte
	exp, now, limit int64
}

func (a *args) get(p param) any {
	switch p {
	case pID:
		return a.id
	case pNew:
		return a.newID
	case pData:
		return a.data
	case pExp:
		return a.exp
	case pNow:
		return a.now
	case pOld:
		return a.old
	default:
		return a.limit
	}
}

// stmt is one compiled, prepared statement.
type stmt struct {
	query  string
	params []param // in placeholder order
	s      *sql.Stmt
}

func (st *stmt) bind(a args) []any {
	out := make([]any, len(st.params))
	for i, p := range st.params {
		out[i] = a.get(p)
	}
	return out
}

// compile rewrites a template into SQL for the given table and
// placeholder style.
func compile(tmpl, table, style string) (*stmt, error) {
	tmpl = strings.NewReplacer("{table}", table, "{index}", IndexName(table)).Replace(tmpl)
	var b strings.Builder
	st := &stmt{}
	numbers := map[param]int{}
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '@' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(tmpl) && tmpl[j] >= 'a' && tmpl[j] <= 'z' {
			j++
		}
		p, ok := paramNames[tmpl[i+1:j]]
		if !ok {
			return nil, fmt.Errorf("statement %q: unknown parameter %q", tmpl, tmpl[i:j])
		}
		i = j - 1
		if style == "" {
			b.WriteByte('?')
			st.params = append(st.params, p)
			continue
		}
		n, seen := numbers[p]
		if !seen {
			st.params = append(st.params, p)
			n = len(st.params)
			numbers[p] = n
		}
		b.WriteString(style)
		b.WriteString(strconv.Itoa(n))
	}
	st.query = b.String()
	return st, nil
}

// Store is a sessionkit provider on a database/sql pool. Provider
// packages wrap it; its methods implement sessionkit.Provider, Toucher,
// Counter, Ranger and GarbageCollector.
type Store struct {
	d       Dialect
	table   string
	db      *sql.DB
	ownDB   bool
	gcBatch int64
	closed  atomic.Bool
	// gate serialises this process's writers when the engine has a
	// single writer; nil otherwise. releaseGate drops it at Close.
	gate        gate
	releaseGate func()

	get, exists, create, lock, save, swap, touch, del        *stmt
	count, rangeAll, renameFind, renameClear, renameMove, gc *stmt
}

// Open connects, creates the table and index if missing, and prepares
// every statement. ctx bounds that work only.
func Open(ctx context.Context, d Dialect, o Options) (*Store, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf(d.Name+": "+format, a...)
	}
	table, err := ValidateTable(o.Table, o.QualifiedTable)
	if err != nil {
		return nil, fail("%w", err)
	}
	if o.GCBatchSize < 0 {
		return nil, fail("GCBatchSize %d is negative: use 0 for the default (%d)", o.GCBatchSize, DefaultGCBatchSize)
	}
	s := &Store{d: d, table: table, gcBatch: int64(o.GCBatchSize)}
	if s.gcBatch == 0 {
		s.gcBatch = DefaultGCBatchSize
	}
	switch {
	case o.DB != nil && o.Connect != nil:
		return nil, fail("set either %s or DB, not both", o.Source)
	case o.DB != nil:
		if o.MaxOpenConns != 0 || o.MaxIdleConns != 0 || o.ConnMaxLifetime != 0 {
			return nil, fail("MaxOpenConns, MaxIdleConns and ConnMaxLifetime configure a pool the provider opens; with DB, configure that *sql.DB instead")
		}
		s.db = o.DB
	case o.Connect != nil:
		db, err := o.Connect()
		if err != nil {
			return nil, fail("%w", err)
		}
		s.db, s.ownDB = db, true
		configurePool(db, d, o)
	default:
		return nil, fail("no database: set %s or DB", o.Source)
	}
	if err := s.setup(ctx, table); err != nil {
		if s.ownDB {
			_ = s.db.Close()
		}
		return nil, fail("%w", err)
	}
	if o.WriterKey != "" {
		s.gate, s.releaseGate = acquireGate(o.WriterKey)
	}
	return s, nil
}

func configurePool(db *sql.DB, d Dialect, o Options) {
	maxOpen := o.MaxOpenConns
	if maxOpen == 0 {
		maxOpen = d.DefaultMaxOpenConns
	}
	if maxOpen < 0 {
		maxOpen = 0 // database/sql: unlimited
	}
	db.SetMaxOpenConns(maxOpen)
	// By default keep every open connection idle rather than
	// database/sql's 2, so a busy server does not reconnect constantly.
	maxIdle := o.MaxIdleConns
	switch {
	case maxIdle == 0 && maxOpen > 0:
		maxIdle = maxOpen
	case maxIdle == 0:
		maxIdle = d.DefaultMaxOpenConns
	case maxIdle < 0:
		maxIdle = 0 // database/sql: none
	}
	db.SetMaxIdleConns(maxIdle)
	life := o.ConnMaxLifetime
	if life == 0 {
		life = d.DefaultConnMaxLifetime
	}
	if life < 0 {
		life = 0 // database/sql: forever
	}
	db.SetConnMaxLifetime(life)
}

func (s *Store) setup(ctx context.Context, table string) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("cannot connect to the database: %w", err)
	}
	for _, q := range s.d.Init {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("initialising the connection: %w", err)
		}
	}
	if err := s.createSchema(ctx, table); err != nil {
		return fmt.Errorf("creating table %s: %w", table, err)
	}
	if s.d.Verify != nil {
		if err := s.d.Verify(ctx, s.db, table); err != nil {
			return err
		}
	}
	for _, x := range s.statements() {
		if x.tmpl == "" {
			continue
		}
		st, err := compile(x.tmpl, table, s.d.Placeholder)
		if err != nil {
			s.closeStmts()
			return err
		}
		// Prepared once, a statement costs one round trip per execution
		// (unprepared, lib/pq and go-sql-driver/mysql spend two).
		if st.s, err = s.db.PrepareContext(ctx, st.query); err != nil {
			s.closeStmts()
			return fmt.Errorf("preparing %q: %w", st.query, err)
		}
		*x.dst = st
	}
	return nil
}

func (s *Store) createSchema(ctx context.Context, table string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, tmpl := range s.d.Schema {
		st, err := compile(tmpl, table, s.d.Placeholder)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, st.query); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// statement is one of a Store's statements and its template.
type statement struct {
	dst  **stmt
	tmpl string
}

// statements lists every statement of s with its template ("" for one the
// dialect never runs): the one list that setup prepares and closeStmts
// releases, so that no statement is
// prepared and never closed (on a pool the caller owns, each would stay
// on its connection until the pool closed).
func (s *Store) statements() []statement {
	return []statement{
		{&s.get, getSQL}, {&s.exists, existsSQL}, {&s.create, s.d.Create},
		{&s.lock, s.d.Lock}, {&s.save, saveSQL}, {&s.swap, swapSQL}, {&s.touch, touchSQL},
		{&s.del, deleteSQL}, {&s.count, countSQL}, {&s.rangeAll, rangeSQL},
		{&s.renameFind, s.renameProbe()}, {&s.renameClear, renameClearSQL}, {&s.renameMove, renameMoveSQL},
		{&s.gc, s.d.GC},
	}
}

// renameProbe is renameFindSQL where the dialect probes a rename's new
// ID first, and "" elsewhere: no statement is prepared that no call runs.
func (s *Store) renameProbe() string {
	if s.d.ProbeRenameTarget {
		return renameFindSQL
	}
	return ""
}

func (s *Store) closeStmts() error {
	var errs []error
	for _, x := range s.statements() {
		if st := *x.dst; st != nil && st.s != nil {
			errs = append(errs, st.s.Close())
		}
	}
	return errors.Join(errs...)
}

// GCStatement returns the GC statement and its arguments for a cutoff of
// now, for tests that EXPLAIN it.
func (s *Store) GCStatement(now time.Time) (string, []any) {
	return s.gc.query, s.gc.bind(args{now: now.UnixMilli(), limit: s.gcBatch})
}

// Table returns the table name in use.
func (s *Store) Table() string { return s.table }

// DB returns the pool the store uses.
func (s *Store) DB() *sql.DB { return s.db }

func nowMilli() int64 { return time.Now().UnixMilli() }

// check refuses work on a closed store or a done context before any
// round trip.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.d.Name, sessionkit.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", s.d.Name, err)
	}
	return nil
}

// fail wraps a database error from operation op. Drivers report a
// canceled call or a closed pool in their own words; both are translated
// to the sentinels callers test for, keeping the driver's text.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch cerr := ctx.Err(); {
	case s.closed.Load() && !errors.Is(err, sessionkit.ErrClosed):
		return fmt.Errorf("%s: %s: %w: %w", s.d.Name, op, sessionkit.ErrClosed, err)
	case cerr != nil && !errors.Is(err, cerr):
		return fmt.Errorf("%s: %s: %w: %w", s.d.Name, op, cerr, err)
	default:
		return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
	}
}

// write runs fn, one write: a single statement or a whole transaction,
// so nothing of a failed attempt remains. It waits for the process's turn
// to write where the engine has a single writer, and runs fn again when
// it failed only because the database chose it as a deadlock victim or
// serialization loser.
func (s *Store) write(ctx context.Context, op string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, op, fn)
		if err == nil || attempt == maxAttempts || s.d.IsRetryable == nil || !s.d.IsRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, op string, fn func() error) error {
	if s.gate == nil {
		return fn()
	}
	select {
	case s.gate <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s: %s: waiting for the write lock: %w", s.d.Name, op, ctx.Err())
	}
	defer func() { <-s.gate }()
	return fn()
}

// execWrite runs one writing statement outside any transaction, as a
// write (see write), and returns the number of rows it affected.
func (s *Store) execWrite(ctx context.Context, op string, st *stmt, a args) (int64, error) {
	var n int64
	err := s.write(ctx, op, func() error {
		res, err := st.s.ExecContext(ctx, st.bind(a)...)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return s.fail(ctx, op, err)
		}
		return nil
	})
	return n, err
}

// inTx runs fn in a transaction, committing if it returns nil. fn's
// errors are returned as they are; fn wraps its own database errors.
func (s *Store) inTx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// Get implements sessionkit.Provider with one SELECT that checks expiry.
func (s *Store) Get(ctx context.Context, id string) (sessionkit.Record, error) {
	if err := s.check(ctx); err != nil {
		return sessionkit.Record{}, err
	}
	rows, err := s.get.s.QueryContext(ctx, s.get.bind(args{id: id, now: nowMilli()})...)
	if err != nil {
		return sessionkit.Record{}, s.fail(ctx, "get", err)
	}
	defer rows.Close()
	values, exp, err := s.scanRecord(ctx, "get", rows, true)
	if err != nil {
		return sessionkit.Record{}, err
	}
	return sessionkit.Record{Packed: values, Expires: time.UnixMilli(exp)}, nil
}

// scanRecord reads the single (data, expires_at) row of rows, or reports
// ErrNotFound. The data is scanned as RawBytes, valid only until rows
// moves on, because DecodeValues copies what it keeps anyway.
func (s *Store) scanRecord(ctx context.Context, op string, rows *sql.Rows, decode bool) (sessionkit.Packed, int64, error) {
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", 0, s.fail(ctx, op, err)
		}
		return "", 0, sessionkit.ErrNotFound
	}
	var raw sql.RawBytes
	var exp int64
	if err := rows.Scan(&raw, &exp); err != nil {
		return "", 0, s.fail(ctx, op, err)
	}
	if !decode {
		return "", exp, nil
	}
	values, err := sessionkit.ParsePacked(raw)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
	}
	return values, exp, nil
}

// Update implements sessionkit.Provider.
//
// With Create it is one upsert that replaces only an expired row. A
// deadline-only Update is one guarded UPDATE, like Touch. An Update with a
// Base (the session as the request read it) and a deadline first tries
// one UPDATE that applies only if the row still holds Base's values,
// which is the case unless another write came in between. Otherwise, or
// if that UPDATE matched no row, it is a transaction: lock the live row,
// merge in Go, write it back; the row lock is what keeps concurrent
// merges from losing each other's keys.
func (s *Store) Update(ctx context.Context, id string, u sessionkit.Update) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	now := nowMilli()
	switch {
	case u.Create:
		return s.createSession(ctx, id, u, now)
	case !u.Clear && len(u.Delete) == 0 && u.SetLen() == 0:
		if u.Expires.IsZero() {
			return s.live(ctx, "update", id, now)
		}
		return s.touchAt(ctx, "update", id, u.Expires.UnixMilli(), now)
	}
	if !u.Base.Expires.IsZero() && !u.Expires.IsZero() && !u.Clear {
		swapped, err := s.swapFrom(ctx, id, u, now)
		if swapped || err != nil {
			return err
		}
	}
	return s.write(ctx, "update", func() error {
		return s.inTx(ctx, "update", func(tx *sql.Tx) error {
			rows, err := tx.StmtContext(ctx, s.lock.s).QueryContext(ctx, s.lock.bind(args{id: id, now: now})...)
			if err != nil {
				return s.fail(ctx, "update", err)
			}
			// With Clear the old values are not needed, which also lets a
			// Clear repair a session whose stored data is corrupt.
			old, exp, err := s.scanRecord(ctx, "update", rows, !u.Clear)
			if cerr := rows.Close(); err == nil && cerr != nil {
				err = s.fail(ctx, "update", cerr)
			}
			if err != nil {
				return err
			}
			if !u.Expires.IsZero() {
				exp = u.Expires.UnixMilli()
			}
			data := u.AppendPacked(nil, old)
			if _, err := tx.StmtContext(ctx, s.save.s).ExecContext(ctx, s.save.bind(args{id: id, data: data, exp: exp})...); err != nil {
				return s.fail(ctx, "update", err)
			}
			return nil
		})
	})
}

// swapFrom writes u applied to u.Base if the row still holds Base's
// values, and reports whether it did. It needs u.Expires: with a zero one
// the stored deadline, which a Touch may have moved since the read, would
// have to be read first.
//
// A session whose old and new values together exceed maxSwap bytes goes
// to the transaction instead. The swap sends the session twice, as the
// new values and as the old ones to compare, which for a large session
// can exceed the server's packet limit (MySQL's max_allowed_packet, 16
// MiB by default on MariaDB) where the transaction, which sends it once,
// would not; and at that size the transaction's extra round trips are
// small beside the transfer.
func (s *Store) swapFrom(ctx context.Context, id string, u sessionkit.Update, now int64) (bool, error) {
	base := u.Base.Pack()
	data := u.AppendPacked(nil, base)
	if len(base)+len(data) > maxSwap {
		return false, nil
	}
	a := args{id: id, data: data, old: []byte(base), exp: u.Expires.UnixMilli(), now: now}
	n, err := s.execWrite(ctx, "update", s.swap, a)
	// No row: changed, gone, or (UnchangedNotCounted) already holding
	// the result. The transaction tells which, and does the right thing.
	return err == nil && n > 0, err
}

func (s *Store) createSession(ctx context.Context, id string, u sessionkit.Update, now int64) error {
	if u.Expires.IsZero() {
		return fmt.Errorf("%s: update: Create needs a deadline (Update.Expires is zero)", s.d.Name)
	}
	a := args{id: id, data: u.AppendPacked(nil, ""), exp: u.Expires.UnixMilli(), now: now}
	return s.write(ctx, "update", func() error {
		res, err := s.create.s.ExecContext(ctx, s.create.bind(a)...)
		if err != nil {
			if s.d.IsDuplicate(err) {
				// Possible only where the dialect's upsert cannot see a
				// row inserted concurrently: that row is live.
				return fmt.Errorf("%s: update: %w", s.d.Name, sessionkit.ErrExists)
			}
			return s.fail(ctx, "update", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return s.fail(ctx, "update", err)
		}
		if n == 0 {
			return fmt.Errorf("%s: update: %w", s.d.Name, sessionkit.ErrExists)
		}
		return nil
	})
}

// live reports ErrNotFound unless the session is live.
func (s *Store) live(ctx context.Context, op, id string, now int64) error {
	rows, err := s.exists.s.QueryContext(ctx, s.exists.bind(args{id: id, now: now})...)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return s.fail(ctx, op, err)
		}
		return sessionkit.ErrNotFound
	}
	return nil
}

// Touch implements sessionkit.Toucher with one UPDATE guarded by expiry.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.touchAt(ctx, "touch", id, expires.UnixMilli(), nowMilli())
}

func (s *Store) touchAt(ctx context.Context, op, id string, exp, now int64) error {
	n, err := s.execWrite(ctx, op, s.touch, args{id: id, exp: exp, now: now})
	switch {
	case err != nil:
		return err
	case n > 0:
		return nil
	case s.d.UnchangedNotCounted:
		// Zero may mean the deadline was already exp. Checking afterwards
		// is not atomic with the UPDATE, but either answer matches an
		// order of events: the Touch changed nothing either way.
		return s.live(ctx, op, id, now)
	}
	return sessionkit.ErrNotFound
}

// Delete implements sessionkit.Provider.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.write(ctx, "delete", func() error {
		if _, err := s.del.s.ExecContext(ctx, s.del.bind(args{id: id})...); err != nil {
			return s.fail(ctx, "delete", err)
		}
		return nil
	})
}

// Rename implements sessionkit.Provider: in one transaction it drops an
// expired row at newID, if there is one, and rewrites the live row's key,
// so the primary key itself refuses a live newID.
func (s *Store) Rename(ctx context.Context, oldID, newID string, expires time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if oldID == newID {
		return fmt.Errorf("%s: rename to the same ID: %w", s.d.Name, sessionkit.ErrExists)
	}
	a := args{id: oldID, newID: newID, exp: expires.UnixMilli(), now: nowMilli()}
	return s.write(ctx, "rename", func() error {
		return s.inTx(ctx, "rename", func(tx *sql.Tx) error {
			clear := true
			if s.d.ProbeRenameTarget {
				var squat int64
				switch err := tx.StmtContext(ctx, s.renameFind.s).QueryRowContext(ctx, s.renameFind.bind(a)...).Scan(&squat); {
				case errors.Is(err, sql.ErrNoRows):
					clear = false
				case err != nil:
					return s.fail(ctx, "rename", err)
				default:
					clear = squat <= a.now
				}
			}
			if clear {
				if _, err := tx.StmtContext(ctx, s.renameClear.s).ExecContext(ctx, s.renameClear.bind(a)...); err != nil {
					return s.fail(ctx, "rename", err)
				}
			}
			res, err := tx.StmtContext(ctx, s.renameMove.s).ExecContext(ctx, s.renameMove.bind(a)...)
			if err != nil {
				if s.d.IsDuplicate(err) {
					return fmt.Errorf("%s: rename: %w", s.d.Name, sessionkit.ErrExists)
				}
				return s.fail(ctx, "rename", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return s.fail(ctx, "rename", err)
			}
			if n == 0 {
				return sessionkit.ErrNotFound
			}
			return nil
		})
	})
}

// Count implements sessionkit.Counter.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := s.count.s.QueryRowContext(ctx, s.count.bind(args{now: nowMilli()})...).Scan(&n); err != nil {
		return 0, s.fail(ctx, "count", err)
	}
	return n, nil
}

// Range implements sessionkit.Ranger. Rows are streamed, so fn runs while
// a connection is held: fn may call the provider only if the pool has
// another connection free. A row whose data cannot be decoded stops Range
// with an error wrapping sessionkit.ErrCorruptValue.
func (s *Store) Range(ctx context.Context, fn func(id string, r sessionkit.Record) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	rows, err := s.rangeAll.s.QueryContext(ctx, s.rangeAll.bind(args{now: nowMilli()})...)
	if err != nil {
		return s.fail(ctx, "range", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var raw sql.RawBytes
		var exp int64
		if err := rows.Scan(&id, &raw, &exp); err != nil {
			return s.fail(ctx, "range", err)
		}
		values, err := sessionkit.ParsePacked(raw)
		if err != nil {
			return fmt.Errorf("%s: range: %w", s.d.Name, err)
		}
		if !fn(id, sessionkit.Record{Packed: values, Expires: time.UnixMilli(exp)}) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return s.fail(ctx, "range", err)
	}
	return nil
}

// GC implements sessionkit.GarbageCollector. It deletes in batches of at
// most GCBatchSize rows, each its own statement, so no lock is held for
// long, and stops at the first short batch or when ctx is done. The
// cutoff is fixed when GC starts, so sessions expiring meanwhile cannot
// keep it running.
func (s *Store) GC(ctx context.Context) error {
	a := args{now: nowMilli(), limit: s.gcBatch}
	for {
		if err := s.check(ctx); err != nil {
			return err
		}
		n, err := s.execWrite(ctx, "gc", s.gc, a)
		if err != nil {
			return err
		}
		if n < s.gcBatch {
			return nil
		}
	}
}

// Close implements sessionkit.Provider: it releases the prepared
// statements and closes the pool if the store opened it.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.closeStmts()
	if s.releaseGate != nil {
		s.releaseGate()
	}
	if s.ownDB {
		err = errors.Join(err, s.db.Close())
	}
	if err != nil {
		return fmt.Errorf("%s: close: %w", s.d.Name, err)
	}
	return nil
}
