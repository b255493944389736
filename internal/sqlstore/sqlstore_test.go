package sqlstore

import (
	"reflect"
	"strings"
	"testing"
)

func TestCompile(t *testing.T) {
	const tmpl = "INSERT INTO {table} (id, data, expires_at) VALUES (@id, @data, @exp) WHERE {table}.expires_at <= @now OR @now = 0 -- {index}"
	for _, c := range []struct {
		style, want string
		params      []param
	}{
		{"$", "INSERT INTO s.t (id, data, expires_at) VALUES ($1, $2, $3) WHERE s.t.expires_at <= $4 OR $4 = 0 -- t_expires_idx", []param{pID, pData, pExp, pNow}},
		{"?", "INSERT INTO s.t (id, data, expires_at) VALUES (?1, ?2, ?3) WHERE s.t.expires_at <= ?4 OR ?4 = 0 -- t_expires_idx", []param{pID, pData, pExp, pNow}},
		{"", "INSERT INTO s.t (id, data, expires_at) VALUES (?, ?, ?) WHERE s.t.expires_at <= ? OR ? = 0 -- t_expires_idx", []param{pID, pData, pExp, pNow, pNow}},
	} {
		st, err := compile(tmpl, "s.t", c.style)
		if err != nil {
			t.Fatal(err)
		}
		if st.query != c.want || !reflect.DeepEqual(st.params, c.params) {
			t.Errorf("style %q:\n got %s %v\nwant %s %v", c.style, st.query, st.params, c.want, c.params)
		}
	}
	st, _ := compile("SELECT @now, @id, @now", "t", "")
	if got := st.bind(args{id: "x", now: 7}); !reflect.DeepEqual(got, []any{int64(7), "x", int64(7)}) {
		t.Errorf("bind = %v", got)
	}
	if _, err := compile("SELECT @nope", "t", "$"); err == nil || !strings.Contains(err.Error(), "@nope") {
		t.Errorf("unknown parameter: err = %v", err)
	}
}

// TestDialectStatements compiles every shared statement in each style, so
// a typo in a parameter name fails here rather than at Open.
func TestDialectStatements(t *testing.T) {
	for _, tmpl := range []string{getSQL, existsSQL, saveSQL, swapSQL, touchSQL, deleteSQL, countSQL, rangeSQL, renameFindSQL, renameClearSQL, renameMoveSQL} {
		for _, style := range []string{"$", "?", ""} {
			st, err := compile(tmpl, "t", style)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(st.query, "@{}") {
				t.Errorf("%q left a marker in %q", tmpl, st.query)
			}
		}
	}
}

// TestStatementsListsEveryStatement checks that statements, the list
// setup prepares and Close releases, holds every statement field of
// Store: one left out was prepared and never closed.
func TestStatementsListsEveryStatement(t *testing.T) {
	var s Store
	listed := map[**stmt]bool{}
	for _, x := range s.statements() {
		listed[x.dst] = true
	}
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Type() != reflect.TypeFor[*stmt]() {
			continue
		}
		if p := (**stmt)(f.Addr().UnsafePointer()); !listed[p] {
			t.Errorf("Store.%s is not in statements(): Close would never release it", v.Type().Field(i).Name)
		}
	}
	if len(listed) == 0 {
		t.Fatal("statements() is empty")
	}
}

func TestValidateTable(t *testing.T) {
	good := []struct {
		name      string
		qualified bool
		want      string
	}{
		{"", false, DefaultTable},
		{"sessions", false, "sessions"},
		{"_s2", false, "_s2"},
		{"Web_Sessions", false, "Web_Sessions"},
		{"app.sessions", true, "app.sessions"},
		{strings.Repeat("a", 51), false, strings.Repeat("a", 51)},
	}
	for _, c := range good {
		if got, err := ValidateTable(c.name, c.qualified); err != nil || got != c.want {
			t.Errorf("ValidateTable(%q, %v) = %q, %v; want %q", c.name, c.qualified, got, err, c.want)
		}
	}
	for _, c := range []struct {
		name      string
		qualified bool
	}{
		{"app.sessions", false}, {"a.b.c", true}, {".t", true}, {"t.", true},
		{"1t", false}, {"t-1", false}, {"t t", false}, {`"t"`, false}, {"`t`", false},
		{"t;drop", false}, {"tä", false}, {strings.Repeat("a", 52), false},
	} {
		if _, err := ValidateTable(c.name, c.qualified); err == nil {
			t.Errorf("ValidateTable(%q, %v) succeeded, want an error", c.name, c.qualified)
		}
	}
	if got := IndexName("app.sessions"); got != "sessions_expires_idx" {
		t.Errorf("IndexName(app.sessions) = %q", got)
	}
}
