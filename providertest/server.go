package providertest

import (
	"fmt"
	"os"
	"testing"
)

// Env returns the environment variable name, or def if it is unset or
// empty. Provider tests read their server addresses this way (for example
// SESSIONKIT_REDIS_ADDR), with defaults that match scripts/services.sh.
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// InCI reports whether the tests run in CI (CI=true), where a missing
// server is a failure rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// ServerUnavailable ends a test whose server cannot be reached. Outside CI
// it skips, loudly, so a developer without the server can still run the
// rest; with CI=true it fails, so CI never passes by skipping a provider.
func ServerUnavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not reachable (%v); start it with `scripts/services.sh up` and export what `scripts/services.sh env` prints", what, err)
	if InCI() {
		t.Fatal("CI=true: " + msg)
	}
	fmt.Fprintf(os.Stderr, "\n!!! SKIPPING %s: %s\n\n", t.Name(), msg)
	t.Skip("SKIPPED: " + msg)
}
