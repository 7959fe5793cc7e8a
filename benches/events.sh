#!/usr/bin/env bash
# Events and webhooks, measured on release builds with fresh data directories:
#   1. products import (`orderflow ingest`) with --import-events summary vs rows,
#      alternating, ROWS rows each;
#   2. GET /api/v1/events paging through every event of the rows-mode import
#      (limit=1000, next_after), events/s;
#   3. one webhook endpoint catching up with DELIVER_ROWS rows' events, the
#      receiver (`baseline`'s POST /hook) answering at once: deliveries/s;
#   4. delivery lag while checkout runs at LAG_RATE orders/s (loadgen --rate) for
#      LAG_SECS, one endpoint per subscription in LAG_EVENTS (one server each):
#      the receiver's p50/p99/max of (arrival − the event's created_at).
# Checkout with a subscribed endpoint is measured A/B by
#   HOOK_B=1 bash benches/ab.sh <before> <after>
#
#   bash benches/events.sh              # ROWS=500000 DELIVER_ROWS=20000
#   LAG_RATE=5000 LAG_SECS=20 LAG_EVENTS="order.* *" bash benches/events.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-500000}; DELIVER_ROWS=${DELIVER_ROWS:-20000}
LAG_RATE=${LAG_RATE:-5000}; LAG_SECS=${LAG_SECS:-20}; LAG_EVENTS=${LAG_EVENTS:-order.* *}
cargo build --release -q -p orderflow -p orderflow-bench
BIN=$PWD/target/release
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export ORDERFLOW_ADMIN_PASSWORD=bench-admin-pw
export ORDERFLOW_JWT_SECRET=bench-secret-bench-secret-bench-secret-0
export ORDERFLOW_REGISTRATIONS_PER_CLIENT_MAX=100000  # loadgen registers its customers
start() {  # $1: data dir name, then flags
  local name=$1; shift
  "$BIN/orderflow" serve --bind 127.0.0.1:0 --data-dir "$WORK/$name" --inbox "$WORK/$name-inbox" "$@" 2> "$WORK/$name.log" &
  PID=$!
  for _ in $(seq 400); do grep -q "listening on" "$WORK/$name.log" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/$name.log" | head -1 | sed 's/listening on //')
  TOKEN=$(curl -fsS -X POST "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-admin-pw"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }
now() { date +%s.%N; }

echo "== generate $ROWS products"
"$BIN/orderflow" gen products --count "$ROWS" --seed 7 -o "$WORK/products.csv" 2>/dev/null

echo "== 1. import, --import-events summary vs rows (alternating, 2 rounds)"
: > "$WORK/import.txt"
for round in 1 2; do
  for mode in summary rows; do
    rm -rf "$WORK/ingest-$mode"
    t0=$(now)
    "$BIN/orderflow" ingest --data-dir "$WORK/ingest-$mode" --import-events "$mode" "$WORK/products.csv" > /dev/null 2>&1
    t1=$(now)
    python3 -c "print('$mode', $round, round($ROWS / ($t1 - $t0)))" | tee -a "$WORK/import.txt"
  done
done

echo "== 2. GET /events, paging through the rows-mode import's events"
start ingest-rows
python3 - "$URL" "$TOKEN" <<'PY'
import http.client, json, sys, time, urllib.parse
url, token = urllib.parse.urlparse(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection(url.hostname, url.port)
after, events, t0 = 0, 0, time.time()
while True:
    conn.request("GET", f"/api/v1/events?after={after}&limit=1000", headers={"authorization": "Bearer " + token})
    page = json.loads(conn.getresponse().read())
    if not page["items"]:
        break
    events += len(page["items"])
    after = page["next_after"]
dt = time.time() - t0
print(f"events: {events} in {dt:.2f} s = {events / dt:,.0f} events/s (limit=1000, one client)")
PY
stop

echo "== 3. webhook delivery: one endpoint catching up with $DELIVER_ROWS rows' events"
"$BIN/baseline" --bind 127.0.0.1:18091 --body-file /dev/null --workers 1 2>/dev/null &
start deliver --webhook-allow-private
ID=$(curl -fsS -X POST "$URL/api/v1/webhooks" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"url":"http://127.0.0.1:18091/hook","events":["*"]}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
curl -fsS -X PATCH "$URL/api/v1/webhooks/$ID" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"status":"disabled"}' > /dev/null
stop
head -n $((DELIVER_ROWS + 1)) "$WORK/products.csv" > "$WORK/deliver.csv"
"$BIN/orderflow" ingest --data-dir "$WORK/deliver" --import-events rows "$WORK/deliver.csv" > /dev/null 2>&1
start deliver --webhook-allow-private
NEWEST=$(python3 - "$URL" "$TOKEN" <<'PY'
import http.client, json, sys, urllib.parse
url, token = urllib.parse.urlparse(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection(url.hostname, url.port)
after = 0
while True:
    conn.request("GET", f"/api/v1/events?after={after}&limit=1000", headers={"authorization": "Bearer " + token})
    page = json.loads(conn.getresponse().read())
    if not page["items"]:
        break
    after = page["next_after"]
print(after)
PY
)
t0=$(now)
curl -fsS -X PATCH "$URL/api/v1/webhooks/$ID" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"status":"enabled"}' > /dev/null
for _ in $(seq 6000); do
  DONE=$(curl -fsS "$URL/api/v1/webhooks/$ID" -H "authorization: Bearer $TOKEN" | python3 -c 'import sys,json; print(json.load(sys.stdin)["delivered_through"])')
  [ "$DONE" -ge "$NEWEST" ] && break
  sleep 0.1
done
t1=$(now)
python3 -c "print(f'deliveries: {$NEWEST} events in {$t1 - $t0:.2f} s = {$NEWEST / ($t1 - $t0):,.0f} deliveries/s (one endpoint, in order)')"
curl -fsS "$URL/metrics" | grep '^orderflow_webhook_deliveries_total' || true
stop

echo "== 4. delivery lag while checkout runs at $LAG_RATE orders/s for $LAG_SECS s"
read -ra FILTERS <<< "$LAG_EVENTS"  # no glob expansion of `*`
n=0
for filter in "${FILTERS[@]}"; do
  n=$((n + 1))
  start "lag-$n" --webhook-allow-private
  ID=$(curl -fsS -X POST "$URL/api/v1/webhooks" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"url\":\"http://127.0.0.1:18091/hook\",\"events\":[\"$filter\"]}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
  curl -fsS -X DELETE http://127.0.0.1:18091/hook/stats
  "$BIN/loadgen" checkout --host "$URL" --users 64 --products 8 --run-time "$LAG_SECS" --rate "$LAG_RATE" \
    --report-dir "$WORK/report" --label "lag-$n" > "$WORK/lag.txt" 2>&1 || { cat "$WORK/lag.txt"; exit 1; }
  ORDERS=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(round(s["orders_per_second"]))' "$WORK/report/lag-$n.json" 2>/dev/null || echo "?")
  for _ in $(seq 600); do  # the tail of the run: wait until it is delivered
    BEHIND=$(curl -fsS "$URL/metrics" | sed -n 's/^orderflow_webhook_lag_events{.*} \([0-9]*\).*/\1/p' | head -1)
    [ "${BEHIND:-1}" = 0 ] && break
    sleep 0.1
  done
  python3 - "$filter" "$ORDERS" <<'PY'
import json, sys, urllib.request
s = json.load(urllib.request.urlopen("http://127.0.0.1:18091/hook/stats"))
print(f"lag, events {sys.argv[1]!r} at {sys.argv[2]} orders/s: {s['count']} deliveries, "
      f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms")
PY
  stop
done
