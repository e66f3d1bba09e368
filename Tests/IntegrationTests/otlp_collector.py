#!/usr/bin/env python3
"""Minimal OTLP/HTTP collector for Edge's tracing tests (stdlib only).

    otlp_collector.py --port P --out FILE

Accepts POST /v1/traces with a JSON body (OTLP/HTTP JSON encoding), appends
one line per span to FILE: {"traceId", "spanId", "parentSpanId", "name",
"attributes": {key: value}, "start", "end"}, and answers 200 {}.
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            if self.path != "/v1/traces" or "json" not in self.headers.get("Content-Type", ""):
                self.send_response(404)
                self.end_headers()
                return
            doc = json.loads(body)
            lines = []
            for rs in doc.get("resourceSpans", []):
                service = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}.get("service.name", {})
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        attrs = {}
                        for a in s.get("attributes", []):
                            v = a["value"]
                            attrs[a["key"]] = v.get("stringValue", v.get("intValue"))
                        lines.append(json.dumps({
                            "traceId": s["traceId"], "spanId": s["spanId"],
                            "parentSpanId": s.get("parentSpanId", ""), "name": s["name"],
                            "service": service.get("stringValue"), "attributes": attrs,
                            "start": int(s["startTimeUnixNano"]), "end": int(s["endTimeUnixNano"])}))
            with lock, open(args.out, "a") as f:
                for line in lines:
                    f.write(line + "\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
