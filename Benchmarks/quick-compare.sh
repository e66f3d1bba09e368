#!/usr/bin/env bash
# Quick edge vs nginx reverse-proxy comparison (HTTP/1.1, keep-alive, 64-byte body).
#
#   upstream: nginx `return 200` (64 bytes)          pinned to CPU 1
#   proxies : nginx (keepalive 64) and edge (1 worker) pinned to CPU 0
#   client  : wrk -t1 -c64 -d5s --latency            pinned to CPU 1
#
# Runs warm-ups, then 3 interleaved repetitions (nginx, edge, nginx, edge, ...),
# and prints medians of req/s, p50, p99, non-2xx and socket errors plus the
# edge/nginx throughput ratio. All traffic stays on 127.0.0.1. Everything it
# starts is stopped by PID on exit.
#
# Env: EDGE_BIN (default .build/release/edge), DURATION (5s), CONNS (64), REPS (3)
set -euo pipefail
cd "$(dirname "$0")/.."

EDGE_BIN=${EDGE_BIN:-$PWD/.build/release/edge}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
REPS=${REPS:-3}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

for tool in wrk python3 taskset; do
  command -v "$tool" >/dev/null || { echo "quick-compare: $tool not found (make deps)" >&2; exit 1; }
done
[ -x "$NGINX" ] || { echo "quick-compare: nginx not found (make deps)" >&2; exit 1; }
[ -x "$EDGE_BIN" ] || { echo "quick-compare: $EDGE_BIN missing (make build)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/edge-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UPSTREAM_PORT=$(free_port); PROXY_PORT=$(free_port); EDGE_PORT=$(free_port); ADMIN_PORT=$(free_port)

# CPU placement: proxies on the first allowed CPU, client + upstream on the second.
mapfile -t CPUS < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
if [ "${#CPUS[@]}" -ge 2 ]; then
  PROXY_CPU=${CPUS[0]}; LOAD_CPU=${CPUS[1]}
  PROXY_PIN=(taskset -c "$PROXY_CPU")
  LOAD_PIN=(taskset -c "$LOAD_CPU")
  echo "CPU placement: proxies on CPU $PROXY_CPU, upstream + wrk on CPU $LOAD_CPU"
else
  PROXY_PIN=(); LOAD_PIN=()
  echo "WARNING: only one CPU allowed (${CPUS[*]}); running unpinned, numbers are not meaningful" >&2
fi

render() {  # template → file
  sed -e "s|@TMP@|$TMP|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@PROXY_PORT@|$PROXY_PORT|g" "$1" > "$2"
}
render Benchmarks/nginx/upstream.conf.in "$TMP/upstream.conf"
render Benchmarks/nginx/proxy.conf.in "$TMP/proxy.conf"

cat > "$TMP/edge.yaml" <<YAML
runtime:
  workers: 1
  drain_timeout: 5s
admin:
  address: "127.0.0.1:$ADMIN_PORT"
listeners:
  - name: bench
    address: "127.0.0.1:$EDGE_PORT"
    protocol: http
    routes:
      - match: { path_prefix: "/" }
        cluster: nginx
clusters:
  - name: nginx
    endpoints: [ "127.0.0.1:$UPSTREAM_PORT" ]
    max_idle: 64
YAML

wait_port() {  # port name
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "quick-compare: $2 did not start listening on $1" >&2; exit 1
}

# taskset execs the program, so $! is the server's own PID (stopped by PID in cleanup).
"${LOAD_PIN[@]}" "$NGINX" -e "$TMP/nginx-upstream.error.log" -p "$TMP" -c "$TMP/upstream.conf" & PIDS+=($!)
"${PROXY_PIN[@]}" "$NGINX" -e "$TMP/nginx-proxy.error.log" -p "$TMP" -c "$TMP/proxy.conf" & PIDS+=($!)
"${PROXY_PIN[@]}" "$EDGE_BIN" run --config "$TMP/edge.yaml" 2>"$TMP/edge.stderr" & PIDS+=($!)
wait_port "$UPSTREAM_PORT" "nginx upstream"
wait_port "$PROXY_PORT" "nginx proxy"
wait_port "$EDGE_PORT" "edge"

# Sanity: both proxies return the upstream body.
for port in "$PROXY_PORT" "$EDGE_PORT"; do
  body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/")
  [ "${#body}" -eq 64 ] || { echo "quick-compare: bad response via port $port: '$body'" >&2; exit 1; }
done

run_wrk() {  # port duration → wrk output
  "${LOAD_PIN[@]}" timeout 60 wrk -t1 -c"$CONNS" -d"$1" --latency "http://127.0.0.1:$2/" 2>&1 || true
}

echo "warming up (2s each)..."
run_wrk 2s "$PROXY_PORT" >/dev/null
run_wrk 2s "$EDGE_PORT" >/dev/null

for rep in $(seq 1 "$REPS"); do
  for target in nginx edge; do
    port=$PROXY_PORT; [ "$target" = edge ] && port=$EDGE_PORT
    echo "rep $rep: $target"
    run_wrk "$DURATION" "$port" > "$TMP/wrk.$target.$rep.txt"
  done
done

python3 - "$TMP" "$REPS" <<'PY'
import re, statistics, sys
tmp, reps = sys.argv[1], int(sys.argv[2])

def to_us(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n, u = float(m.group(1)), m.group(2)
    return n * {"us": 1, "ms": 1e3, "s": 1e6}[u]

def parse(path):
    t = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
    p50 = re.search(r"^\s+50%\s+(\S+)", t, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", t, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": to_us(p50.group(1)) if p50 else float("nan"),
        "p99": to_us(p99.group(1)) if p99 else float("nan"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "sockerr": sum(map(int, sock.groups())) if sock else 0,
    }

rows = {}
for target in ("nginx", "edge"):
    runs = [parse(f"{tmp}/wrk.{target}.{i}.txt") for i in range(1, reps + 1)]
    rows[target] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows[target]["all_rps"] = [r["rps"] for r in runs]

print()
print(f"{'proxy':<7} {'req/s (median)':>15} {'p50 us':>9} {'p99 us':>9} {'non-2xx':>8} {'sock err':>9}   runs")
for target in ("nginx", "edge"):
    r = rows[target]
    runs = ", ".join(f"{x:.0f}" for x in r["all_rps"])
    print(f"{target:<7} {r['rps']:>15.0f} {r['p50']:>9.0f} {r['p99']:>9.0f} {r['non2xx']:>8.0f} {r['sockerr']:>9.0f}   [{runs}]")
ratio = rows["edge"]["rps"] / rows["nginx"]["rps"] if rows["nginx"]["rps"] else float("nan")
print(f"\nedge/nginx throughput ratio (median req/s): {ratio:.2f}")
PY
