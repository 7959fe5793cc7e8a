#!/usr/bin/env bash
# The ledger on PostgreSQL vs pgbench, same database, same run (issue 13).
#
# Starts a PostgreSQL 15 primary with a synchronous standby (.ci/services/postgres.sh),
# then, each on a fresh database:
#   - orderflow's PostgreSQL ledger (actors/examples/pg_checkout.rs): CLIENTS tasks
#     placing one-line orders on 8 hot SKUs through one node (group commit), then
#     through three nodes;
#   - pgbench, CLIENTS clients, one order per transaction with the statements the
#     ledger sends for it (lock product and stock, take an id, update stock, insert
#     the movement, the order, the two events, move the event counter).
# Prints orders/s of each and the ratios. Not a CI step (timings).
#
#   bash benches/pg_ledger.sh            # CLIENTS=64 DURATION=15 (seconds each)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-64}
SECONDS_EACH=${DURATION:-15}
WORK=$(mktemp -d /tmp/orderflow-pgbench.XXXXXX)
chmod 755 "$WORK"
trap 'bash .ci/services/postgres.sh stop "$WORK/pg"; rm -rf "$WORK"' EXIT
eval "$(bash .ci/services/postgres.sh start "$WORK/pg" 56432 56433)"
PSQL=(psql -h 127.0.0.1 -p 56432 -U postgres -At -q)
cargo build --release -q -p orderflow-actors --example pg_checkout
BIN=target/release/examples/pg_checkout
db_url() { echo "postgres://postgres@127.0.0.1:56432/$1"; }

"${PSQL[@]}" -c "CREATE DATABASE ours1" -c "CREATE DATABASE ours3" -c "CREATE DATABASE bench"
ONE=$("$BIN" "$(db_url ours1)" "$CLIENTS" "$SECONDS_EACH" 8 1)
echo "orderflow, 1 node:  $ONE"
THREE=$("$BIN" "$(db_url ours3)" "$CLIENTS" "$SECONDS_EACH" 8 3)
echo "orderflow, 3 nodes: $THREE"

# pgbench on the same schema: the binary migrates the database and seeds it.
"$BIN" "$(db_url bench)" 1 1 8 1 >/dev/null
"${PSQL[@]}" -d bench -c "TRUNCATE orders, movements, events"
cat > "$WORK/order.sql" <<'SQL'
\set s random(0, 7)
\set u random(1, 100000)
BEGIN;
SELECT record FROM products WHERE sku = 'H-' || :s FOR SHARE;
SELECT units, last_seq FROM stock WHERE sku = 'H-' || :s FOR UPDATE;
SELECT nextval('order_ids') AS id \gset
UPDATE stock SET units = units - 1, last_seq = last_seq + 1 WHERE sku = 'H-' || :s RETURNING last_seq AS seq, units AS after \gset
INSERT INTO movements (sku, seq, kind, delta, stock_after, order_id, at_ms, record) VALUES ('H-' || :s, :seq, 'sale', -1, :after, :id, 0, decode(repeat('ab', 60), 'hex'));
INSERT INTO orders (id, user_id, status, total_cents, external_ref, created_ms, record) VALUES (:id, :u, 'placed', 250, NULL, 0, decode(repeat('ab', 120), 'hex'));
UPDATE counters SET value = value + 2 WHERE name = 'event_seq' RETURNING value AS ev \gset
INSERT INTO events (seq, type, at_ms, record) VALUES (:ev - 1, 'order.placed', 0, decode(repeat('ab', 160), 'hex')), (:ev, 'stock.changed', 0, decode(repeat('ab', 100), 'hex'));
COMMIT;
SQL
PGB=$(/usr/lib/postgresql/15/bin/pgbench -h 127.0.0.1 -p 56432 -U postgres -n -c "$CLIENTS" -j 2 \
  -T "$SECONDS_EACH" -f "$WORK/order.sql" bench 2>&1)
TPS=$(echo "$PGB" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
FAILED=$(echo "$PGB" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
echo "pgbench, one order per transaction: ${TPS} tps (failed: ${FAILED:-0})"
python3 - "$ONE" "$THREE" "$TPS" <<'PY'
import json, sys
one, three, tps = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
print(f"ratio 1 node / pgbench:  {one['orders_per_s'] / tps:.2f}x  ({one['orders_per_s']:.0f} vs {tps:.0f} orders/s)")
print(f"ratio 3 nodes / 1 node:  {three['orders_per_s'] / one['orders_per_s']:.2f}x  ({three['orders_per_s']:.0f} vs {one['orders_per_s']:.0f})")
PY
