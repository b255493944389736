package providertest

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/sessionkit/sessionkit"
)

// runClientSide is the part of the suite that applies to providers that
// keep sessions in the cookie.
func runClientSide(t *testing.T, open func(t *testing.T) sessionkit.Provider) {
	cases := []struct {
		name string
		fn   func(t *testing.T, p sessionkit.ClientSide)
	}{
		{"ClientRoundTrip", testClientRoundTrip},
		{"ClientRecordForms", testClientRecordForms},
		{"ClientBinarySafe", testClientBinarySafe},
		{"ClientTooLarge", testClientTooLarge},
		{"ClientTamper", testClientTamper},
		{"ClientNameBinding", testClientNameBinding},
		{"ClientExpired", testClientExpired},
		{"ClientJunk", testClientJunk},
		{"ClientClose", testClientClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t).(sessionkit.ClientSide))
		})
	}
}

func seal(t *testing.T, p sessionkit.ClientSide, name, id string, values map[string][]byte, exp time.Time) string {
	t.Helper()
	v, err := p.SealSession(name, id, sessionkit.Record{Values: values, Expires: exp})
	if err != nil {
		t.Fatalf("SealSession: %v", err)
	}
	return v
}

func testClientRoundTrip(t *testing.T, p sessionkit.ClientSide) {
	id, exp := ID(), Later()
	v := seal(t, p, "sid", id, Values("a", "1", "b", "two"), exp)
	gotID, r, err := p.OpenSession("sid", v)
	if err != nil {
		t.Fatal(err)
	}
	if gotID != id {
		t.Fatalf("ID %q came back as %q", id, gotID)
	}
	wantValues(t, r, Values("a", "1", "b", "two"))
	if r.Expires.Sub(exp).Abs() > time.Second {
		t.Fatalf("Expires %v came back as %v", exp, r.Expires)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			t.Fatalf("sealed value is not cookie-safe at %d: %q", i, v)
		}
	}
}

// testClientRecordForms: the manager seals Records that hold their values
// packed (Record.Packed, Values nil), and sessions with no values at all;
// both must open to what was sealed.
func testClientRecordForms(t *testing.T, p sessionkit.ClientSide) {
	vals := Values("a", "1", "b", "two")
	for _, tc := range []struct {
		name string
		r    sessionkit.Record
		want map[string][]byte
	}{
		{"packed", sessionkit.Record{Packed: sessionkit.Pack(vals)}, vals},
		{"no values", sessionkit.Record{}, map[string][]byte{}},
	} {
		tc.r.Expires = Later()
		v, err := p.SealSession("sid", ID(), tc.r)
		if err != nil {
			t.Fatalf("%s: SealSession: %v", tc.name, err)
		}
		_, r, err := p.OpenSession("sid", v)
		if err != nil {
			t.Fatalf("%s: OpenSession: %v", tc.name, err)
		}
		wantValues(t, r, tc.want)
	}
}

func testClientBinarySafe(t *testing.T, p sessionkit.ClientSide) {
	v := map[string][]byte{"\x00c": {0, 255}, "empty": {}, "ünï ✓": []byte("a\x00b\nc")}
	_, r, err := p.OpenSession("sid", seal(t, p, "sid", ID(), v, Later()))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, r, v)
}

func testClientTooLarge(t *testing.T, p sessionkit.ClientSide) {
	big := make([]byte, 8<<10)
	_, _ = rand.Read(big)
	if _, err := p.SealSession("sid", ID(), sessionkit.Record{Values: map[string][]byte{"big": big}, Expires: Later()}); err == nil {
		t.Fatal("an 8 KiB session was sealed into a cookie; browsers drop cookies over 4096 bytes")
	}
	// A modest session fits.
	seal(t, p, "sid", ID(), map[string][]byte{"v": bytes.Repeat([]byte("x"), 1000)}, Later())
}

func testClientTamper(t *testing.T, p sessionkit.ClientSide) {
	v := seal(t, p, "sid", ID(), Values("role", "user"), Later())
	for i := 0; i < len(v); i++ {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, _, err := p.OpenSession("sid", string(b)); err == nil {
			t.Fatalf("a value changed at byte %d opened", i)
		}
	}
	for _, cut := range []int{1, len(v) / 2, len(v) - 1} {
		if _, _, err := p.OpenSession("sid", v[:cut]); err == nil {
			t.Fatalf("a value cut to %d bytes opened", cut)
		}
	}
}

func testClientNameBinding(t *testing.T, p sessionkit.ClientSide) {
	v := seal(t, p, "a", ID(), Values("k", "v"), Later())
	if _, _, err := p.OpenSession("b", v); err == nil {
		t.Fatal("a value sealed for cookie a opened as cookie b")
	}
}

func testClientExpired(t *testing.T, p sessionkit.ClientSide) {
	v := seal(t, p, "sid", ID(), Values("k", "v"), time.Now().Add(expiryUnit))
	time.Sleep(expiryUnit + 500*time.Millisecond)
	if _, _, err := p.OpenSession("sid", v); err == nil {
		t.Fatal("a session past its deadline opened")
	}
}

func testClientJunk(t *testing.T, p sessionkit.ClientSide) {
	for _, v := range []string{"", "x", "....", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ID(), string(make([]byte, 5000))} {
		if _, _, err := p.OpenSession("sid", v); err == nil {
			t.Fatalf("junk %q opened", v)
		}
	}
}

func testClientClose(t *testing.T, p sessionkit.ClientSide) {
	v := seal(t, p, "sid", ID(), Values("k", "v"), Later())
	if err := p.(sessionkit.Provider).Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.OpenSession("sid", v); err == nil {
		t.Fatal("OpenSession after Close succeeded")
	}
	if _, err := p.SealSession("sid", ID(), sessionkit.Record{Values: Values("k", "v"), Expires: Later()}); err == nil {
		t.Fatal("SealSession after Close succeeded")
	}
}
