#!/usr/bin/env bash
# compat.sh: vets and tests every package against the newest release of
# each direct dependency checked here (NEWEST below, or the arguments),
# besides go.mod's minimums, which every other test uses. Dependencies
# change behaviour between releases (fasthttp v1.79's ResponseHeader.Set
# drops repeated headers that v1.74's kept), and users get whichever
# release their own module requires. The run is in a temporary copy of
# the tracked files, so go.mod stays as it is. Servers as for `make test`:
# the provider tests read scripts/services.sh's environment, and skip
# loudly without it.
#
# The suite runs once under each Go toolchain in COMPAT_TOOLCHAINS:
# "local" (the machine's Go) and go1.27.3, the newest release the module
# proxy serves here, which the go command fetches once per machine (76
# MB). A newer Go's vet checks more (1.26's printf check flagged a test
# that 1.25's passed), and its runtime and library change under the code.
#
#   scripts/compat.sh                      # NEWEST
#   scripts/compat.sh module@version...    # those instead
#   COMPAT_TOOLCHAINS=local scripts/compat.sh   # the machine's Go only
set -euo pipefail
cd "$(dirname "$0")/.."
NEWEST=(
	github.com/valyala/fasthttp@v1.79.0
	github.com/redis/go-redis/v9@v9.23.0
	github.com/go-sql-driver/mysql@v1.10.2
)
if [ $# -gt 0 ]; then
	NEWEST=("$@")
fi
read -r -a TOOLCHAINS <<<"${COMPAT_TOOLCHAINS:-local go1.27.3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$tmp"
cd "$tmp"
go get "${NEWEST[@]}" >/dev/null
go mod tidy >/dev/null
echo "compat: $(go list -m -f '{{.Path}} {{.Version}}' "${NEWEST[@]%@*}" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
for tc in "${TOOLCHAINS[@]}"; do
	echo "compat: $(GOTOOLCHAIN=$tc go env GOVERSION)"
	GOTOOLCHAIN=$tc go vet ./...
	GOTOOLCHAIN=$tc go test -count=1 ./...
done
