#!/usr/bin/env bash
# Products ingest beside SQLite and DuckDB (issue 15), on the same generated files,
# in one run: ROWS products into an empty database, BIG products into an empty
# database, and MORE new products into the database that holds the first ROWS (the
# growth figure: that rate over the first one). Peak RSS of each load. Prints the
# markdown table for docs/benchmarks.md and the README; writes
# target/bench-report/ingest_vs_peers.json.
#
#   bash benches/ingest_vs_peers.sh                          # 1M, 4M, 3M onto 1M
#   ROWS=200000 BIG=400000 MORE=300000 bash benches/ingest_vs_peers.sh   # quick
#
# Peers: SQLite (Python's sqlite3: WAL, synchronous=FULL, upsert, two indexes,
# 32,768-row commits) and DuckDB (from PyPI, in a virtual environment under
# target/: primary key, two indexes, INSERT OR REPLACE from read_csv, one
# statement). Both parse and validate the rows as orderflow does (price in cents
# > 0, stock >= 0, a name). orderflow also writes each row's stock and its
# movement, which the peers do not.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}; BIG=${BIG:-4000000}; MORE=${MORE:-3000000}
VENV=$PWD/target/bench-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import duckdb' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'duckdb>=1.1,<2'
fi
cargo build --release -q -p orderflow
BIN=$PWD/target/release
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
mkdir -p target/bench-report
echo "== generate: $ROWS, $BIG, and $MORE more products"
"$BIN/orderflow" gen products --count "$ROWS" --seed 7 -o "$WORK/small.csv" 2>/dev/null
"$BIN/orderflow" gen products --count "$BIG" --seed 8 -o "$WORK/big.csv" 2>/dev/null
"$BIN/orderflow" gen products --count "$MORE" --first $((ROWS + 1)) --seed 9 -o "$WORK/more.csv" 2>/dev/null
echo "== load (orderflow, then SQLite, then DuckDB)"
OUT_JSON=$PWD/target/bench-report/ingest_vs_peers.json "$VENV/bin/python" benches/ingest_vs_peers.py \
  "$BIN" "$WORK" "$WORK/small.csv" "$WORK/big.csv" "$WORK/more.csv" "$ROWS" "$BIG" "$MORE"
