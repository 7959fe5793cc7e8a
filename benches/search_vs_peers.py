"""Search beside SQLite FTS5 and PostgreSQL's tsvector, on the same products and
the same queries (run by benches/search_vs_peers.sh, which builds orderflow,
generates the catalog, loads it into orderflow and measures orderflow with wrk).

    python3 search_vs_peers.py queries WORK products.csv CONNS SECS PG_PORT
        -> writes WORK/queries.json, WORK/paths_mixed.txt, WORK/paths_facets.txt
    python3 search_vs_peers.py peers WORK products.csv CONNS SECS PG_PORT
        -> loads and measures SQLite FTS5 and PostgreSQL; prints their RESULT lines

The query set (seeded): one word of a name; two words (a name's and its category
leaf's); a typo (a name word of 6+ letters missing one); a prefix (a name word's
first four letters, the last word typed so far). Each half without facets and half
with three: the category, the option Size and the price buckets, each counted over
every match. Every contender answers a search with the top 20 by relevance, the
count of every match and, when asked, the three facets.

The peers do less than orderflow: neither forgives a typo (FTS5 and tsvector match
words exactly; the typo queries find what the remaining words find), and each runs
in-process with no HTTP. SQLite: FTS5 (unicode61, diacritics removed), bm25 with
per-column weights, one process per connection (no GIL between them). PostgreSQL:
a `tsvector` of weighted fields (unaccent, `simple` configuration) with a GIN
index, `ts_rank`, pgbench as the client (its fastest).
"""

import csv
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time

WORD = re.compile(r"[^\W_]+", re.UNICODE)
PRICE_BUCKETS = [0, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000]
SAMPLE = 2_000


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def cents(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def make_queries(work, products):
    rng = random.Random(42)
    names = []
    for i, row in enumerate(rows(products)):
        if i % 97 == 0:
            names.append((row["name"], row["category"]))
    queries = []
    while len(queries) < SAMPLE:
        name, category = rng.choice(names)
        words = [w.lower() for w in WORD.findall(name)]
        leaf = [w.lower() for w in WORD.findall(category.split(" > ")[-1])]
        kind = len(queries) % 4
        if kind == 0:
            q = [rng.choice(words)]
            prefix = False
        elif kind == 1:
            q = [rng.choice(words), rng.choice(leaf)]
            prefix = False
        elif kind == 2:
            long = [w for w in words if len(w) >= 6]
            if not long:
                continue
            w = rng.choice(long)
            cut = rng.randrange(1, len(w) - 1)
            q = [w[:cut] + w[cut + 1:]]
            prefix = False
        else:
            long = [w for w in words if len(w) >= 5]
            if not long:
                continue
            q = [rng.choice(long)[:4]]
            prefix = True
        facets = (len(queries) // 4) % 2 == 1
        queries.append({"words": q, "prefix": prefix, "facets": facets})
    with open(os.path.join(work, "queries.json"), "w") as f:
        json.dump(queries, f)
    for name, keep in (("mixed", lambda q: True), ("facets", lambda q: q["facets"])):
        with open(os.path.join(work, f"paths_{name}.txt"), "w") as f:
            for q in queries:
                if keep(q):
                    path = "/api/v1/search?limit=20&q=" + "%20".join(q["words"])
                    if q["facets"]:
                        path += "&facets=category,option.Size,price"
                    f.write(path + "\n")


SQLITE_LOAD_BATCH = 50_000


def sqlite_load(db_path, products):
    db = sqlite3.connect(db_path, isolation_level=None)
    db.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT UNIQUE, name TEXT,
            category TEXT, grp TEXT, size TEXT, colour TEXT, description TEXT,
            price INTEGER);
        CREATE VIRTUAL TABLE fts USING fts5(name, grp, options, category, description,
            content='', tokenize='unicode61 remove_diacritics 2');
        """
    )
    started = time.monotonic()
    batch, fts = [], []
    db.execute("BEGIN")
    for i, row in enumerate(rows(products), start=1):
        batch.append((i, row["sku"], row["name"], row["category"], row["group"],
                      row["option1_value"], row["option2_value"], row["description"],
                      cents(row["price"])))
        fts.append((i, row["name"], row["group"], row["option1_value"] + " " + row["option2_value"],
                    row["category"], row["description"]))
        if len(batch) >= SQLITE_LOAD_BATCH:
            db.executemany("INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?)", batch)
            db.executemany("INSERT INTO fts (rowid, name, grp, options, category, description) VALUES (?,?,?,?,?,?)", fts)
            batch, fts = [], []
    db.executemany("INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?)", batch)
    db.executemany("INSERT INTO fts (rowid, name, grp, options, category, description) VALUES (?,?,?,?,?,?)", fts)
    db.execute("COMMIT")
    db.execute("INSERT INTO fts(fts) VALUES('optimize')")
    db.close()
    return time.monotonic() - started


def fts_match(q):
    parts = ['"' + w.replace('"', "") + '"' for w in q["words"]]
    if q["prefix"]:
        parts[-1] += "*"
    return " ".join(parts)


BUCKET_SQL = "CASE " + " ".join(
    f"WHEN p.price < {hi} THEN {lo}" for lo, hi in zip(PRICE_BUCKETS, PRICE_BUCKETS[1:])
) + f" ELSE {PRICE_BUCKETS[-1]} END"


def sqlite_search(db, q):
    m = fts_match(q)
    top = db.execute(
        "SELECT rowid, bm25(fts, 4.0, 2.0, 2.0, 1.5, 1.0) AS r FROM fts WHERE fts MATCH ? "
        "ORDER BY r LIMIT 20", (m,)).fetchall()
    ids = [r[0] for r in top]
    if ids:
        db.execute(f"SELECT sku FROM products WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
    db.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (m,)).fetchone()
    if q["facets"]:
        for column in ("p.category", "p.size", BUCKET_SQL):
            db.execute(
                f"SELECT {column}, count(*) FROM fts JOIN products p ON p.id = fts.rowid "
                "WHERE fts MATCH ? GROUP BY 1 ORDER BY 2 DESC LIMIT 100", (m,)).fetchall()


def sqlite_worker(db_path, queries_path, secs, seed, out):
    with open(queries_path) as f:
        queries = json.load(f)
    rng = random.Random(seed)
    db = sqlite3.connect(db_path)
    lat = []
    deadline = time.monotonic() + secs
    i = rng.randrange(len(queries))
    while time.monotonic() < deadline:
        i = (i + 1) % len(queries)
        t = time.monotonic()
        sqlite_search(db, queries[i])
        lat.append(time.monotonic() - t)
    with open(out, "w") as f:
        json.dump(lat, f)


def sqlite_run(work, conns, secs, facets_only):
    queries = json.load(open(os.path.join(work, "queries.json")))
    if facets_only:
        queries = [q for q in queries if q["facets"]]
    qpath = os.path.join(work, "sqlite_queries.json")
    json.dump(queries, open(qpath, "w"))
    procs = []
    for c in range(conns):
        out = os.path.join(work, f"sqlite_lat_{c}.json")
        procs.append((out, subprocess.Popen([sys.executable, __file__, "sqlite-worker",
                                             os.path.join(work, "fts.db"), qpath, str(secs), str(c), out])))
    lat = []
    for out, p in procs:
        p.wait()
        lat.extend(json.load(open(out)))
    return summary(lat, secs)


def summary(lat, secs):
    lat.sort()
    p = lambda x: lat[min(len(lat) - 1, int(len(lat) * x))] * 1000 if lat else 0.0
    return {"requests": len(lat), "seconds": secs, "qps": len(lat) / secs,
            "p50_ms": round(p(0.50), 3), "p99_ms": round(p(0.99), 3)}


def psql(port, sql, db="search"):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", db,
                           "-At", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout


def pg_load(port, products):
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-At", "-q",
                    "-c", "DROP DATABASE IF EXISTS search", "-c", "CREATE DATABASE search"], check=True)
    psql(port, """
        CREATE EXTENSION unaccent;
        CREATE TABLE staged (sku text, name text, category text, price text, stock text,
            description text, grp text, o1n text, o1v text, o2n text, o2v text, weight text);
        CREATE TABLE products (id serial PRIMARY KEY, sku text UNIQUE, name text, category text,
            grp text, size text, colour text, description text, price bigint, tsv tsvector);
        CREATE TABLE bench_queries (id int PRIMARY KEY, tsq tsquery, facets boolean);""")
    started = time.monotonic()
    with open(products, "rb") as f:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "search",
                        "-q", "-c", "\\copy staged FROM STDIN WITH (FORMAT csv, HEADER true)"],
                       stdin=f, check=True)
    psql(port, """
        INSERT INTO products (sku, name, category, grp, size, colour, description, price, tsv)
        SELECT sku, name, category, grp, o1v, o2v, description, (price::numeric * 100)::bigint,
            setweight(to_tsvector('simple', unaccent(name)), 'A')
            || setweight(to_tsvector('simple', unaccent(coalesce(grp, '') || ' ' || o1v || ' ' || o2v)), 'B')
            || setweight(to_tsvector('simple', unaccent(category)), 'C')
            || setweight(to_tsvector('simple', unaccent(description)), 'D')
        FROM staged;
        DROP TABLE staged;
        CREATE INDEX products_tsv ON products USING gin (tsv);""")
    psql(port, "VACUUM ANALYZE products")
    return time.monotonic() - started


def tsquery(q):
    words = [re.sub(r"[^\w]", "", w) for w in q["words"]]
    parts = [w for w in words if w]
    text = " & ".join(parts)
    if q["prefix"] and parts:
        text += ":*"
    return text


def pg_run(work, port, conns, secs, facets_only):
    queries = json.load(open(os.path.join(work, "queries.json")))
    if facets_only:
        queries = [q for q in queries if q["facets"]]
    values = ",".join(f"({i + 1}, to_tsquery('simple', unaccent('{tsquery(q)}')), {str(q['facets']).lower()})"
                      for i, q in enumerate(queries))
    psql(port, f"TRUNCATE bench_queries; INSERT INTO bench_queries VALUES {values}")
    match = "FROM products p, bench_queries q WHERE q.id = :id AND p.tsv @@ q.tsq"
    plain = [
        "\\set id random(1, %d)" % len(queries),
        f"SELECT p.sku, ts_rank(p.tsv, q.tsq) AS r {match} ORDER BY r DESC LIMIT 20;",
        f"SELECT count(*) {match};",
    ]
    facets = [
        f"SELECT p.category, count(*) {match} AND q.facets GROUP BY 1 ORDER BY 2 DESC LIMIT 100;",
        f"SELECT p.size, count(*) {match} AND q.facets GROUP BY 1 ORDER BY 2 DESC LIMIT 100;",
        f"SELECT {BUCKET_SQL}, count(*) {match} AND q.facets GROUP BY 1 ORDER BY 2 DESC LIMIT 100;",
    ]
    script = os.path.join(work, "pg_search.sql")
    with open(script, "w") as f:
        f.write("\n".join(plain + facets) + "\n")
    logdir = os.path.join(work, "pglog")
    os.makedirs(logdir, exist_ok=True)
    for old in os.listdir(logdir):
        os.remove(os.path.join(logdir, old))
    subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-n", "-c", str(conns),
                    "-j", "2", "-T", str(secs), "-f", script, "-l", "--log-prefix",
                    os.path.join(logdir, "log"), "search"], check=True, capture_output=True)
    lat = []
    for name in os.listdir(logdir):
        for line in open(os.path.join(logdir, name)):
            lat.append(int(line.split()[2]) / 1e6)
    return summary(lat, secs)


def peers(work, products, conns, secs, port):
    out = {}
    t = sqlite_load(os.path.join(work, "fts.db"), products)
    print(f"sqlite: loaded and indexed in {t:.1f} s", file=sys.stderr)
    out["sqlite_mixed"] = sqlite_run(work, conns, secs, False)
    out["sqlite_facets"] = sqlite_run(work, conns, secs, True)
    t = pg_load(port, products)
    print(f"postgres: loaded and indexed in {t:.1f} s", file=sys.stderr)
    out["postgres_mixed"] = pg_run(work, port, conns, secs, False)
    out["postgres_facets"] = pg_run(work, port, conns, secs, True)
    for name, result in out.items():
        print(f"RESULT {name} {json.dumps(result)}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "sqlite-worker":
        sqlite_worker(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif mode == "queries":
        make_queries(sys.argv[2], sys.argv[3])
    elif mode == "peers":
        peers(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        sys.exit(f"unknown mode {mode}")
