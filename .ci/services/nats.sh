#!/usr/bin/env bash
# A three-server NATS JetStream cluster on 127.0.0.1 under a directory of the
# caller's, for the tests of the events relay (--events-nats). Installs Debian's
# nats-server when it is missing. Waits for the JetStream meta leader before it
# returns, so an R3 stream can be created at once.
#
#   bash .ci/services/nats.sh start DIR CLIENT_PORT_1 [2 3] MONITOR_PORT_1 [2 3] ROUTE_PORT_1 [2 3]
#       prints the lines to eval: ORDERFLOW_TEST_NATS_URL (the three servers)
#   bash .ci/services/nats.sh kill DIR NAME     # SIGKILL one server (n1, n2 or n3)
#   bash .ci/services/nats.sh stop DIR
set -euo pipefail
CMD=${1:?usage: nats.sh start|kill|stop DIR ...}
DIR=$(realpath -m "${2:?usage: nats.sh start|kill|stop DIR ...}")

case "$CMD" in
stop)
  for pid in "$DIR"/n*.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  exit 0
  ;;
kill)
  NAME=${3:?usage: nats.sh kill DIR NAME}
  kill -9 "$(cat "$DIR/$NAME.pid")"
  exit 0
  ;;
start) ;;
*) echo "unknown command $CMD" >&2; exit 2 ;;
esac

shift 2
[ $# -eq 9 ] || { echo "start needs 3 client, 3 monitoring and 3 route ports" >&2; exit 2; }
CLIENT=("$1" "$2" "$3"); MONITOR=("$4" "$5" "$6"); ROUTE=("$7" "$8" "$9")
if ! command -v nats-server >/dev/null; then
  echo "== installing nats-server (Debian package)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
mkdir -p "$DIR"
routes="nats://127.0.0.1:${ROUTE[0]},nats://127.0.0.1:${ROUTE[1]},nats://127.0.0.1:${ROUTE[2]}"
for i in 0 1 2; do
  name="n$((i + 1))"
  cat > "$DIR/$name.conf" <<CONF
server_name: $name
listen: 127.0.0.1:${CLIENT[$i]}
http: 127.0.0.1:${MONITOR[$i]}
pid_file: "$DIR/$name.pid"
jetstream {
  store_dir: "$DIR/$name"
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: orderflow
  listen: 127.0.0.1:${ROUTE[$i]}
  routes: [$routes]
}
CONF
  nats-server -c "$DIR/$name.conf" > "$DIR/$name.log" 2>&1 &
done
leader() {
  python3 - "$1" <<'PY'
import json, sys, urllib.request
try:
    jsz = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/jsz", timeout=1))
    print((jsz.get("meta_cluster") or {}).get("leader") or "")
except Exception:
    print("")
PY
}
for _ in $(seq 300); do
  [ -n "$(leader "${MONITOR[0]}")" ] && break
  sleep 0.1
done
[ -n "$(leader "${MONITOR[0]}")" ] || { echo "no JetStream meta leader; see $DIR/n*.log" >&2; exit 1; }
echo "export ORDERFLOW_TEST_NATS_URL='nats://127.0.0.1:${CLIENT[0]},nats://127.0.0.1:${CLIENT[1]},nats://127.0.0.1:${CLIENT[2]}'"
