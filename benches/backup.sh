#!/usr/bin/env bash
# Online backups of a large data directory: how long one takes, idle and under
# checkout load, and the checkout rate kept while backups run back to back, as a
# ratio to the rate without one (same server, same run, alternating windows).
#
#   bash benches/backup.sh                                  # 1M products, >= 1M orders
#   PRODUCTS=100000 ORDERS=100000 SECS=10 bash benches/backup.sh   # quick
#
# Writes target/bench-report/backup.json and prints the lines for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PRODUCTS=${PRODUCTS:-1000000}; ORDERS=${ORDERS:-1000000}; ROUNDS=${ROUNDS:-3}
SECS=${SECS:-20}; USERS=${USERS:-64}
OUT=$ROOT/target/bench-report; mkdir -p "$OUT"
echo "== build (release)"
cargo build --release -q -p orderflow -p orderflow-bench
BIN=$ROOT/target/release
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export ORDERFLOW_ADMIN_PASSWORD=bench-admin-pw
export ORDERFLOW_JWT_SECRET=bench-secret-bench-secret-bench-secret-0
export ORDERFLOW_REGISTRATIONS_PER_CLIENT_MAX=100000

"$BIN/orderflow" serve --bind 127.0.0.1:0 --data-dir "$WORK/data" --inbox "$WORK/inbox" 2> "$WORK/server.log" &
PID=$!
for _ in $(seq 200); do grep -q "listening on" "$WORK/server.log" 2>/dev/null && break; sleep 0.05; done
URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/server.log" | head -1 | sed 's/listening on //')
token() {
  curl -fsS -X POST "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-admin-pw"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])'
}
last_order() {
  curl -fsS "$URL/api/v1/orders?limit=1" -H "authorization: Bearer $(token)" \
    | python3 -c 'import sys,json; i=json.load(sys.stdin)["items"]; print(i[0]["id"] if i else 0)'
}
checkout() {  # $1 label, $2 seconds
  "$BIN/loadgen" checkout --label "$1" --host "$URL" --users "$USERS" --products "$PRODUCTS" \
    --run-time "$2" --report-dir "$WORK" > /dev/null
}

echo "== fill: $PRODUCTS products (upload), then checkout until $ORDERS orders"
started=$(date +%s)
checkout fill-0 30
n=0
while [ "$(last_order)" -lt "$ORDERS" ]; do n=$((n + 1)); checkout "fill-$n" 30; done
echo "   filled in $(( $(date +%s) - started )) s: $(last_order) orders, database $(du -m "$WORK/data/orderflow.redb" | cut -f1) MB"

# One backup: its seconds and manifest, as a JSON line; the copy is removed after.
backup_once() {  # $1 what (idle|load)
  local t0 t1 reply
  t0=$(date +%s.%N)
  reply=$(curl -fsS -X POST "$URL/api/v1/admin/backup" -H "authorization: Bearer $T")
  t1=$(date +%s.%N)
  python3 -c "import json,sys; m=json.loads(sys.argv[1]); print(json.dumps({'what':'$1','secs':$t1-$t0,'bytes':m['bytes'],'last_order_id':m['last_order_id']}))" "$reply" >> "$WORK/backups.jsonl"
  local file; file=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["file"])' "$reply")
  rm -f "$file" "$file.manifest.json"
}
T=$(token)
: > "$WORK/backups.jsonl"
echo "== backup, idle"
sync; backup_once idle; tail -1 "$WORK/backups.jsonl"

: > "$WORK/rounds.jsonl"
for round in $(seq "$ROUNDS"); do
  checkout "plain-$round" "$SECS"
  rm -f "$WORK/stop"
  ( while [ ! -e "$WORK/stop" ]; do backup_once load; done ) &
  LOOP=$!
  checkout "backup-$round" "$SECS"
  touch "$WORK/stop"; wait "$LOOP"
  python3 - "$WORK" "$round" >> "$WORK/rounds.jsonl" <<'PY'
import json, sys
work, r = sys.argv[1], sys.argv[2]
s = lambda n: json.load(open(f"{work}/{n}-{r}.json"))
p, b = s("plain"), s("backup")
print(json.dumps({"round": int(r), "plain": p["orders_per_second"], "backup": b["orders_per_second"],
  "plain_p99_ms": p["by_request"]["POST /api/v1/orders"]["p99_ms"], "backup_p99_ms": b["by_request"]["POST /api/v1/orders"]["p99_ms"],
  "errors": p["errors"] + b["errors"],
  "error_requests": {f"{w}: {k}": v["status_codes"] for w, r in (("plain", p), ("backup", b)) for k, v in r["by_request"].items() if v["errors"]}}))
PY
  tail -1 "$WORK/rounds.jsonl"
done
DB_MB=$(du -m "$WORK/data/orderflow.redb" | cut -f1)
kill -TERM "$PID"; wait "$PID" || true

python3 - "$WORK" "$OUT/backup.json" "$PRODUCTS" "$DB_MB" <<'PY'
import json, statistics, sys
work, out, products, db_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
backups = [json.loads(l) for l in open(f"{work}/backups.jsonl")]
rounds = [json.loads(l) for l in open(f"{work}/rounds.jsonl")]
idle = [b for b in backups if b["what"] == "idle"][0]
load = [b["secs"] for b in backups if b["what"] == "load"]
plain = statistics.median(r["plain"] for r in rounds)
during = statistics.median(r["backup"] for r in rounds)
summary = {"products": products, "orders_at_idle_backup": idle["last_order_id"], "database_mb": db_mb,
  "backup_bytes": idle["bytes"], "idle_backup_secs": round(idle["secs"], 2),
  "load_backup_secs_median": round(statistics.median(load), 2) if load else None, "backups_under_load": len(load),
  "checkout_plain_median": plain, "checkout_during_backup_median": during, "ratio": round(during / plain, 3),
  "rounds": rounds, "errors": sum(r["errors"] for r in rounds)}
json.dump(summary, open(out, "w"), indent=2)
print(f"backup of {products:,} products + {idle['last_order_id']:,} orders ({db_mb:,} MB database, {idle['bytes']/2**20:,.0f} MiB backup): "
      f"{idle['secs']:.1f} s idle, median {summary['load_backup_secs_median']} s under checkout load ({len(load)} backups)")
fmt = lambda key: ", ".join("{:,.0f}".format(r[key]) for r in rounds)
print(f"checkout: {fmt('plain')} without | {fmt('backup')} during backups; "
      f"medians {plain:,.0f} vs {during:,.0f} = {during/plain:.2f}x; errors {summary['errors']}")
PY
