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
#
# Prints one line per round and the medians; writes target/bench-report/ab.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
A=${1:?usage: ab.sh REV_A REV_B}; B=${2:?usage: ab.sh REV_A REV_B}
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-15}; USERS=${USERS:-64}; INGEST_ROWS=${INGEST_ROWS:-1000000}
EXTRA_A=${EXTRA_A:-}; EXTRA_B=${EXTRA_B:-}; HOOK_B=${HOOK_B:-}
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
for round in $(seq "$ROUNDS"); do
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
for what in ["checkout", "ingest"]:
    va = [r["per_s"] for r in rows if r["what"] == what and r["side"] == "A"]
    vb = [r["per_s"] for r in rows if r["what"] == what and r["side"] == "B"]
    ma, mb = statistics.median(va), statistics.median(vb)
    summary[what] = {"a": va, "b": vb, "median_a": ma, "median_b": mb, "ratio_b_to_a": round(mb / ma, 3)}
    unit = "orders/s" if what == "checkout" else "rows/s"
    print(f"{what}: A {', '.join(f'{v:,.0f}' for v in va)} | B {', '.join(f'{v:,.0f}' for v in vb)} {unit}; medians {ma:,.0f} vs {mb:,.0f} = {mb/ma:.3f}x")
errors = sum(r["errors"] for r in rows)
print(f"errors: {errors}")
json.dump(summary, open(out, "w"), indent=2)
PY
