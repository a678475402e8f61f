#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZ_TIME each. The targets are found by scanning the test files
# for `func FuzzXxx(`, so a new target is fuzzed without anyone having to list it here. go test -fuzz takes
# one target and one package per run, hence the loop.
set -euo pipefail
cd "$(dirname "$0")/.."
go="${GO:-go}"
fuzz_time="${FUZZ_TIME:-20s}"

targets=$(grep -rHoE '^func Fuzz[A-Za-z0-9_]*\(' --include='*_test.go' cmd internal |
  sed -E 's|^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|./\1 \2|' | sort -u)
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets found under cmd/ or internal/" >&2
  exit 1
fi
n=$(wc -l <<<"$targets")
i=0
while read -r pkg name; do
  i=$((i + 1))
  echo "fuzz: [$i/$n] $pkg $name ($fuzz_time)"
  "$go" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzz_time"
done <<<"$targets"
echo "fuzz: all $n targets ran"
