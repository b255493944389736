package sqlite3

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/internal/sqlstore"
	"github.com/sessionkit/sessionkit/internal/sqlstore/sqlstoretest"
	"github.com/sessionkit/sessionkit/providertest"
)

var bg = context.Background()

// open returns a provider on a fresh database file in a temporary
// directory, closed when the test ends.
func open(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Path == "" && cfg.DB == nil {
		cfg.Path = filepath.Join(t.TempDir(), "sessions.db")
	}
	p, err := New(bg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, Config{Table: "t_" + providertest.UniquePrefix(t)})
	})
}

// TestSharedFile runs the suite with every provider on one file, each
// with its own table, as several stores of one application would be.
func TestSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return open(t, Config{Path: path, Table: "t_" + providertest.UniquePrefix(t)})
	})
}

func TestRegistered(t *testing.T) {
	p, err := driver.Open(bg, &Config{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := driver.Open(bg, nil); err == nil || !strings.Contains(err.Error(), "Path") {
		t.Fatalf("Open(nil) = %v, want an error asking for a Path", err)
	}
	found := false
	for _, n := range sessionkit.Drivers() {
		found = found || n == Name
	}
	if !found {
		t.Fatalf("%q not among the registered drivers %v", Name, sessionkit.Drivers())
	}
}

func TestConfigErrors(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	sqlstoretest.ConfigErrors(t, Name, map[string]Config{
		"memory":            {Path: ":memory:"},
		"file URI":          {Path: "file::memory:?cache=shared"},
		"question mark":     {Path: filepath.Join(dir, "a?b.db")},
		"both":              {Path: filepath.Join(dir, "a.db"), DB: db},
		"bad table":         {Path: filepath.Join(dir, "a.db"), Table: "sessions; DROP TABLE x"},
		"qualified table":   {Path: filepath.Join(dir, "a.db"), Table: "main.sessions"},
		"digit table":       {Path: filepath.Join(dir, "a.db"), Table: "1sessions"},
		"long table":        {Path: filepath.Join(dir, "a.db"), Table: strings.Repeat("t", 52)},
		"negative batch":    {Path: filepath.Join(dir, "a.db"), GCBatchSize: -1},
		"negative busy":     {Path: filepath.Join(dir, "a.db"), BusyTimeout: -time.Second},
		"pool with DB":      {DB: db, MaxOpenConns: 3},
		"busy with DB":      {DB: db, BusyTimeout: time.Second},
		"missing directory": {Path: filepath.Join(dir, "no", "such", "dir", "s.db")},
	}, func(c Config) (io.Closer, error) { return New(bg, c) })
	if _, err := driver.Open(bg, wrongConfig{}); err == nil {
		t.Error("Open with another provider's config succeeded")
	}
}

type wrongConfig struct{}

func (wrongConfig) ProviderName() string { return "other" }

// TestPersistence writes with one provider, closes it, and reads back
// through a new one on the same file, as after a restart.
func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "persist.db")
	p1, err := New(bg, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	id := providertest.ID()
	exp := time.Now().Add(time.Hour)
	if err := p1.Update(bg, id, sessionkit.Update{Create: true, Set: map[string][]byte{"user": []byte("ada")}, Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	p2 := open(t, Config{Path: path})
	r, err := p2.Get(bg, id)
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if string(r.Map()["user"]) != "ada" || r.Expires.Sub(exp).Abs() > time.Millisecond {
		t.Fatalf("after reopening: %q, %v; want user=ada, %v", r.Map(), r.Expires, exp)
	}
}

func TestWAL(t *testing.T) {
	p := open(t, Config{})
	var mode string
	if err := p.s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

// TestCallerDB checks a caller's pool: Open switches it to WAL, the
// provider works on it, and Close leaves it open.
func TestCallerDB(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "caller.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := New(bg, Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	id := providertest.ID()
	if err := p.Update(bg, id, sessionkit.Update{Create: true, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(bg, id); !errors.Is(err, sessionkit.ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + sqlstore.DefaultTable).Scan(&n); err != nil || n != 1 {
		t.Fatalf("caller's pool after Close: %d rows, %v; want 1 row and the pool still open", n, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("caller's database journal_mode = %q, %v; want wal", mode, err)
	}
}

// TestCallerDBConcurrent runs the suite on a caller's pool opened without
// _txlock=immediate: transactions must still take the write lock in a
// way that waits rather than fails.
func TestCallerDBConcurrent(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "caller.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		p, err := New(bg, Config{DB: db, Table: "t_" + providertest.UniquePrefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

func TestCorruptRow(t *testing.T) {
	p := open(t, Config{})
	sqlstoretest.Corrupt(t, p, func(id string) {
		if _, err := p.s.DB().Exec("UPDATE "+sqlstore.DefaultTable+" SET data = ? WHERE id = ?", []byte("\xffgarbage"), id); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGCBatches(t *testing.T) {
	p := open(t, Config{GCBatchSize: 7})
	sqlstoretest.GCBatches(t, p, 100, func() int {
		var n int
		if err := p.s.DB().QueryRow("SELECT COUNT(*) FROM " + sqlstore.DefaultTable).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// TestGCUsesIndex checks the query plan of the GC statement: the expired
// rows must be found through the expiry index, not by scanning the table.
func TestGCUsesIndex(t *testing.T) {
	p := open(t, Config{})
	db := p.s.DB()
	now := time.Now().UnixMilli()
	if _, err := db.Exec(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM g WHERE n < 5000)
		INSERT INTO `+sqlstore.DefaultTable+` (id, data, expires_at) SELECT 'session-' || n, x'01', ? + (n - 50) * 1000 FROM g`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("ANALYZE"); err != nil {
		t.Fatal(err)
	}
	q, args := p.s.GCStatement(time.Now())
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	idx := sqlstore.IndexName(sqlstore.DefaultTable)
	if !strings.Contains(text, "USING COVERING INDEX "+idx) && !strings.Contains(text, "USING INDEX "+idx) {
		t.Fatalf("GC plan does not use %s:\n%s", idx, text)
	}
	if strings.Contains(text, "SCAN "+sqlstore.DefaultTable) && !strings.Contains(text, "SCAN "+sqlstore.DefaultTable+" USING") {
		t.Fatalf("GC plan scans the whole table:\n%s", text)
	}
	t.Logf("GC plan:\n%s", text)
}

func BenchmarkProvider(b *testing.B) { providertest.BenchProvider(b, open(b, Config{})) }

// TestCancelWhileBlocked holds the database's write lock from another
// pool; SQLite cannot interrupt a wait for the lock, so the Update gives
// up when its busy timeout ends, reporting the deadline that passed.
func TestCancelWhileBlocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	p := open(t, Config{Path: path, BusyTimeout: time.Second})
	other, err := sql.Open("sqlite3", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sqlstoretest.CancelWhileBlocked(t, p, func(string) func() {
		tx, err := other.Begin()
		if err != nil {
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
// one table of one database file, as processes of one host would share
// it.
func TestSharedStore(t *testing.T) {
	providertest.RunShared(t, func(t *testing.T) (sessionkit.Provider, sessionkit.Provider) {
		cfg := Config{Path: filepath.Join(t.TempDir(), "shared.db"), Table: "t_" + providertest.UniquePrefix(t)}
		return open(t, cfg), open(t, cfg)
	})
}

// TestCallerDBInMemory checks that New refuses a caller's pool on a
// database without a file: each connection would have its own, and calls
// on any but the one that created the table would fail with "no such
// table". A pool on a file is accepted (TestCallerDB).
func TestCallerDBInMemory(t *testing.T) {
	for _, dsn := range []string{":memory:", "", "file::memory:", "file:mem?mode=memory", "file::memory:?cache=shared"} {
		db, err := sql.Open("sqlite3", dsn)
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(bg, Config{DB: db})
		if err == nil {
			_ = p.Close()
			t.Errorf("New on a pool opened with %q succeeded, want an error asking for a database file", dsn)
		} else if !strings.HasPrefix(err.Error(), Name+": ") || !strings.Contains(err.Error(), "in memory or temporary") || !strings.Contains(err.Error(), "database file") {
			t.Errorf("New on a pool opened with %q: %v; want an error saying the database is in memory or temporary and asking for a file", dsn, err)
		} else {
			t.Logf("%q: %v", dsn, err)
		}
		_ = db.Close()
	}
}

// TestConcurrentRenamesTwoPools renames sessions on one database file
// through two pools, as two processes do, whose writers no in-process
// queue orders: a Rename whose transaction read before writing could not
// take the write lock once the other pool's writer had it ("database is
// locked", with no wait), where one that writes first waits its turn.
func TestConcurrentRenamesTwoPools(t *testing.T) {
	path := filepath.Join(t.TempDir(), "two.db") + "?_busy_timeout=10000"
	var ps [2]*Provider
	for i := range ps {
		db, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if ps[i], err = New(bg, Config{DB: db}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ps[i].Close() })
	}
	providertest.RenameBurst(t, 16, 100, ps[0], ps[1])
}
