#!/usr/bin/env bash
# orderflow over HTTP on the PostgreSQL backend (issue 13), peers in the same run:
#
#   - checkout, one node: the goose checkout scenario (USERS clients, 1-2 lines of
#     1,000 products) against `orderflow serve --postgres`;
#   - pgbench on that same database, USERS clients, one order per transaction with
#     the statements the ledger sends for a one-line order without a key (lock the
#     product and its stock, take an id, update the stock, insert the movement, the
#     order and its two events, move the event counter, notify);
#   - checkout, three nodes on one database: three goose drivers at once, one per
#     node, USERS/3 clients each (all on this machine's cores);
#   - GET /api/v1/products/{sku}: the PostgreSQL node vs a redb node with the same
#     catalog (wrk, 3 alternating rounds of 5 s);
#   - products ingest (INGEST_ROWS rows dropped into the inbox): the PostgreSQL
#     node vs the redb node, one after the other.
# PostgreSQL runs as a primary with a synchronous standby (.ci/services/postgres.sh).
# Not a CI step (timings). `BACKEND=postgres bash benches/run.sh` runs this.
#
#   bash benches/pg_http.sh            # USERS=64 SECS=20
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-20}; USERS=${USERS:-64}; INGEST_ROWS=${INGEST_ROWS:-200000}
OUT=$ROOT/target/bench-report/postgres
rm -rf "$OUT"; mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
echo "== build (release)"
cargo build --release -q -p orderflow -p orderflow-bench
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/orderflow-pghttp.XXXXXX)
chmod 755 "$WORK"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; bash .ci/services/postgres.sh stop "$WORK/pg"; rm -rf "$WORK"' EXIT
eval "$(bash .ci/services/postgres.sh start "$WORK/pg" 56532 56533)"
PSQL=(psql -h 127.0.0.1 -p 56532 -U postgres -At -q)
db_url() { echo "postgres://postgres@127.0.0.1:56532/$1"; }
export ORDERFLOW_ADMIN_PASSWORD=bench-admin-pw
export ORDERFLOW_JWT_SECRET=bench-secret-bench-secret-bench-secret-0
export ORDERFLOW_REGISTRATIONS_PER_CLIENT_MAX=100000

start() {  # $1: name, then extra flags; sets PID and URL
  local name=$1; shift
  mkdir -p "$WORK/$name"
  "$BIN/orderflow" serve --bind 127.0.0.1:0 --data-dir "$WORK/$name/data" --inbox "$WORK/$name/inbox" "$@" 2> "$WORK/$name.log" &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 400); do grep -q "listening on" "$WORK/$name.log" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/$name.log" | head -1 | sed 's/listening on //')
  [ -n "$URL" ] || { echo "$name did not start:"; cat "$WORK/$name.log"; exit 1; }
}
result() { grep '^RESULT' | sed 's/^RESULT //'; }
orders_per_s() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['orders_per_second'])" "$1"; }

"${PSQL[@]}" -c "CREATE DATABASE one" -c "CREATE DATABASE three"

echo "== checkout, one node on PostgreSQL (goose, $USERS users, ${SECS}s)"
start one --postgres "$(db_url one)"
ONE_URL=$URL
"$BIN/loadgen" checkout --label pg-checkout-1-node --host "$ONE_URL" --users "$USERS" --run-time "$SECS" --report-dir "$OUT"
ONE=$(orders_per_s "$OUT/pg-checkout-1-node.json")

echo "== GET product: PostgreSQL node vs redb node (wrk, 3 rounds x 5 s each, alternating)"
start redb
REDB_URL=$URL
"$BIN/loadgen" browse --label redb-seed --host "$REDB_URL" --users 2 --run-time 1 --report-dir "$WORK" >/dev/null
for url in "$ONE_URL" "$REDB_URL"; do
  curl -fsS "$url/api/v1/products/P-000001" | grep -q '"sku":"P-000001"' || { echo "no product at $url"; exit 1; }
done
: > "$WORK/get.jsonl"
for _ in 1 2 3; do
  wrk -t1 -c"$USERS" -d5s -s benches/scripts/get.lua "$ONE_URL/api/v1/products/P-000001" | result | sed 's/^/{"side":"postgres","r":/; s/$/}/' >> "$WORK/get.jsonl"
  wrk -t1 -c"$USERS" -d5s -s benches/scripts/get.lua "$REDB_URL/api/v1/products/P-000001" | result | sed 's/^/{"side":"redb","r":/; s/$/}/' >> "$WORK/get.jsonl"
done
kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true; PIDS=()

echo "== pgbench on the same database, one order per transaction ($USERS clients, ${SECS}s)"
cat > "$WORK/order.sql" <<'SQL'
\set s random(1, 1000)
\set u random(1, 100000)
BEGIN;
SELECT record FROM products WHERE sku = 'P-' || lpad(:s::text, 6, '0') FOR SHARE;
SELECT units, last_seq FROM stock WHERE sku = 'P-' || lpad(:s::text, 6, '0') FOR UPDATE;
SELECT nextval('order_ids') AS id \gset
UPDATE stock SET units = units - 1, last_seq = last_seq + 1 WHERE sku = 'P-' || lpad(:s::text, 6, '0') RETURNING last_seq AS seq, units AS after \gset
INSERT INTO movements (sku, seq, kind, delta, stock_after, order_id, at_ms, record) VALUES ('P-' || lpad(:s::text, 6, '0'), :seq, 'sale', -1, :after, :id, 0, decode(repeat('ab', 60), 'hex'));
INSERT INTO orders (id, user_id, status, total_cents, external_ref, created_ms, record) VALUES (:id, :u, 'placed', 250, NULL, 0, decode(repeat('ab', 120), 'hex'));
UPDATE counters SET value = value + 2 WHERE name = 'event_seq' RETURNING value AS ev \gset
INSERT INTO events (seq, type, at_ms, record) VALUES (:ev - 1, 'order.placed', 0, decode(repeat('ab', 160), 'hex')), (:ev, 'stock.changed', 0, decode(repeat('ab', 100), 'hex'));
SELECT pg_notify('orderflow_events', :ev::text);
COMMIT;
SQL
PGB=$(/usr/lib/postgresql/15/bin/pgbench -h 127.0.0.1 -p 56532 -U postgres -n -c "$USERS" -j 2 \
  -T "$SECS" -f "$WORK/order.sql" one 2>&1)
TPS=$(echo "$PGB" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
FAILED=$(echo "$PGB" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
echo "pgbench: ${TPS} tps (failed: ${FAILED:-0})"

echo "== checkout, three nodes on one database (3 goose drivers at once, $((USERS / 3)) users each, ${SECS}s)"
NODES=()
for n in 1 2 3; do start "three$n" --postgres "$(db_url three)"; NODES+=("$URL"); done
# Seed once (products and customers), then load all three at once.
"$BIN/loadgen" checkout --label seed --host "${NODES[0]}" --users "$USERS" --run-time 1 --report-dir "$WORK" >/dev/null
for n in 0 1 2; do
  "$BIN/loadgen" checkout --label "pg-checkout-3-nodes-$n" --host "${NODES[$n]}" --users "$((USERS / 3))" \
    --run-time "$SECS" --report-dir "$OUT" > "$WORK/three$n.out" &
  LOADS[$n]=$!
done
wait "${LOADS[@]}"
THREE=0
for n in 0 1 2; do THREE=$(python3 -c "print($THREE + $(orders_per_s "$OUT/pg-checkout-3-nodes-$n.json"))"); done
VERIFY=$(curl -fsS -H "Authorization: Bearer $(curl -fsS -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$ORDERFLOW_ADMIN_PASSWORD\"}" "${NODES[1]}/api/v1/auth/login" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')" "${NODES[1]}/api/v1/admin/ledger/verify")

kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true; PIDS=()
echo "== products ingest, $INGEST_ROWS rows into an empty catalog: PostgreSQL node, then redb node"
"${PSQL[@]}" -c "CREATE DATABASE ingest"
start ingest-pg --postgres "$(db_url ingest)"
"$BIN/loadgen" ingest --label pg-ingest --host "$URL" --rows "$INGEST_ROWS" --inbox "$WORK/ingest-pg/inbox" --report-dir "$OUT"
start ingest-redb
"$BIN/loadgen" ingest --label redb-ingest --host "$URL" --rows "$INGEST_ROWS" --inbox "$WORK/ingest-redb/inbox" --report-dir "$OUT"

python3 - "$WORK/get.jsonl" "$ONE" "$TPS" "$THREE" "$VERIFY" "$USERS" "$OUT" <<'PY'
import json, os, statistics, sys
get_file, one, tps, three, verify, users, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
rows = [json.loads(l) for l in open(get_file)]
rps = lambda side: statistics.median(r["r"]["requests"] / r["r"]["seconds"] for r in rows if r["side"] == side)
errors = sum(r["r"]["errors"] for r in rows)
pg, redb = rps("postgres"), rps("redb")
ingest = {side: json.load(open(os.path.join(out, f"{side}-ingest.json"))) for side in ("pg", "redb")}
pg_rows, redb_rows = (ingest[s]["rows_per_second_drop_to_done"] for s in ("pg", "redb"))
summary = {"checkout_1_node": one, "pgbench_tps": tps, "ratio_vs_pgbench": round(one / tps, 2),
           "checkout_3_nodes": three, "ratio_3_vs_1": round(three / one, 2),
           "get_postgres_rps": round(pg), "get_redb_rps": round(redb), "get_ratio": round(pg / redb, 2),
           "get_errors": errors, "verify_problems_after_3_nodes": len(verify["problems"]),
           "ingest_rows": ingest["pg"]["rows"], "ingest_postgres_rows_per_s": round(pg_rows),
           "ingest_redb_rows_per_s": round(redb_rows), "ingest_ratio": round(pg_rows / redb_rows, 2)}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(f"| checkout over HTTP, 1 node on PostgreSQL, {users} clients | **{one:,.0f} durable orders/s** vs pgbench {tps:,.0f} tps = **{one/tps:.1f}x** | >= 3x |")
print(f"| checkout, 3 nodes on one database | {three:,.0f} orders/s = **{three/one:.2f}x** of one node (verify: {len(verify['problems'])} problems) | |")
print(f"| GET /api/v1/products/{{sku}} | PostgreSQL {pg:,.0f} req/s vs redb {redb:,.0f} req/s = **{pg/redb:.2f}x** ({errors} errors) | |")
print(f"| products ingest, {ingest['pg']['rows']:,} rows dropped in the inbox | PostgreSQL {pg_rows:,.0f} rows/s vs redb {redb_rows:,.0f} rows/s = **{pg_rows/redb_rows:.2f}x** | |")
PY
