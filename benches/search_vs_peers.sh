#!/usr/bin/env bash
# Search (issue 42) beside SQLite FTS5 and PostgreSQL 15's tsvector, in one run, on
# the same generated catalog (`orderflow gen products --catalog-depth`) and the
# same queries (benches/search_vs_peers.py says which, and what the peers do not
# do). Prints the table for docs/benchmarks.md and the README; writes
# target/bench-report/search_vs_peers.json. Not a CI step (timings).
#
#   bash benches/search_vs_peers.sh                 # N=1000000 CONNS=64 SECS=20
#   N=100000 SECS=5 bash benches/search_vs_peers.sh # quick
#
# Also measured in the run:
#   - index build: `orderflow ingest` fills a data directory offline, then
#     `orderflow serve` builds the index from that catalog at start (its log line);
#   - the products ingest with the index fed: N flat rows (benches/ingest_vs_peers.sh's
#     file) dropped into a serving node's inbox, rows/s to the job's end and the time
#     until every product is searchable, beside the offline `orderflow ingest` (no
#     index) and DuckDB's load of ingest_vs_peers.py, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${N:-1000000}; CONNS=${CONNS:-64}; SECS=${SECS:-20}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
VENV=$ROOT/target/bench-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import duckdb' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'duckdb>=1.1,<2'
fi
echo "== build (release)"
cargo build --release -q -p orderflow
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/orderflow-search.XXXXXX)
chmod 755 "$WORK"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; bash .ci/services/postgres.sh stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export ORDERFLOW_ADMIN_PASSWORD=bench-admin-pw
export ORDERFLOW_JWT_SECRET=bench-secret-bench-secret-bench-secret-0
OUT=$ROOT/target/bench-report
mkdir -p "$OUT"

start() {  # $1: name; sets PID and URL
  local name=$1; shift
  "$BIN/orderflow" serve --bind 127.0.0.1:0 --data-dir "$WORK/$name/data" --inbox "$WORK/$name/inbox" "$@" 2> "$WORK/$name.log" &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 400); do grep -q "listening on" "$WORK/$name.log" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/$name.log" | head -1 | sed 's/listening on //')
  [ -n "$URL" ] || { echo "$name did not start:"; cat "$WORK/$name.log"; exit 1; }
}
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

echo "== generate $N products (catalog depth)"
"$BIN/orderflow" gen products --catalog-depth --count "$N" --seed 42 -o "$WORK/products.csv" 2>/dev/null
python3 benches/search_vs_peers.py queries "$WORK" "$WORK/products.csv"

echo "== orderflow: offline ingest, then the index built at start"
mkdir -p "$WORK/of/inbox"
"$BIN/orderflow" ingest --data-dir "$WORK/of/data" "$WORK/products.csv" > /dev/null 2>&1
start of
for _ in $(seq 1200); do
  grep -q "search index built" "$WORK/of.log" && break; sleep 0.1
done
BUILD=$(grep "search index built" "$WORK/of.log" | grep -o 'seconds=[0-9.]*' | cut -d= -f2)
DOCS=$(grep "search index built" "$WORK/of.log" | grep -o 'documents=[0-9]*' | cut -d= -f2)
# Every path answers 200 with items before the run.
while read -r path; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$URL$path")
  [ "$code" = 200 ] || { echo "orderflow answered $code to $path"; exit 1; }
done < <(head -8 "$WORK/paths_mixed.txt")
curl -s "$URL$(sed -n 2p "$WORK/paths_mixed.txt")" | python3 -c 'import json,sys; b=json.load(sys.stdin); assert b["total"] > 0 and b["items"], b'
# How many products the queries match (what the count and the facets walk).
MATCHES=$(python3 - "$URL" "$WORK/paths_mixed.txt" <<'PY'
import json, statistics, sys, urllib.request
paths = open(sys.argv[2]).read().split()[:200]
totals = [json.load(urllib.request.urlopen(sys.argv[1] + p))["total"] for p in paths]
print(json.dumps({"queries": len(totals), "median": statistics.median(totals), "mean": round(statistics.mean(totals)), "max": max(totals)}))
PY
)
echo "matches per query: $MATCHES"
echo "== orderflow: $CONNS connections, $SECS s, mixed then with facets"
OF_MIXED=$(PATHS="$WORK/paths_mixed.txt" wrk -t2 -c"$CONNS" -d"${SECS}s" -s benches/scripts/search.lua "$URL" | grep '^RESULT' | sed 's/^RESULT //')
OF_FACETS=$(PATHS="$WORK/paths_facets.txt" wrk -t2 -c"$CONNS" -d"${SECS}s" -s benches/scripts/search.lua "$URL" | grep '^RESULT' | sed 's/^RESULT //')
kill -TERM "$PID"; wait "$PID" || true

echo "== products ingest with the index fed: a flat file into a serving node's inbox, beside DuckDB and the offline ingest"
# The flat rows of benches/ingest_vs_peers.sh (the ingest figure the README shows),
# the same DuckDB load as there (primary key, two indexes, validation).
"$BIN/orderflow" gen products --count "$N" --seed 7 -o "$WORK/flat.csv" 2>/dev/null
start fed --settle-ms 100 --scan-interval-ms 100
until [ "$(metric orderflow_search_documents)" = 0 ] && grep -q "search index built" "$WORK/fed.log"; do sleep 0.05; done
sync
T0=$(date +%s.%N)
cp "$WORK/flat.csv" "$WORK/fed/products_flat.csv"
mv "$WORK/fed/products_flat.csv" "$WORK/fed/inbox/products_flat.csv"
for _ in $(seq 12000); do
  [ -n "$(ls "$WORK/fed/inbox/processed" 2>/dev/null)" ] && break; sleep 0.02
done
T1=$(date +%s.%N)
for _ in $(seq 12000); do
  [ "$(metric orderflow_search_documents)" = "$N" ] && break; sleep 0.05
done
T2=$(date +%s.%N)
FED_RSS=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status")
kill -TERM "$PID"; wait "$PID" || true
sync
/usr/bin/time -f %e -o "$WORK/offline.seconds" "$BIN/orderflow" ingest --data-dir "$WORK/offline" "$WORK/flat.csv" > /dev/null 2>&1
OFFLINE=$(tail -1 "$WORK/offline.seconds")
sync
DUCK=$("$VENV/bin/python" -c 'import sys, subprocess, time
sys.path.insert(0, "benches")
import ingest_vs_peers as peers
t = time.perf_counter()
subprocess.run([sys.executable, "-c", peers.DUCKDB_LOAD, sys.argv[1], sys.argv[2]], check=True, capture_output=True)
print(time.perf_counter() - t)' "$WORK/flat.duckdb" "$WORK/flat.csv")

echo "== peers: SQLite FTS5, PostgreSQL tsvector"
{ echo "N=$N DOCS=$DOCS BUILD=$BUILD T0=$T0 T1=$T1 T2=$T2 DUCK=$DUCK OFFLINE=$OFFLINE FED_RSS_KB=$FED_RSS"
  echo "MATCHES=$MATCHES"; echo "OF_MIXED=$OF_MIXED OF_FACETS=$OF_FACETS"; } > "$OUT/search_vs_peers.orderflow"
for attempt in 1 2 3; do
  rm -rf "$WORK/pg"
  if PG_ENV=$(bash .ci/services/postgres.sh start "$WORK/pg" 57532 57533 2> "$WORK/pg-start.err"); then
    eval "$PG_ENV"; break
  fi
  echo "PostgreSQL did not start (attempt $attempt):"; tail -5 "$WORK/pg-start.err" "$WORK/pg/primary.log" 2>/dev/null || true
  [ "$attempt" = 3 ] && exit 1
  sleep 5
done
PEERS=$(python3 benches/search_vs_peers.py peers "$WORK" "$WORK/products.csv" "$CONNS" "$SECS" 57532)

echo "N=$N DOCS=$DOCS BUILD=$BUILD T0=$T0 T1=$T1 T2=$T2 DUCK=$DUCK OFFLINE=$OFFLINE FED_RSS_KB=$FED_RSS" | tee "$OUT/search_vs_peers.raw"
echo "MATCHES=$MATCHES" | tee -a "$OUT/search_vs_peers.raw"
echo "OF_MIXED=$OF_MIXED OF_FACETS=$OF_FACETS" | tee -a "$OUT/search_vs_peers.raw"
echo "$PEERS" | tee -a "$OUT/search_vs_peers.raw"
python3 - "$N" "$DOCS" "$BUILD" "$T0" "$T1" "$T2" "$DUCK" "$OF_MIXED" "$OF_FACETS" "$OUT/search_vs_peers.json" "$OFFLINE" <<PY
import json, sys
n, docs, build, t0, t1, t2, duck = sys.argv[1:8]
of_mixed, of_facets = json.loads(sys.argv[8]), json.loads(sys.argv[9])
offline = float(sys.argv[11])
peers = {}
for line in """$PEERS""".splitlines():
    _, name, body = line.split(" ", 2)
    peers[name] = json.loads(body)
qps = lambda r: r["requests"] / r["seconds"]
rows = [("orderflow", of_mixed, of_facets),
        ("SQLite FTS5", peers["sqlite_mixed"], peers["sqlite_facets"]),
        ("PostgreSQL tsvector", peers["postgres_mixed"], peers["postgres_facets"])]
print(f"\nSearch on {int(n):,} products, $CONNS connections, $SECS s each (same run)\n")
print("| | queries/s (mixed) | p99 ms (mixed) | queries/s (3 facets) | p99 ms (3 facets) | orderflow's queries/s over it |")
print("|---|---:|---:|---:|---:|---:|")
for name, m, f in rows:
    ratio = qps(of_mixed) / qps(m)
    print(f"| {name} | {qps(m):,.0f} | {m['p99_ms']:.1f} | {qps(f):,.0f} | {f['p99_ms']:.1f} | {ratio:.2f}x |")
print(f"\norderflow errors: {of_mixed['errors']} (mixed), {of_facets['errors']} (facets)")
ingest = float(t1) - float(t0)
searchable = float(t2) - float(t0)
print(f"index built at start from {int(docs):,} products: {float(build):.1f} s = {int(docs) / float(build):,.0f} products/s")
print(f"\nproducts ingest, {int(n):,} flat rows: serving node with the index fed {int(n) / ingest:,.0f} rows/s "
      f"(drop to processed/; every product searchable after {searchable:.1f} s), offline orderflow ingest "
      f"{int(n) / offline:,.0f} rows/s, DuckDB {int(n) / float(duck):,.0f} rows/s")
print(f"orderflow fed / DuckDB = {float(duck) / ingest:.2f}x; offline / DuckDB = {float(duck) / offline:.2f}x")
json.dump({"products": int(n), "orderflow_mixed": of_mixed, "orderflow_facets": of_facets, "peers": peers,
           "index_build_seconds": float(build), "ingest_seconds": ingest, "searchable_seconds": searchable,
           "duckdb_seconds": float(duck), "offline_ingest_seconds": offline}, open(sys.argv[10], "w"), indent=2)
PY
