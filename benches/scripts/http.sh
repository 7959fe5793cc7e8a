#!/usr/bin/env bash
# HTTP figures, measured in one run on this machine with wrk (installed with apt if
# missing): GET /api/v1/products/{sku} against a bare actix-web handler returning the
# same bytes, and durable checkouts at 64 connections with group commit and with
# --commit-batch-max 1. Writes target/bench-report/http.json and prints a table.
#
#   bash benches/scripts/http.sh            # 3 rounds of 5 s per GET side, 10 s per checkout mode
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}; GET_SECS=${GET_SECS:-5}; CHECKOUT_SECS=${CHECKOUT_SECS:-10}; CONNS=${CONNS:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p orderflow -p orderflow-bench
BIN=$ROOT/target/release
OUT=$ROOT/target/bench-report; mkdir -p "$OUT"
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"

start_server() {  # $@: extra flags
  ORDERFLOW_ADMIN_PASSWORD=bench-admin-pw ORDERFLOW_JWT_SECRET=bench-secret-bench-secret-bench-secret-0 \
    "$BIN/orderflow" serve --bind 127.0.0.1:0 --data-dir data --inbox inbox "$@" 2> server.log &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q "listening on" server.log 2>/dev/null && break; sleep 0.1; done
  URL=$(grep -o 'listening on http://[0-9.:]*' server.log | head -1 | sed 's/listening on //')
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; }
json() { python3 -c "import sys,json; print(json.load(sys.stdin)$1)"; }
post() { curl -fsS -X POST "$URL$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2"; }

start_server
ADMIN=$(post /api/v1/auth/login '{"username":"admin","password":"bench-admin-pw"}' | json '["access_token"]')
post /api/v1/products '{"sku":"BENCH-0","name":"Benchmark product","price_cents":12050,"stock":100,"category":"Bench","description":"A product used by the benchmark"}' "$ADMIN" >/dev/null
for i in $(seq 1 50); do
  post /api/v1/products "{\"sku\":\"BENCH-$i\",\"name\":\"Bench $i\",\"price_cents\":1000,\"stock\":1000000000}" "$ADMIN" >/dev/null
done
for i in $(seq 1 64); do
  post /api/v1/auth/register "{\"username\":\"bench$i\",\"email\":\"bench$i@example.com\",\"password\":\"password-123\"}" >/dev/null
  post /api/v1/auth/login "{\"username\":\"bench$i\",\"password\":\"password-123\"}" | json '["access_token"]' >> tokens.txt
done
curl -fsS "$URL/api/v1/products/BENCH-0" > body.json
"$BIN/baseline" --bind 127.0.0.1:18090 --body-file body.json --workers 2 2>/dev/null &
sleep 0.5

result() { grep '^RESULT' | sed 's/^RESULT //'; }
: > get.jsonl
for r in $(seq "$ROUNDS"); do
  BENCH_EXPECT='"sku":"BENCH-0"' wrk -t1 -c"$CONNS" -d"${GET_SECS}s" -s "$ROOT/benches/scripts/get.lua" "http://127.0.0.1:18090/product" | result | sed 's/^/{"side":"baseline","r":/; s/$/}/' >> get.jsonl
  BENCH_EXPECT='"sku":"BENCH-0"' wrk -t1 -c"$CONNS" -d"${GET_SECS}s" -s "$ROOT/benches/scripts/get.lua" "$URL/api/v1/products/BENCH-0" | result | sed 's/^/{"side":"orderflow","r":/; s/$/}/' >> get.jsonl
done
BENCH_TOKENS=tokens.txt wrk -t1 -c"$CONNS" -d"${CHECKOUT_SECS}s" -s "$ROOT/benches/scripts/checkout.lua" "$URL" | result > group.json
IDLE_RSS_KB=$(awk '/VmRSS/ {print $2}' /proc/"$SERVER_PID"/status)
stop_server
start_server --commit-batch-max 1
BENCH_TOKENS=tokens.txt wrk -t1 -c"$CONNS" -d"${CHECKOUT_SECS}s" -s "$ROOT/benches/scripts/checkout.lua" "$URL" | result > single.json
stop_server

python3 - "$OUT/http.json" "$CONNS" <<'PY'
import json, statistics, sys, platform, os, datetime
out, conns = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open("get.jsonl")]
def rps(side): return [r["r"]["requests"] / r["r"]["seconds"] for r in rows if r["side"] == side]
base, mine = statistics.median(rps("baseline")), statistics.median(rps("orderflow"))
errors = sum(r["r"]["errors"] + r["r"]["bad_bodies"] for r in rows)
g, s = json.load(open("group.json")), json.load(open("single.json"))
for run in (g, s):
    run["errors"] += run["bad_bodies"]
gops, sops = g["requests"] / g["seconds"], s["requests"] / s["seconds"]
report = {
  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
  "connections": conns,
  "get_product": {"orderflow_rps": round(mine), "baseline_rps": round(base), "ratio": round(mine / base, 3), "errors": errors},
  "checkout": {"group_commit": {"orders_per_s": round(gops), "p50_ms": g["p50_ms"], "p99_ms": g["p99_ms"], "errors": g["errors"]},
               "one_commit_per_order": {"orders_per_s": round(sops), "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "errors": s["errors"]},
               "ratio": round(gops / sops, 2)},
}
json.dump(report, open(out, "w"), indent=2)
print(f"| GET /api/v1/products/{{sku}} | {mine:,.0f} req/s | bare handler {base:,.0f} req/s | ratio {mine/base:.2f} | errors {errors} |")
print(f"| checkout, group commit      | {gops:,.0f} orders/s | p50 {g['p50_ms']:.2f} ms | p99 {g['p99_ms']:.2f} ms | errors {g['errors']} |")
print(f"| checkout, 1 commit/order    | {sops:,.0f} orders/s | p50 {s['p50_ms']:.2f} ms | p99 {s['p99_ms']:.2f} ms | errors {s['errors']} |")
print(f"| group commit speed-up       | {gops/sops:.1f}x |")
PY
echo "idle RSS after setup: $((IDLE_RSS_KB / 1024)) MiB"
