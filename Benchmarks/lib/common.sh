# Shared helpers for Benchmarks/run and comparison/run (sourced, not run).
#
# Provides: bench_init (temp dir + trap that stops every PID in BENCH_PIDS),
# need_tools (apt-get installs what is missing), free_port, wait_port,
# cpu_layout (PROXY_PIN / UPSTREAM_PIN / LOAD_PIN), check_idle, start_upstream
# (nginx: "/" 64 B, "/16k", "/1m"), tree_ticks / tree_rss_kb (CPU and RSS of a
# process and its children), run_wrk (one pinned, time-bounded wrk run).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_LIB="$BENCH_ROOT/Benchmarks/lib"
BENCH_PIDS=()
BENCH_TMP=""

bench_log() { printf '%s\n' "$*" >&2; }

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do
    # Give each process up to 5 s to drain, then SIGKILL it (by PID).
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [ -n "$BENCH_TMP" ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$BENCH_TMP"; fi
}

bench_init() {  # prefix
  BENCH_TMP=$(mktemp -d "/tmp/$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  # 1,000+ connections: client, proxy and upstream each need a descriptor per connection.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# need_tools cmd...: install the Debian packages behind missing commands.
need_tools() {
  local missing=() cmd pkg
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 && continue
    [ "$cmd" = nginx ] && [ -x /usr/sbin/nginx ] && continue
    [ "$cmd" = haproxy ] && [ -x /usr/sbin/haproxy ] && continue
    case "$cmd" in
      nginx) pkg=nginx-light ;; taskset) pkg=util-linux ;; ps|pgrep) pkg=procps ;;
      cc) pkg=gcc ;; *) pkg=$cmd ;;
    esac
    missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  bench_log "installing: ${missing[*]}"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {  # port name [pid]
  local i
  for i in $(seq 1 150); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2).close()" 2>/dev/null; then return 0; fi
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then bench_log "$2 exited before listening on $1"; return 1; fi
    sleep 0.1
  done
  bench_log "$2 did not start listening on 127.0.0.1:$1"; return 1
}

# CPU placement. 2 CPUs: proxy on the first allowed CPU, upstream + wrk on the
# second (they compete with each other, never with the proxy). 3 CPUs: proxy,
# upstream, wrk one each. 4+: proxy on CPU a, upstream on b, wrk on the rest.
cpu_layout() {
  mapfile -t BENCH_CPUS < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
  local n=${#BENCH_CPUS[@]}
  WRK_THREADS=1
  if [ "$n" -ge 2 ]; then
    PROXY_CPU=${BENCH_CPUS[0]}; UPSTREAM_CPU=${BENCH_CPUS[1]}
    if [ "$n" -eq 2 ]; then LOAD_CPUS=${BENCH_CPUS[1]}
    elif [ "$n" -eq 3 ]; then LOAD_CPUS=${BENCH_CPUS[2]}
    else LOAD_CPUS=$(IFS=,; echo "${BENCH_CPUS[*]:2}"); WRK_THREADS=$((n - 2)); [ "$WRK_THREADS" -gt 4 ] && WRK_THREADS=4
    fi
    PROXY_PIN=(taskset -c "$PROXY_CPU"); UPSTREAM_PIN=(taskset -c "$UPSTREAM_CPU"); LOAD_PIN=(taskset -c "$LOAD_CPUS")
    CPU_LAYOUT="proxy on CPU $PROXY_CPU; upstream on CPU $UPSTREAM_CPU; wrk (-t$WRK_THREADS) on CPU $LOAD_CPUS"
  else
    PROXY_CPU=${BENCH_CPUS[0]:-0}; UPSTREAM_CPU=$PROXY_CPU; LOAD_CPUS=$PROXY_CPU
    PROXY_PIN=(); UPSTREAM_PIN=(); LOAD_PIN=()
    CPU_LAYOUT="single CPU: unpinned, numbers are not meaningful"
    bench_log "WARNING: only one CPU allowed; running unpinned"
  fi
}

# Percent of CPU time not idle over $1 seconds, all CPUs (from /proc/stat).
cpu_busy_pct() {
  python3 - "${1:-1}" <<'PY'
import sys, time
def snap():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f[:8]), idle
t0, i0 = snap(); time.sleep(float(sys.argv[1])); t1, i1 = snap()
print(f"{100.0 * (1 - (i1 - i0) / max(1, t1 - t0)):.1f}")
PY
}

# Warns (and records IDLE_BUSY_PCT) when the machine is more than 10% busy.
check_idle() {
  IDLE_BUSY_PCT=$(cpu_busy_pct 1)
  if python3 -c "import sys; sys.exit(0 if float('$IDLE_BUSY_PCT') > 10 else 1)"; then
    bench_log "WARNING: the machine is ${IDLE_BUSY_PCT}% busy before the run (>10%): numbers will be noisy. Top:"
    ps -eo pid,pcpu,comm --sort=-pcpu | head -6 >&2 || true
  else
    bench_log "idle check: ${IDLE_BUSY_PCT}% busy (ok)"
  fi
}

# Starts the nginx upstream pinned to UPSTREAM_CPU; sets UPSTREAM_PORT.
start_upstream() {
  local nginx; nginx=$(command -v nginx || echo /usr/sbin/nginx)
  UPSTREAM_PORT=$(free_port)
  mkdir -p "$BENCH_TMP/www"; chmod 755 "$BENCH_TMP" "$BENCH_TMP/www"  # nginx workers run as nobody
  head -c 16384 /dev/zero | tr '\0' 'a' > "$BENCH_TMP/www/16k"
  head -c 1048576 /dev/zero | tr '\0' 'b' > "$BENCH_TMP/www/1m"
  sed -e "s|@TMP@|$BENCH_TMP|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
    "$BENCH_LIB/upstream.conf.in" > "$BENCH_TMP/upstream.conf"
  "${UPSTREAM_PIN[@]}" "$nginx" -e "$BENCH_TMP/upstream.error.log" -p "$BENCH_TMP" -c "$BENCH_TMP/upstream.conf" &
  UPSTREAM_PID=$!; BENCH_PIDS+=("$UPSTREAM_PID")
  wait_port "$UPSTREAM_PORT" "nginx upstream" "$UPSTREAM_PID"
}

# Process and all descendants.
tree_pids() {
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null || true); do tree_pids "$c"; done
}

# utime+stime clock ticks summed over a process tree.
tree_ticks() {
  local sum=0 p t
  for p in $(tree_pids "$1"); do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}

# VmRSS in KiB summed over a process tree.
tree_rss_kb() {
  local sum=0 p r
  for p in $(tree_pids "$1"); do
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    sum=$((sum + ${r:-0}))
  done
  echo "$sum"
}

CLK_TCK=$(getconf CLK_TCK)
now_ns() { date +%s%N; }

# run_wrk OUT PROXY_PID CONNS DURATION URL [wrk args...]
# Runs one pinned wrk with the EDGE_RESULT reporter and writes OUT (wrk output)
# and OUT.cpu ("<ticks delta> <wall ns> <rss KiB after>") for the proxy tree.
# Options before a "--" go to wrk before the URL; the rest are script arguments.
run_wrk() {
  local out=$1 pid=$2 conns=$3 dur=$4 url=$5; shift 5
  local script=(-s "$BENCH_ROOT/Benchmarks/wrk/report.lua") opts=() sargs=() a seen=""
  for a in "$@"; do
    if [ -n "$seen" ]; then sargs+=("$a"); elif [ "$a" = -- ]; then seen=1; else opts+=("$a"); fi
    [ "$a" = -s ] && [ -z "$seen" ] && script=()
  done
  [ "${#sargs[@]}" -gt 0 ] && sargs=(-- "${sargs[@]}")
  local secs=${dur%s}
  local t0 w0 t1 w1
  t0=$(tree_ticks "$pid"); w0=$(now_ns)
  "${LOAD_PIN[@]}" timeout -k 5 $((secs + 30)) wrk -t"$WRK_THREADS" -c"$conns" -d"$dur" --timeout 5s --latency \
    "${script[@]}" "${opts[@]}" "$url" "${sargs[@]}" > "$out" 2>&1 || true
  t1=$(tree_ticks "$pid"); w1=$(now_ns)
  echo "$((t1 - t0)) $((w1 - w0)) $(tree_rss_kb "$pid")" > "$out.cpu"
}
