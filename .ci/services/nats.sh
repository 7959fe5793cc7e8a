#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on 127.0.0.1 under a directory of the caller's,
# for the events relay's tests (Debian's nats-server 2.9, installed when missing).
# Waits until the JetStream meta group has a leader: an R3 stream cannot be created
# before.
#
#   bash .ci/services/nats.sh start DIR [FIRST_CLIENT_PORT]
#       node i (1..3) listens for clients on FIRST+i-1, routes on FIRST+100+i-1,
#       monitoring on FIRST+200+i-1; prints ORDERFLOW_TEST_NATS_URL to eval
#   bash .ci/services/nats.sh stop DIR
set -euo pipefail
CMD=${1:?usage: nats.sh start|stop DIR [FIRST_CLIENT_PORT]}
DIR=$(realpath -m "${2:?usage: nats.sh start|stop DIR}")
BASE=${3:-54222}

case "$CMD" in
stop)
  for i in 1 2 3; do
    [ -f "$DIR/n$i.pid" ] && kill "$(cat "$DIR/n$i.pid")" 2>/dev/null || true
  done
  for i in 1 2 3; do  # until each has exited (JetStream flushes first)
    for _ in $(seq 100); do
      [ -f "$DIR/n$i.pid" ] && kill -0 "$(cat "$DIR/n$i.pid")" 2>/dev/null || break
      sleep 0.1
    done
  done
  exit 0
  ;;
start) ;;
*) echo "unknown command $CMD" >&2; exit 2 ;;
esac

if ! command -v nats-server >/dev/null; then
  echo "== installing nats-server (Debian package)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
mkdir -p "$DIR"
routes=""
for i in 1 2 3; do routes="$routes nats-route://127.0.0.1:$((BASE + 100 + i - 1))"; done
urls=""
for i in 1 2 3; do
  client=$((BASE + i - 1)); route=$((BASE + 100 + i - 1)); monitor=$((BASE + 200 + i - 1))
  mkdir -p "$DIR/n$i"
  cat > "$DIR/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$client
http: 127.0.0.1:$monitor
jetstream { store_dir: "$DIR/n$i" }
cluster {
  name: orderflow-test
  listen: 127.0.0.1:$route
  routes: [$(echo "$routes" | sed 's/^ //; s/ /, /g')]
}
EOF
  nats-server -c "$DIR/n$i.conf" -P "$DIR/n$i.pid" > "$DIR/n$i.log" 2>&1 &
  urls="$urls,nats://127.0.0.1:$client"
done
# Every node sees a meta leader.
for _ in $(seq 300); do
  ready=0
  for i in 1 2 3; do
    curl -fsS "http://127.0.0.1:$((BASE + 200 + i - 1))/jsz" 2>/dev/null \
      | python3 -c 'import sys,json; j=json.load(sys.stdin); sys.exit(0 if (j.get("meta_cluster") or {}).get("leader") else 1)' \
      2>/dev/null && ready=$((ready + 1))
  done
  [ "$ready" = 3 ] && break
  sleep 0.1
done
[ "$ready" = 3 ] || { echo "no JetStream meta leader; see $DIR/n*.log" >&2; exit 1; }
echo "export ORDERFLOW_TEST_NATS_URL='${urls#,}'"
