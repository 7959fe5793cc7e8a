#!/usr/bin/env bash
# A/B of two revisions in one run: both built in release, then measured side by
# side, alternating rounds on fresh servers so drift of the machine hits both
# alike. One load client (this checkout's loadgen) for both.
#
#   bash benches/ab.sh REV_A REV_B            # e.g. 270115b HEAD
#   ROUNDS=5 SECS=20 INGEST_ROWS=1000000 bash benches/ab.sh A B
#   EXTRA_B="--webhook-allow-private" bash benches/ab.sh A B   # flags for B's server
#   HOOK_B=1 bash benches/ab.sh A B   # B's checkout server has one webhook endpoint
#                                     # (all events) on a local receiver
#   WHAT=reads bash benches/ab.sh A B # instead: GET by SKU on both servers side by
#                                     # side and the bare handler (wrk, rounds of
#                                     # bare / A / B), then checkout with wrk on 8
#                                     # hot SKUs (rounds of A / B); with each
#                                     # server's CPU time per request
#   BIN_B=/tmp/orderflow-exp bash benches/ab.sh HEAD exp   # a side from a binary
#                                     # already built (BIN_A likewise): the rev
#                                     # argument is then only its label
#
# Prints one line per round and the medians; writes target/bench-report/ab.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
A=${1:?usage: ab.sh REV_A REV_B}; B=${2:?usage: ab.sh REV_A REV_B}
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-15}; USERS=${USERS:-64}; INGEST_ROWS=${INGEST_ROWS:-1000000}
EXTRA_A=${EXTRA_A:-}; EXTRA_B=${EXTRA_B:-}; HOOK_B=${HOOK_B:-}; WHAT=${WHAT:-load}
[ -n "$HOOK_B" ] && EXTRA_B="$EXTRA_B --webhook-allow-private"
WORK=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  for side in A B; do git worktree remove --force "$WORK/src-$side" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# One target directory for both sides: dependencies are built once.
export CARGO_TARGET_DIR=$ROOT/target/ab
echo "== build loadgen (this checkout)"
cargo build --release -q -p orderflow-bench
mkdir -p "$WORK/bin"; cp "$CARGO_TARGET_DIR/release/loadgen" "$WORK/bin/loadgen"
for side in A B; do
  rev=$([ "$side" = A ] && echo "$A" || echo "$B")
  prebuilt=$([ "$side" = A ] && echo "${BIN_A:-}" || echo "${BIN_B:-}")
  if [ -n "$prebuilt" ]; then
    echo "== $side = $rev: $prebuilt (already built)"
    cp "$prebuilt" "$WORK/bin/orderflow-$side"
    continue
  fi
  echo "== build $side = $rev ($(git rev-parse --short "$rev"))"
  git worktree add -q --detach "$WORK/src-$side" "$rev"
  (cd "$WORK/src-$side" && cargo build --release -q -p orderflow)
  cp "$CARGO_TARGET_DIR/release/orderflow" "$WORK/bin/orderflow-$side"
done

export ORDERFLOW_ADMIN_PASSWORD=bench-admin-pw
export ORDERFLOW_JWT_SECRET=bench-secret-bench-secret-bench-secret-0
export ORDERFLOW_REGISTRATIONS_PER_CLIENT_MAX=100000
start() {  # $1 side, $2 name
  local side=$1 name=$2 extra
  extra=$([ "$side" = A ] && echo "$EXTRA_A" || echo "$EXTRA_B")
  # shellcheck disable=SC2086
  "$WORK/bin/orderflow-$side" serve --bind 127.0.0.1:0 --data-dir "$WORK/$name/data" \
    --inbox "$WORK/$name/inbox" $extra 2> "$WORK/$name.log" &
  PID=$!
  for _ in $(seq 200); do grep -q "listening on" "$WORK/$name.log" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/$name.log" | head -1 | sed 's/listening on //')
}
stop() { kill -TERM "$PID"; wait "$PID" || true; }

: > "$WORK/ab.jsonl"
if [ "$WHAT" = reads ]; then
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  login() { curl -fsS -X POST "$1/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"$3\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])'; }
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  # $1 side, $2 what, then wrk's arguments: one round, with the CPU time (user +
  # system, all threads) the side's server spent per request meanwhile.
  rate() {
    local side=$1 what=$2 c0 c1 line; shift 2
    c0=$(cpu_ticks "${SPID[$side]}")
    line=$(wrk "$@" | grep '^RESULT' | sed 's/^RESULT //')
    c1=$(cpu_ticks "${SPID[$side]}")
    python3 -c "import json,os,sys; r=json.loads(sys.argv[1]); print(json.dumps({'side':'$side','what':'$what','per_s':r['requests']/r['seconds'],'p99_ms':r['p99_ms'],'errors':r['errors'],'cpu_us':round(($c1-$c0)*1e6/os.sysconf('SC_CLK_TCK')/max(r['requests'],1),1)}))" "$line" >> "$WORK/ab.jsonl"
  }
  declare -A BASE TOKEN SPID
  HOT=WRK-1,WRK-2,WRK-3,WRK-4,WRK-5,WRK-6,WRK-7,WRK-8
  for side in A B; do
    start "$side" "reads-$side"
    BASE[$side]=$URL
    SPID[$side]=$PID
    ADMIN=$(login "$URL" admin "$ORDERFLOW_ADMIN_PASSWORD")
    for sku in P-000001 ${HOT//,/ }; do
      curl -fsS -o /dev/null -X POST "$URL/api/v1/products" -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \
        -d "{\"sku\":\"$sku\",\"name\":\"Product $sku\",\"category\":\"Bench\",\"price_cents\":1999,\"stock\":1000000000}"
    done
    curl -fsS -o /dev/null -X POST "$URL/api/v1/auth/register" -H 'content-type: application/json' \
      -d '{"username":"wrk-buyer","email":"wrk-buyer@example.com","password":"wrk-buyer-pw"}'
    TOKEN[$side]=$(login "$URL" wrk-buyer wrk-buyer-pw)
  done
  curl -fsS "${BASE[B]}/api/v1/products/P-000001" > "$WORK/body.json"
  "$CARGO_TARGET_DIR/release/baseline" --bind 127.0.0.1:18093 --body-file "$WORK/body.json" --workers 2 2>/dev/null &
  SPID[bare]=$!
  sleep 0.5
  for round in $(seq "$ROUNDS"); do
    rate bare get -t1 -c"$USERS" -d5s -s benches/scripts/get.lua http://127.0.0.1:18093/product
    for side in A B; do
      rate "$side" get -t1 -c"$USERS" -d5s -s benches/scripts/get.lua "${BASE[$side]}/api/v1/products/P-000001"
    done
    tail -3 "$WORK/ab.jsonl"
  done
  for round in $(seq "$ROUNDS"); do
    for side in A B; do
      TOKEN=${TOKEN[$side]} HOT_SKUS=$HOT rate "$side" checkout-wrk -t1 -c"$USERS" -d5s \
        -s benches/scripts/checkout.lua "${BASE[$side]}/api/v1/orders"
    done
    tail -2 "$WORK/ab.jsonl"
  done
fi
for round in $(seq "$ROUNDS"); do
  [ "$WHAT" = reads ] && break
  for side in A B; do
    start "$side" "co-$side-$round"
    if [ "$side" = B ] && [ -n "$HOOK_B" ]; then
      pgrep -f "baseline --bind 127.0.0.1:18092" > /dev/null || \
        { "$CARGO_TARGET_DIR/release/baseline" --bind 127.0.0.1:18092 --body-file /dev/null --workers 1 2>/dev/null & sleep 0.3; }
      T=$(curl -fsS -X POST "$URL/api/v1/auth/login" -H 'content-type: application/json' \
        -d '{"username":"admin","password":"bench-admin-pw"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
      curl -fsS -X POST "$URL/api/v1/webhooks" -H "authorization: Bearer $T" -H 'content-type: application/json' \
        -d '{"url":"http://127.0.0.1:18092/hook","events":["*"]}' > /dev/null
    fi
    "$WORK/bin/loadgen" checkout --label "co-$side-$round" --host "$URL" --users "$USERS" \
      --run-time "$SECS" --report-dir "$WORK" > /dev/null
    stop
    python3 -c "import json,sys; s=json.load(open('$WORK/co-$side-$round.json')); print(json.dumps({'side':'$side','round':$round,'what':'checkout','per_s':s['orders_per_second'],'p99_ms':s['by_request']['POST /api/v1/orders']['p99_ms'],'errors':s['errors']}))" >> "$WORK/ab.jsonl"
    start "$side" "in-$side-$round"
    "$WORK/bin/loadgen" ingest --label "in-$side-$round" --host "$URL" --rows "$INGEST_ROWS" \
      --inbox "$WORK/in-$side-$round/inbox" --report-dir "$WORK" > /dev/null
    stop
    python3 -c "import json,sys; s=json.load(open('$WORK/in-$side-$round.json')); print(json.dumps({'side':'$side','round':$round,'what':'ingest','per_s':s['rows_per_second_drop_to_done'],'errors':0}))" >> "$WORK/ab.jsonl"
    tail -2 "$WORK/ab.jsonl"
  done
done
mkdir -p "$ROOT/target/bench-report"
python3 - "$WORK/ab.jsonl" "$A" "$B" "$ROOT/target/bench-report/ab.json" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
a, b, out = sys.argv[2], sys.argv[3], sys.argv[4]
summary = {"a": a, "b": b, "rounds": rows}
for what in ["checkout", "ingest", "get", "checkout-wrk"]:
    va = [r["per_s"] for r in rows if r["what"] == what and r["side"] == "A"]
    vb = [r["per_s"] for r in rows if r["what"] == what and r["side"] == "B"]
    if not va:
        continue
    ma, mb = statistics.median(va), statistics.median(vb)
    summary[what] = {"a": va, "b": vb, "median_a": ma, "median_b": mb, "ratio_b_to_a": round(mb / ma, 3)}
    unit = "rows/s" if what == "ingest" else "req/s" if what == "get" else "orders/s"
    print(f"{what}: A {', '.join(f'{v:,.0f}' for v in va)} | B {', '.join(f'{v:,.0f}' for v in vb)} {unit}; medians {ma:,.0f} vs {mb:,.0f} = {mb/ma:.3f}x")
    cpu = {side: [r["cpu_us"] for r in rows if r["what"] == what and r["side"] == side and "cpu_us" in r] for side in ["bare", "A", "B"]}
    if cpu["A"]:
        summary[what]["cpu_us_per_request"] = cpu
        medians = {side: statistics.median(v) for side, v in cpu.items() if v}
        print(f"{what}: server CPU per request, medians " + ", ".join(f"{side} {m:.1f} us" for side, m in medians.items()) + f"; B/A {medians['B'] / medians['A']:.3f}x")
    bare = [r["per_s"] for r in rows if r["what"] == what and r["side"] == "bare"]
    if bare:
        # Each round's ratio to the bare handler measured just before it.
        ratio = lambda side: statistics.median(x / y for x, y in zip([r["per_s"] for r in rows if r["what"] == what and r["side"] == side], bare))
        summary[what]["bare"] = bare
        summary[what]["ratio_to_bare_a"], summary[what]["ratio_to_bare_b"] = round(ratio("A"), 3), round(ratio("B"), 3)
        print(f"{what}: bare handler {', '.join(f'{v:,.0f}' for v in bare)} req/s; median ratio to it A {ratio('A'):.2f}x, B {ratio('B'):.2f}x")
errors = sum(r["errors"] for r in rows)
print(f"errors: {errors}")
json.dump(summary, open(out, "w"), indent=2)
PY
