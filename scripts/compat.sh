#!/usr/bin/env bash
# compat.sh: vets and tests the packages that use fasthttp against its
# newest release checked here, besides go.mod's minimum (which every other
# test uses). fasthttp changes behaviour between releases (v1.79's
# ResponseHeader.Set drops repeated headers that v1.74's kept), and users
# get whichever release their own module requires. The run is in a
# temporary copy of the tracked files, so go.mod stays as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
newest="${FASTHTTP_NEWEST:-v1.79.0}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$tmp"
cd "$tmp"
go get "github.com/valyala/fasthttp@$newest" >/dev/null
go mod tidy >/dev/null
echo "compat: $(go list -m github.com/valyala/fasthttp)"
pkgs=(. ./memory ./providertest ./integration ./cmd/sessionkit-load)
go vet "${pkgs[@]}"
go test -count=1 "${pkgs[@]}"
