"""Products ingest: orderflow beside SQLite and DuckDB on the same generated files.

Run by benches/ingest_vs_peers.sh (which builds orderflow, generates the files and
makes a virtual environment holding DuckDB from PyPI). Every contender does the same
work: parse the CSV, validate each row (price > 0 in cents, stock >= 0, non-empty
name), upsert by SKU, keep a listing by price and one by lower-case name, durable
at the end. Each load runs as a child process of its own; its wall time and peak
RSS (from wait4) are what is reported.

    python3 ingest_vs_peers.py BIN_DIR WORK_DIR small.csv big.csv more.csv ROWS_SMALL ROWS_BIG ROWS_MORE

- small.csv: ROWS_SMALL products (P-1…), loaded into an empty database;
- big.csv: ROWS_BIG products, loaded into an empty database;
- more.csv: ROWS_MORE new products (numbered after small.csv's), loaded into the
  database small.csv was loaded into: the growth figure is its rate divided by the
  rate of small.csv into the empty database.
"""

import json
import os
import subprocess
import sys
import time

SQLITE_BATCH_ROWS = 32_768

SQLITE_LOAD = r"""
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute('''CREATE TABLE IF NOT EXISTS products(
    sku TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL,
    category TEXT NOT NULL, price INTEGER NOT NULL CHECK (price > 0),
    stock INTEGER NOT NULL CHECK (stock >= 0), description TEXT)''')
db.execute("CREATE INDEX IF NOT EXISTS by_price ON products(price, sku)")
db.execute("CREATE INDEX IF NOT EXISTS by_name ON products(name_key, sku)")
UPSERT = '''INSERT INTO products VALUES (?,?,?,?,?,?,?) ON CONFLICT(sku) DO UPDATE SET
    name=excluded.name, name_key=excluded.name_key, category=excluded.category,
    price=excluded.price, stock=excluded.stock, description=excluded.description'''
def rows(path):
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            try:
                whole, _, frac = r["price"].partition(".")
                cents = int(whole) * 100 + int((frac + "00")[:2])
                stock = int(r["stock"])
            except (ValueError, KeyError):
                continue
            name = r.get("name") or ""
            if cents <= 0 or stock < 0 or not name:
                continue
            yield (r["sku"], name, name.lower(), r["category"], cents, stock, r.get("description"))
batch = []
for row in rows(sys.argv[2]):
    batch.append(row)
    if len(batch) == %d:
        db.execute("BEGIN"); db.executemany(UPSERT, batch); db.execute("COMMIT"); batch = []
if batch:
    db.execute("BEGIN"); db.executemany(UPSERT, batch); db.execute("COMMIT")
print(db.execute("SELECT count(*) FROM products").fetchone()[0])
""" % SQLITE_BATCH_ROWS

DUCKDB_LOAD = r"""
import duckdb, sys
db = duckdb.connect(sys.argv[1])
db.execute('''CREATE TABLE IF NOT EXISTS products(
    sku VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, name_key VARCHAR NOT NULL,
    category VARCHAR NOT NULL, price BIGINT NOT NULL CHECK (price > 0),
    stock BIGINT NOT NULL CHECK (stock >= 0), description VARCHAR)''')
db.execute("CREATE INDEX IF NOT EXISTS by_price ON products(price, sku)")
db.execute("CREATE INDEX IF NOT EXISTS by_name ON products(name_key, sku)")
db.execute('''INSERT OR REPLACE INTO products
    SELECT sku, name, lower(name), category, price_cents, stock, description FROM (
        SELECT sku, name, category, description,
               TRY_CAST(round(TRY_CAST(price AS DECIMAL(18,2)) * 100) AS BIGINT) AS price_cents,
               TRY_CAST(stock AS BIGINT) AS stock
        FROM read_csv(?, header = true, all_varchar = true))
    WHERE price_cents > 0 AND stock >= 0 AND coalesce(name, '') <> ''
''', [sys.argv[2]])
db.execute("CHECKPOINT")
print(db.execute("SELECT count(*) FROM products").fetchone()[0])
"""


def run(cmd):
    """Runs `cmd`, answering (seconds, peak RSS in MB, stdout).

    Dirty pages left by the previous load are written out first, so no load pays
    for another's writeback (the 4M-row load leaves over a gigabyte of them)."""
    os.sync()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out.decode()


def contenders(bin_dir, work):
    def orderflow(db, csv):
        return [f"{bin_dir}/orderflow", "ingest", "--data-dir", f"{work}/{db}.orderflow", csv]

    def sqlite(db, csv):
        return [sys.executable, "-c", SQLITE_LOAD, f"{work}/{db}.sqlite", csv]

    def duckdb(db, csv):
        return [sys.executable, "-c", DUCKDB_LOAD, f"{work}/{db}.duckdb", csv]

    return [("orderflow", orderflow), ("SQLite", sqlite), ("DuckDB", duckdb)]


def main():
    bin_dir, work, small, big, more = sys.argv[1:6]
    n_small, n_big, n_more = (int(a) for a in sys.argv[6:9])
    results = {}
    for name, cmd in contenders(bin_dir, work):
        r = {}
        s, rss_a, _ = run(cmd("small", small))
        r["small"] = n_small / s
        s, rss_b, _ = run(cmd("big", big))
        r["big"] = n_big / s
        s, rss_c, _ = run(cmd("small", more))
        r["more"] = n_more / s
        r["growth"] = r["more"] / r["small"]
        r["rss_mb"] = max(rss_a, rss_b, rss_c)
        results[name] = r
        print(f"  {name}: {r['small']:,.0f} / {r['big']:,.0f} / {r['more']:,.0f} rows/s, "
              f"peak RSS {r['rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    ours = results["orderflow"]
    print()
    print(f"| products ingest, rows/s | {n_small:,} rows, empty | {n_big:,} rows, empty "
          f"| {n_more:,} new rows onto {n_small:,} | growth | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['small']:,.0f} | {r['big']:,.0f} | {r['more']:,.0f} "
              f"| {r['growth']:.2f}x | {r['rss_mb']:.0f} MB |")
    for peer in ("SQLite", "DuckDB"):
        p = results[peer]
        print(f"| orderflow / {peer} | {ours['small'] / p['small']:.2f}x "
              f"| {ours['big'] / p['big']:.2f}x | {ours['more'] / p['more']:.2f}x | | |")
    if os.environ.get("OUT_JSON"):
        with open(os.environ["OUT_JSON"], "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
