#!/usr/bin/env bash
# What reading a listing costs when it merges runs (issue 15): ROWS products loaded
# with `orderflow ingest` (so the listing indexes are left as the import leaves
# them: several runs per index, merges owed), then a server on that data directory
# and wrk on the first page of each sort, ascending and descending, and on a page in
# the middle of the price listing, both ways. `sort=sku` reads the products table's own B-tree
# and merges nothing: the other rows are given as a ratio to it, same run.
#
#   bash benches/listings.sh                 # 1,000,000 products
#   ROWS=4000000 SECS=5 bash benches/listings.sh
#
# Prints a markdown table; writes target/bench-report/listings.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}; SECS=${SECS:-5}; USERS=${USERS:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p orderflow
BIN=$PWD/target/release
WORK=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p target/bench-report
export ORDERFLOW_ADMIN_PASSWORD=bench-admin-pw
export ORDERFLOW_JWT_SECRET=bench-secret-bench-secret-bench-secret-0

echo "== generate and load $ROWS products"
"$BIN/orderflow" gen products --count "$ROWS" --seed 7 -o "$WORK/products.csv" 2>/dev/null
"$BIN/orderflow" ingest --data-dir "$WORK/data" --log warn "$WORK/products.csv" > /dev/null

"$BIN/orderflow" serve --bind 127.0.0.1:0 --data-dir "$WORK/data" --inbox "$WORK/inbox" 2> "$WORK/serve.log" &
for _ in $(seq 200); do grep -q "listening on" "$WORK/serve.log" 2>/dev/null && break; sleep 0.05; done
URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/serve.log" | head -1 | sed 's/listening on //')

echo "== wrk, $USERS connections, ${SECS}s per query, two rounds"
QUERIES=(
  "sort=sku&limit=20"
  "sort=price&limit=20"
  "sort=-price&limit=20"
  "sort=name&limit=20"
  "sort=price&limit=20&min_price_cents=50000"
  "sort=-price&limit=20&max_price_cents=50000"
)
: > "$WORK/out.jsonl"
for round in 1 2; do
  for q in "${QUERIES[@]}"; do
    body=$(curl -fsS "$URL/api/v1/products?$q")
    # A page of 20 products, or the figure would measure an error.
    [ "$(grep -o '"sku":' <<< "$body" | wc -l)" -eq 20 ] || { echo "unexpected page for $q: ${body:0:300}"; exit 1; }
    line=$(wrk -t1 -c"$USERS" -d"${SECS}s" -s benches/scripts/get.lua "$URL/api/v1/products?$q" | grep '^RESULT' | sed 's/^RESULT //')
    printf '{"round":%d,"query":"%s","r":%s}\n' "$round" "$q" "$line" >> "$WORK/out.jsonl"
  done
done

python3 - "$WORK/out.jsonl" "$ROWS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
by = {}
for r in rows:
    by.setdefault(r["query"], []).append(r["r"])
def rate(q):
    return statistics.median(x["requests"] / x["seconds"] for x in by[q])
base = rate("sort=sku&limit=20")
out = {}
print(f"\n| GET /api/v1/products?… ({n:,} products, after the import) | req/s | vs sort=sku | p99 ms | errors |")
print("|---|---:|---:|---:|---:|")
for q, rs in by.items():
    errors = sum(x["errors"] for x in rs)
    p99 = max(x["p99_ms"] for x in rs)
    out[q] = {"rps": round(rate(q)), "ratio_to_sku": round(rate(q) / base, 3), "p99_ms": p99, "errors": errors}
    print(f"| `{q}` | {rate(q):,.0f} | {rate(q) / base:.2f}x | {p99:.1f} | {errors} |")
json.dump({"rows": n, "queries": out}, open("target/bench-report/listings.json", "w"), indent=1)
EOF
