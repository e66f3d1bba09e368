# Edge — build, test and demo entry points.
#
#   make deps         install missing Debian packages (apt-get; sudo when not root)
#   make build        release build of the `edge` binary
#   make test         deps + release build + all test suites (serially) + fuzz-smoke
#   make fuzz         scripts/fuzz: libFuzzer on each parser/config target, FUZZ_SECONDS each (default 600)
#   make fuzz-smoke   build the fuzz targets (Fuzz/, scratch .build-fuzz) and run each ~10 s
#   make run          deps + build + demo: upstream.py on :9000, edge on :8080
#   make bench        Benchmarks/run: edge behind nginx, all wrk scenarios, 3 reps (~6 min)
#   make bench-quick  Benchmarks/run --quick (< 2 min)
#   make slowhttp     Benchmarks/slowhttp: slowhttptest slowloris + slow body, 5,000 connections, curl probes
#   make soak         Benchmarks/soak: 30 min mixed load + reloads + upstream restarts; fails on FD/RSS growth or errors
#   make compare      comparison/run: edge vs nginx/HAProxy/h2o/Caddy -> comparison/RESULTS.md
#   make bench-health comparison/health/run: edge CPU% with 1,000 endpoints health-checked every 1 s
#   make dist         static-stdlib binary + tuning + example -> dist/edge-VERSION-linux-ARCH.tar.gz
#   make clean

SHELL        := /bin/bash
SWIFT        ?= swift
CONFIG       ?= examples/edge.yaml
EDGE_BIN     := $(CURDIR)/.build/release/edge
UPSTREAM_PY  := Tests/IntegrationTests/upstream.py
UPSTREAM_PORT ?= 9000

# Debian package → command (or file) that proves it is installed.
DEB_PACKAGES := liburing-dev libpcre2-dev curl nginx-light wrk procps
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: deps build test run bench bench-quick soak slowhttp compare bench-health dist clean fuzz fuzz-smoke

deps:
	@missing=""; \
	dpkg -s liburing-dev >/dev/null 2>&1 || [ -f /usr/include/liburing.h ] || missing="$$missing liburing-dev"; \
	dpkg -s libpcre2-dev >/dev/null 2>&1 || [ -f /usr/include/pcre2.h ] || missing="$$missing libpcre2-dev"; \
	dpkg -s libssl-dev >/dev/null 2>&1 || [ -f /usr/include/openssl/ssl.h ] || missing="$$missing libssl-dev"; \
	dpkg -s libnghttp2-dev >/dev/null 2>&1 || [ -f /usr/include/nghttp2/nghttp2.h ] || missing="$$missing libnghttp2-dev"; \
	command -v h2load >/dev/null 2>&1 || missing="$$missing nghttp2-client"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v curl  >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v wrk   >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v ps    >/dev/null 2>&1 || missing="$$missing procps"; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v cc    >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v redis-benchmark >/dev/null 2>&1 || missing="$$missing redis-tools"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v testssl >/dev/null 2>&1 || missing="$$missing testssl.sh"; \
	command -v htpasswd >/dev/null 2>&1 || missing="$$missing apache2-utils"; \
	dpkg -s libcrypt-dev >/dev/null 2>&1 || [ -f /usr/include/crypt.h ] || missing="$$missing libcrypt-dev"; \
	dpkg -s zlib1g-dev >/dev/null 2>&1 || [ -f /usr/include/zlib.h ] || missing="$$missing zlib1g-dev"; \
	dpkg -s libbrotli-dev >/dev/null 2>&1 || [ -f /usr/include/brotli/encode.h ] || missing="$$missing libbrotli-dev"; \
	dpkg -s libzstd-dev >/dev/null 2>&1 || [ -f /usr/include/zstd.h ] || missing="$$missing libzstd-dev"; \
	dpkg -s libhiredis-dev >/dev/null 2>&1 || [ -f /usr/include/hiredis/hiredis.h ] || missing="$$missing libhiredis-dev"; \
	dpkg -s libngtcp2-dev >/dev/null 2>&1 || [ -f /usr/include/ngtcp2/ngtcp2.h ] || missing="$$missing libngtcp2-dev"; \
	dpkg -s libngtcp2-crypto-gnutls-dev >/dev/null 2>&1 || [ -f /usr/include/ngtcp2/ngtcp2_crypto_gnutls.h ] || missing="$$missing libngtcp2-crypto-gnutls-dev"; \
	dpkg -s libnghttp3-dev >/dev/null 2>&1 || [ -f /usr/include/nghttp3/nghttp3.h ] || missing="$$missing libnghttp3-dev"; \
	dpkg -s libgnutls28-dev >/dev/null 2>&1 || [ -f /usr/include/gnutls/gnutls.h ] || missing="$$missing libgnutls28-dev"; \
	dpkg -s ngtcp2-client >/dev/null 2>&1 || missing="$$missing ngtcp2-client"; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing:$$missing"; \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	else \
	  echo "deps: all present"; \
	fi
	@python3 -c 'import websockets' 2>/dev/null || python3 -m pip install --quiet websockets
	@python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install --quiet prometheus_client
	@python3 -c 'import jwt, cryptography' 2>/dev/null || python3 -m pip install --quiet PyJWT cryptography
	@python3 -c 'import h2' 2>/dev/null || python3 -m pip install --quiet h2
	@python3 -c 'import grpc, grpc_tools' 2>/dev/null || python3 -m pip install --quiet grpcio grpcio-tools
	@python3 -c 'import brotli, zstandard' 2>/dev/null || python3 -m pip install --quiet brotli zstandard
	@python3 -c 'import aioquic' 2>/dev/null || python3 -m pip install --quiet aioquic

build:
	$(SWIFT) build -c release --product edge

# Integration tests bind ports and measure RSS/allocations: run serially.
test: deps build
	EDGE_BIN=$(EDGE_BIN) $(SWIFT) test
	$(MAKE) fuzz-smoke
	@# Smoke run of the benchmark harness: proves it works, says nothing about speed.
	EDGE_BIN=$(EDGE_BIN) Benchmarks/run --smoke
	EDGE_BIN=$(EDGE_BIN) Benchmarks/soak --duration 120
	@# slowhttptest slowloris + slow body, 2,000 connections; generous latency bound for shared CI hosts.
	EDGE_BIN=$(EDGE_BIN) Benchmarks/slowhttp --connections 2000 --duration 20 --latency-bound-ms 500

# libFuzzer targets in Fuzz/ (own package and scratch dir; see scripts/fuzz).
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz build
	scripts/fuzz run --seconds $(FUZZ_SECONDS)

fuzz-smoke:
	scripts/fuzz smoke

run: deps build
	@set -euo pipefail; \
	[ -f examples/certs/server.pem ] || $(EDGE_BIN) gen-certs --hostname localhost --out examples/certs; \
	python3 $(UPSTREAM_PY) serve --host 127.0.0.1 --port $(UPSTREAM_PORT) & up=$$!; \
	trap 'kill $$up 2>/dev/null || true' EXIT INT TERM; \
	echo "upstream.py (pid $$up) on 127.0.0.1:$(UPSTREAM_PORT)"; \
	echo "try: curl localhost:8080/   curl localhost:8080/api/echo   curl localhost:9901/metrics"; \
	echo "     curl --cacert examples/certs/ca.pem https://localhost:8443/api/echo"; \
	$(EDGE_BIN) run --config $(CONFIG)

bench: deps build
	EDGE_BIN=$(EDGE_BIN) Benchmarks/run

bench-quick: deps build
	EDGE_BIN=$(EDGE_BIN) Benchmarks/run --quick

soak: deps build
	EDGE_BIN=$(EDGE_BIN) Benchmarks/soak --duration 1800

slowhttp: deps build
	EDGE_BIN=$(EDGE_BIN) Benchmarks/slowhttp

compare: deps build
	EDGE_BIN=$(EDGE_BIN) comparison/run

bench-health: deps build
	EDGE_BIN=$(EDGE_BIN) comparison/health/run --endpoints 1000 --duration 30

micro: ; cd Benchmarks/Micro && $(SWIFT) package --allow-writing-to-package-directory benchmark --no-progress

# Release binary with the Swift runtime linked in (own scratch dir so the
# regular release build is not rebuilt), packed with tuning/ and the example
# config, then tested with the toolchain off PATH (scripts/dist-test.sh).
dist: deps
	$(SWIFT) build -c release --static-swift-stdlib --product edge --scratch-path .build-dist
	@set -euo pipefail; \
	bin=.build-dist/release/edge; ver=$$($$bin version | awk '{print $$2}'); \
	name=edge-$$ver-linux-$$(uname -m); stage=dist/$$name; \
	rm -rf "$$stage"; mkdir -p "$$stage/bin" "$$stage/tuning/limits.d" "$$stage/examples"; \
	printf '*\n' > dist/.gitignore; \
	install -m 0755 "$$bin" "$$stage/bin/edge"; strip "$$stage/bin/edge" 2>/dev/null || true; \
	cp tuning/*.conf tuning/edge.service "$$stage/tuning/"; cp tuning/limits.d/edge.conf "$$stage/tuning/limits.d/"; \
	cp examples/edge.yaml "$$stage/examples/"; cp README.md "$$stage/"; \
	tar -C dist -czf "dist/$$name.tar.gz" "$$name"; rm -rf "$$stage"; \
	echo "wrote dist/$$name.tar.gz ($$(du -h "dist/$$name.tar.gz" | cut -f1))"; \
	scripts/dist-test.sh "dist/$$name.tar.gz"

clean:
	rm -rf .build
