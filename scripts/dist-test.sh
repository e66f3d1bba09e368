#!/usr/bin/env bash
# Tests a `make dist` tarball the way a bare-metal host without Swift sees it:
# extracts it into a temp dir and runs the packed binary with a clean
# environment (env -i: PATH=/usr/sbin:/usr/bin:/sbin:/bin, so no /opt/swift...,
# and no LD_LIBRARY_PATH).
#
#   scripts/dist-test.sh dist/edge-0.1.0-dev-linux-x86_64.tar.gz
set -euo pipefail
tarball=$(realpath "${1:?usage: scripts/dist-test.sh dist/edge-VERSION-linux-ARCH.tar.gz}")
tmp=$(mktemp -d /tmp/edge-dist-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xzf "$tarball"
root=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -1)
cd "$root"
clean() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$tmp" "$@"; }
fail() { echo "dist-test: FAIL: $*" >&2; exit 1; }

for f in bin/edge tuning/throughput.conf tuning/latency.conf tuning/many-connections.conf \
         tuning/limits.d/edge.conf tuning/edge.service examples/edge.yaml; do
  [ -e "$f" ] || fail "missing $f in the tarball"
done

# No Swift runtime libraries may be needed from outside the tarball.
if ldd bin/edge | grep -E 'libswift|libFoundation|lib_FoundationICU|libdispatch|not found'; then
  fail "bin/edge still needs the libraries above"
fi
echo "ok   bin/edge links only system libraries: $(ldd bin/edge | awk '{print $1}' | tr '\n' ' ')"

out=$(clean bin/edge version) || fail "bin/edge version"
echo "ok   $out"
out=$(clean bin/edge validate --config examples/edge.yaml) || fail "validate: $out"
echo "ok   validate: $out"

# tune check must find the profiles next to the binary (bin/../tuning); exit 0 or 1, not 2.
set +e
out=$(clean bin/edge tune check --profile latency 2>&1); rc=$?
set -e
[ "$rc" -le 1 ] || fail "tune check exited $rc: $out"
echo "$out" | head -1 | grep -q "($root/tuning/latency.conf)" || fail "tune check did not use $root/tuning: $(echo "$out" | head -1)"
echo "ok   tune check reads $root/tuning (exit $rc)"
clean bin/edge tune apply --profile throughput --dry-run --dir tuning >/dev/null || fail "tune apply --dry-run"
echo "ok   tune apply --dry-run"
echo "dist-test: PASS ($(basename "$tarball"))"
