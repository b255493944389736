package postgres

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sqlstore"
	"github.com/sessionkit/sessionkit/internal/sqlstore/sqlstoretest"
	"github.com/sessionkit/sessionkit/providertest"
)

var bg = context.Background()

func dsn() string {
	return providertest.Env("SESSIONKIT_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/sessionkit_test?sslmode=disable")
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
		providertest.ServerUnavailable(t, "PostgreSQL (SESSIONKIT_POSTGRES_DSN)", adminErr)
	}
	return adminDB
}

func connect() (*sql.DB, error) {
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	db, err := sql.Open("postgres", dsn())
	if err != nil {
		return nil, err
	}
	err = db.PingContext(ctx)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "3D000" { // invalid_catalog_name
		if err = createDatabase(ctx); err == nil {
			err = db.PingContext(ctx)
		}
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	db.SetMaxOpenConns(8)
	return db, nil
}

// createDatabase creates the database the DSN names, connecting to the
// "postgres" maintenance database to do it.
func createDatabase(ctx context.Context) error {
	name, maint, err := maintenanceDSN(dsn())
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", maint)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // duplicate_database: created meanwhile
		err = nil
	}
	return err
}

func maintenanceDSN(dsn string) (dbname, maint string, err error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", err
		}
		dbname = strings.TrimPrefix(u.Path, "/")
		u.Path = "/postgres"
		return dbname, u.String(), nil
	}
	for _, kv := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(kv, "dbname="); ok {
			dbname = v
		}
	}
	return dbname, dsn + " dbname=postgres", nil
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

func TestSchemaQualified(t *testing.T) {
	db := admin(t)
	schema := providertest.UniquePrefix(t)
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	p := open(t, Config{Table: schema + ".sessions"})
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"a": []byte("1")}, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + schema + ".sessions").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows in %s.sessions = %d, %v; want 1", schema, n, err)
	}
	var idx string
	if err := db.QueryRow("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'sessions' AND indexdef LIKE '%(expires_at)'", schema).Scan(&idx); err != nil {
		t.Fatalf("expiry index in schema %s: %v", schema, err)
	}
}

func TestConfigErrors(t *testing.T) {
	db := admin(t)
	sqlstoretest.ConfigErrors(t, Name, map[string]Config{
		"none":            {},
		"both":            {DSN: dsn(), DB: db},
		"bad table":       {DSN: dsn(), Table: "s; DROP TABLE x"},
		"quoted table":    {DSN: dsn(), Table: `"s"`},
		"two qualifiers":  {DSN: dsn(), Table: "a.b.c"},
		"empty part":      {DSN: dsn(), Table: "a."},
		"negative batch":  {DSN: dsn(), GCBatchSize: -5},
		"pool with DB":    {DB: db, MaxIdleConns: 2},
		"lifetime w/ DB":  {DB: db, ConnMaxLifetime: time.Minute},
		"malformed DSN":   {DSN: "postgres://%zz"},
		"missing schema":  {DSN: dsn(), Table: "no_such_schema_x.sessions"},
		"unknown dsn key": {DSN: "host=127.0.0.1 no_such_option=1"},
	}, func(c Config) (io.Closer, error) { return New(bg, c) })
	if _, err := driver.Open(bg, wrongConfig{}); err == nil {
		t.Error("Open with another provider's config succeeded")
	}
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
	p, err := New(ctx, Config{DSN: "postgres://postgres@" + addr + "/x?sslmode=disable"})
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
	p, err := driver.Open(bg, &Config{DSN: dsn(), Table: "t_" + providertest.UniquePrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin(t).Exec("DROP TABLE IF EXISTS " + p.(*Provider).s.Table()) })
	defer p.Close()
	found := false
	for _, n := range sessionkit.Drivers() {
		found = found || n == Name
	}
	if !found {
		t.Fatalf("%q not among the registered drivers %v", Name, sessionkit.Drivers())
	}
}

func TestCorruptRow(t *testing.T) {
	p := open(t, Config{})
	sqlstoretest.Corrupt(t, p, func(id string) {
		if _, err := admin(t).Exec("UPDATE "+p.s.Table()+" SET data = $1 WHERE id = $2", []byte("\xffgarbage"), id); err != nil {
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
// of 20,000 rows of which 1% have expired: the planner must find them
// through the expiry index. The parameters are bound as GC binds them.
func TestGCUsesIndex(t *testing.T) {
	p := open(t, Config{})
	db := admin(t)
	table := p.s.Table()
	if _, err := db.Exec(`INSERT INTO `+table+` (id, data, expires_at)
		SELECT 'session-' || g, '\x01'::bytea, $1::bigint + (g - 200) * 1000 FROM generate_series(1, 20000) g`, time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("ANALYZE " + table); err != nil {
		t.Fatal(err)
	}
	q, args := p.s.GCStatement(time.Now())
	plan := explain(t, db, q, args)
	idx := sqlstore.IndexName(table)
	if !strings.Contains(plan, idx) {
		t.Fatalf("GC plan does not use %s:\n%s", idx, plan)
	}
	if strings.Contains(plan, "Seq Scan") {
		t.Fatalf("GC plan scans the table:\n%s", plan)
	}
	t.Logf("GC plan:\n%s", plan)
}

func explain(t *testing.T, db *sql.DB, q string, args []any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func BenchmarkProvider(b *testing.B) { providertest.BenchProvider(b, open(b, Config{})) }

func TestCancelWhileBlocked(t *testing.T) {
	p := open(t, Config{})
	sqlstoretest.CancelWhileBlocked(t, p, func(id string) func() {
		tx, err := admin(t).Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("SELECT 1 FROM "+p.s.Table()+" WHERE id = $1 FOR UPDATE", id); err != nil {
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

// TestCloseReleasesStatements opens and closes the provider on a pool the
// caller owns, which outlives it: every statement the provider prepared
// must be gone from the pool's connection afterwards.
func TestCloseReleasesStatements(t *testing.T) {
	db := admin(t)
	pool, err := sql.Open("postgres", dsn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	pool.SetMaxOpenConns(1) // every statement on the connection counted below
	prepared := func() int {
		var n int
		if err := pool.QueryRow("SELECT COUNT(*) FROM pg_prepared_statements").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := prepared()
	table := "t_" + providertest.UniquePrefix(t)
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + table) })
	for range 3 {
		p, err := New(bg, Config{DB: pool, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		if n := prepared(); n <= before {
			t.Fatalf("%d statements prepared with the provider open, %d before: the count does not see them", n, before)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := prepared(); after != before {
		t.Errorf("%d statements prepared on the caller's connection before three New and Close, %d after", before, after)
	}
}
