#!/usr/bin/env bash
# Syntax-checks the k6 scripts with node (k6 itself is not in Debian's archive):
# each file is copied to a .mjs so node parses it as an ES module. Imports
# (k6/http, ./common.js) are not resolved: this checks syntax only.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "check-syntax: node not found (apt-get install nodejs)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rc=0
for f in *.js; do
  cp "$f" "$tmp/${f%.js}.mjs"
  if node --check "$tmp/${f%.js}.mjs"; then echo "ok   $f"; else echo "FAIL $f"; rc=1; fi
done
exit $rc
