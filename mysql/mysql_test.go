package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sqlstore"
	"github.com/sessionkit/sessionkit/internal/sqlstore/sqlstoretest"
	"github.com/sessionkit/sessionkit/providertest"
)

var bg = context.Background()

func dsn() string {
	return providertest.Env("SESSIONKIT_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/sessionkit_test?parseTime=true")
}

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
)

// admin returns a pool for the tests' own raw SQL, creating the test
// database first if it is missing. It ends the test if the server is
// unreachable.
func admin(t testing.TB) *sql.DB {
	t.Helper()
	adminOnce.Do(func() { adminDB, adminErr = connect() })
	if adminErr != nil {
		providertest.ServerUnavailable(t, "MySQL (SESSIONKIT_MYSQL_DSN)", adminErr)
	}
	return adminDB
}

func connect() (*sql.DB, error) {
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	cfg, err := mysql.ParseDSN(dsn())
	if err != nil {
		return nil, err
	}
	if err := createDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", dsn())
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	db.SetMaxOpenConns(8)
	return db, nil
}

// createDatabase creates the database the DSN names, connecting without
// one to do it.
func createDatabase(ctx context.Context, cfg *mysql.Config) error {
	name := cfg.DBName
	cfg = cfg.Clone()
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "``")+"`")
	return err
}

// open returns a provider on a table of its own, dropped when the test
// ends.
func open(t testing.TB, cfg Config) *Provider {
	t.Helper()
	db := admin(t)
	if cfg.DSN == "" && cfg.DB == nil {
		cfg.DSN = dsn()
	}
	if cfg.Table == "" {
		cfg.Table = "t_" + providertest.UniquePrefix(t)
	}
	p, err := New(bg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Close()
		if _, err := db.Exec("DROP TABLE IF EXISTS " + cfg.Table); err != nil {
			t.Errorf("dropping %s: %v", cfg.Table, err)
		}
	})
	return p
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, Config{MaxOpenConns: 4})
	})
}

// TestConformanceCallerDB runs the suite with every provider on one
// caller-owned pool, as an application sharing its pool would.
func TestConformanceCallerDB(t *testing.T) {
	db := admin(t)
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, Config{DB: db})
	})
	if err := db.PingContext(bg); err != nil {
		t.Fatalf("caller's pool after the providers closed: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	db := admin(t)
	// The clientFoundRows check runs after the table is created.
	foundRowsTable := "t_" + providertest.UniquePrefix(t)
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + foundRowsTable) })
	sqlstoretest.ConfigErrors(t, Name, map[string]Config{
		"none":            {},
		"both":            {DSN: dsn(), DB: db},
		"bad table":       {DSN: dsn(), Table: "s; DROP TABLE x"},
		"qualified table": {DSN: dsn(), Table: "a.b"},
		"backquoted":      {DSN: dsn(), Table: "`s`"},
		"negative batch":  {DSN: dsn(), GCBatchSize: -5},
		"pool with DB":    {DB: db, MaxOpenConns: 2},
		"malformed DSN":   {DSN: "root@tcp(127.0.0.1:3306"},
		"found rows":      {DSN: withParam(dsn(), "clientFoundRows=true"), Table: foundRowsTable},
	}, func(c Config) (io.Closer, error) { return New(bg, c) })
	if _, err := driver.Open(bg, wrongConfig{}); err == nil {
		t.Error("Open with another provider's config succeeded")
	}
}

func withParam(dsn, kv string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + kv
	}
	return dsn + "?" + kv
}

type wrongConfig struct{}

func (wrongConfig) ProviderName() string { return "other" }

// TestServerDown opens against a port nothing listens on: Open must fail
// promptly with an error that says the server cannot be reached.
func TestServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	p, err := New(ctx, Config{DSN: "root@tcp(" + addr + ")/x"})
	if err == nil {
		_ = p.Close()
		t.Fatal("New succeeded with no server")
	}
	if !strings.Contains(err.Error(), "cannot connect to the database") {
		t.Fatalf("error %q does not say the server is unreachable", err)
	}
}

func TestRegistered(t *testing.T) {
	admin(t)
	table := "t_" + providertest.UniquePrefix(t)
	p, err := driver.Open(bg, &Config{DSN: dsn(), Table: table})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin(t).Exec("DROP TABLE IF EXISTS " + table) })
	defer p.Close()
	found := false
	for _, n := range sessionkit.Drivers() {
		found = found || n == Name
	}
	if !found {
		t.Fatalf("%q not among the registered drivers %v", Name, sessionkit.Drivers())
	}
}

// TestCaseSensitiveIDs guards the binary collation of the id column: IDs
// differing only in case are different sessions.
func TestCaseSensitiveIDs(t *testing.T) {
	p := open(t, Config{})
	lower := "abcdefghijklmnopqrstuvwxyz"
	exp := time.Now().Add(time.Hour)
	for _, id := range []string{lower, strings.ToUpper(lower)} {
		if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"id": []byte(id)}, Expires: exp}); err != nil {
			t.Fatalf("Create of %s: %v", id, err)
		}
	}
	r, err := p.Get(bg, lower)
	if err != nil || string(r.Map()["id"]) != lower {
		t.Fatalf("Get(%s) = %q, %v", lower, r.Map(), err)
	}
}

// TestStatementCounts measures, on a one-connection pool, how many
// statements the server executes for a Get, a Create, a Touch and a write
// made against the session as read (Update.Base): one each, and no
// transaction; a write whose Base is stale falls back to the locking
// transaction. Get's code is shared by every SQL provider, so this covers
// them all; MySQL is the database whose per-session counters make it
// cheap to see.
func TestStatementCounts(t *testing.T) {
	db, err := sql.Open("mysql", dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	p := open(t, Config{DB: db})
	status := func() (questions, begins int) {
		t.Helper()
		rows, err := db.Query("SHOW SESSION STATUS WHERE Variable_name IN ('Questions', 'Com_begin')")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, value string
			if err := rows.Scan(&name, &value); err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(value)
			if name == "Questions" {
				questions = n
			} else {
				begins = n
			}
		}
		return questions, begins
	}
	// The status query counts itself; measure that first.
	q0, _ := status()
	q1, _ := status()
	overhead := q1 - q0
	count := func(op func()) (statements, begins int) {
		q0, b0 := status()
		op()
		q1, b1 := status()
		return q1 - q0 - overhead, b1 - b0
	}
	id := providertest.ID()
	exp := time.Now().Add(time.Hour)
	if n, b := count(func() {
		if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"a": []byte("1")}, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}); n != 1 || b != 0 {
		t.Errorf("Update with Create ran %d statements and %d transactions, want 1 and 0", n, b)
	}
	if n, b := count(func() {
		if _, err := p.Get(bg, id); err != nil {
			t.Fatal(err)
		}
	}); n != 1 || b != 0 {
		t.Errorf("Get ran %d statements and %d transactions, want 1 and 0", n, b)
	}
	if n, b := count(func() {
		if _, err := p.Get(bg, providertest.ID()); !errors.Is(err, sessionkit.ErrNotFound) {
			t.Fatal(err)
		}
	}); n != 1 || b != 0 {
		t.Errorf("Get of a missing session ran %d statements and %d transactions, want 1 and 0", n, b)
	}
	if n, b := count(func() {
		if err := p.Touch(bg, id, exp.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}); n != 1 || b != 0 {
		t.Errorf("Touch ran %d statements and %d transactions, want 1 and 0", n, b)
	}
	read, err := p.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if n, b := count(func() {
		if err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"n": []byte("1")}, Expires: exp, Base: read}); err != nil {
			t.Fatal(err)
		}
	}); n != 1 || b != 0 {
		t.Errorf("Update against the current Base ran %d statements and %d transactions, want 1 and 0", n, b)
	}
	// read is stale now: one UPDATE that matches nothing, then the
	// transaction.
	if n, b := count(func() {
		if err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"n": []byte("2")}, Expires: exp, Base: read}); err != nil {
			t.Fatal(err)
		}
	}); b != 1 || n < 3 {
		t.Errorf("Update against a stale Base ran %d statements and %d transactions, want the swap, then a transaction", n, b)
	}
	if r, err := p.Get(bg, id); err != nil || string(r.Map()["n"]) != "2" || string(r.Map()["a"]) != "1" {
		t.Fatalf("after the writes: %q, %v", r.Map(), err)
	}
}

func TestCorruptRow(t *testing.T) {
	p := open(t, Config{})
	sqlstoretest.Corrupt(t, p, func(id string) {
		if _, err := admin(t).Exec("UPDATE "+p.s.Table()+" SET data = ? WHERE id = ?", []byte("\xffgarbage"), id); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGCBatches(t *testing.T) {
	p := open(t, Config{GCBatchSize: 7})
	sqlstoretest.GCBatches(t, p, 100, func() int {
		var n int
		if err := admin(t).QueryRow("SELECT COUNT(*) FROM " + p.s.Table()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// TestGCUsesIndex checks the query plan of the GC statement on a table
// of 20,000 rows of which 1% have expired: the server must find them
// through the expiry index.
func TestGCUsesIndex(t *testing.T) {
	p := open(t, Config{})
	db := admin(t)
	table := p.s.Table()
	now := time.Now().UnixMilli()
	var b strings.Builder
	args := make([]any, 0, 2*1000)
	for start := 0; start < 20000; start += 1000 {
		b.Reset()
		args = args[:0]
		b.WriteString("INSERT INTO " + table + " (id, data, expires_at) VALUES ")
		for i := start; i < start+1000; i++ {
			if i > start {
				b.WriteByte(',')
			}
			b.WriteString("(?, x'01', ?)")
			args = append(args, "session-"+strconv.Itoa(i), now+int64(i-200)*1000)
		}
		if _, err := db.Exec(b.String(), args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("ANALYZE TABLE " + table); err != nil {
		t.Fatal(err)
	}
	q, qargs := p.s.GCStatement(time.Now())
	rows, err := db.Query("EXPLAIN "+q, qargs...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var plan []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range cols {
			row[c] = vals[i].String
		}
		plan = append(plan, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	idx := sqlstore.IndexName(table)
	if len(plan) != 1 || plan[0]["key"] != idx || plan[0]["type"] == "ALL" {
		t.Fatalf("GC plan does not use %s: %v", idx, plan)
	}
	t.Logf("GC plan: %v", plan)
}

func BenchmarkProvider(b *testing.B) { providertest.BenchProvider(b, open(b, Config{})) }

func TestCancelWhileBlocked(t *testing.T) {
	p := open(t, Config{})
	sqlstoretest.CancelWhileBlocked(t, p, func(id string) func() {
		tx, err := admin(t).Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("SELECT 1 FROM "+p.s.Table()+" WHERE id = ? FOR UPDATE", id); err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback() }
	})
}

func TestEdges(t *testing.T) {
	sqlstoretest.Edges(t, open(t, Config{}))
}

func BenchmarkManager(b *testing.B) { providertest.BenchManager(b, open(b, Config{})) }

// TestSharedStore runs providertest.RunShared on pairs of providers over
// one table, as processes of a fleet on one database.
func TestSharedStore(t *testing.T) {
	providertest.RunShared(t, func(t *testing.T) (sessionkit.Provider, sessionkit.Provider) {
		cfg := Config{MaxOpenConns: 4, Table: "t_" + providertest.UniquePrefix(t)}
		return open(t, cfg), open(t, cfg)
	})
}

// TestLargeSessionWrite writes a session of more than half the server's
// packet limit (max_allowed_packet) the way the manager does, with the
// session as read in Update.Base: a write that sent the values twice,
// old and new, would exceed the limit where a plain write does not.
func TestLargeSessionWrite(t *testing.T) {
	var limit int
	if err := admin(t).QueryRow("SELECT @@max_allowed_packet").Scan(&limit); err != nil {
		t.Fatal(err)
	}
	size := min(limit*6/10, 10<<20)
	if 2*size < limit {
		t.Logf("max_allowed_packet is %d: a %d-byte session sent twice fits, so this only checks the write", limit, size)
	}
	p := open(t, Config{})
	id := providertest.ID()
	exp := time.Now().Add(time.Hour)
	big := bytes.Repeat([]byte("x"), size)
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"big": big}, Expires: exp}); err != nil {
		t.Fatalf("create: %v", err)
	}
	base, err := p.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Update(bg, id, sessionkit.Update{Set: map[string][]byte{"b": []byte("2")}, Expires: exp, Base: base}); err != nil {
		t.Fatalf("update of a %d-byte session with its Base (max_allowed_packet %d): %v", size, limit, err)
	}
	r, err := p.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Lookup("b"); string(v) != "2" {
		t.Errorf("b = %q after the update, want 2", v)
	}
	if v, _ := r.Lookup("big"); !bytes.Equal(v, big) {
		t.Errorf("big has %d bytes after the update, want the %d stored", len(v), size)
	}
}

// TestConcurrentRenames renames many new sessions at once, as a burst of
// logins does: sessions that share nothing must not fail each other's
// renames (InnoDB gap locks taken by one rename's transaction made
// another's insertion of its new key a deadlock victim, beyond the
// retries).
func TestConcurrentRenames(t *testing.T) {
	providertest.RenameBurst(t, 32, 40, open(t, Config{MaxOpenConns: 32}))
}
