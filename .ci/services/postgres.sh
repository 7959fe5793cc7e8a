#!/usr/bin/env bash
# A PostgreSQL 15 primary and a streaming synchronous standby on 127.0.0.1, under a
# directory of the caller's, for the tests and benchmarks of the PostgreSQL backend
# and of failover. Installs Debian's postgresql-15 when it is missing. The servers
# run as the `postgres` user; trust authentication on loopback only.
#
#   bash .ci/services/postgres.sh start DIR [PRIMARY_PORT] [STANDBY_PORT]
#       prints the lines to eval: ORDERFLOW_TEST_PG_URL (both hosts,
#       target_session_attrs=read-write), ORDERFLOW_TEST_PG_PRIMARY, ..._STANDBY
#   bash .ci/services/postgres.sh stop DIR
#   bash .ci/services/postgres.sh kill-primary DIR   # the primary dies (-m immediate)
#   bash .ci/services/postgres.sh promote DIR        # the standby becomes the primary
#
# The standby is made synchronous (synchronous_standby_names) only once it streams:
# before that, every commit on the primary would wait for it.
set -euo pipefail
CMD=${1:?usage: postgres.sh start|stop|kill-primary|promote DIR [PRIMARY_PORT] [STANDBY_PORT]}
DIR=$(realpath -m "${2:?usage: postgres.sh start|stop DIR}")
P1=${3:-55432}; P2=${4:-55433}
BIN=/usr/lib/postgresql/15/bin
as_pg() { runuser -u postgres -- "$@"; }

case "$CMD" in
stop)
  for node in standby primary; do
    [ -f "$DIR/$node/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DIR/$node" -m fast -w stop >/dev/null || true
  done
  exit 0
  ;;
kill-primary)
  as_pg "$BIN/pg_ctl" -D "$DIR/primary" -m immediate -w stop >/dev/null
  exit 0
  ;;
promote)
  as_pg "$BIN/pg_ctl" -D "$DIR/standby" -w promote >/dev/null
  exit 0
  ;;
start) ;;
*) echo "unknown command $CMD" >&2; exit 2 ;;
esac

if [ ! -x "$BIN/postgres" ]; then
  echo "== installing postgresql-15 (Debian package)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi
mkdir -p "$DIR"
chown postgres "$DIR"

# TLS: a CA of the test's own and a certificate for 127.0.0.1 signed by it, so
# clients can ask for TLS (sslmode=require, sslrootcert=$DIR/tls/ca.crt) and verify
# the server; clients that do not ask connect in plain text as before.
if ! command -v openssl >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
mkdir -p "$DIR/tls"
(
  cd "$DIR/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=orderflow test CA" \
    -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile server.ext -out server.crt 2>/dev/null
  chown postgres server.key server.crt
  chmod 600 server.key
  chmod 644 ca.crt
)
chown postgres "$DIR/tls"

# The primary.
as_pg "$BIN/initdb" -D "$DIR/primary" -U postgres --auth=trust -E UTF8 >/dev/null
cat >> "$DIR/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $P1
unix_socket_directories = '$DIR'
wal_level = replica
max_wal_senders = 8
wal_keep_size = 256MB
hot_standby = on
fsync = on
synchronous_commit = on
ssl = on
ssl_cert_file = '$DIR/tls/server.crt'
ssl_key_file = '$DIR/tls/server.key'
EOF
echo "host replication all 127.0.0.1/32 trust" >> "$DIR/primary/pg_hba.conf"
as_pg "$BIN/pg_ctl" -D "$DIR/primary" -l "$DIR/primary.log" -w start >/dev/null

# The standby: a base backup that writes its own recovery settings (-R).
as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$DIR/standby" -R -X stream >/dev/null
echo "port = $P2" >> "$DIR/standby/postgresql.conf"
# After -R's own line in postgresql.auto.conf (read last: the last setting wins),
# with the name synchronous_standby_names will use.
echo "primary_conninfo = 'host=127.0.0.1 port=$P1 user=postgres application_name=standby1'" \
  >> "$DIR/standby/postgresql.auto.conf"
as_pg "$BIN/pg_ctl" -D "$DIR/standby" -l "$DIR/standby.log" -w start >/dev/null

psql1() { as_pg psql -h 127.0.0.1 -p "$P1" -U postgres -At -c "$1"; }
for _ in $(seq 100); do
  [ "$(psql1 "select count(*) from pg_stat_replication where application_name = 'standby1' and state = 'streaming'")" = 1 ] && break
  sleep 0.1
done
[ "$(psql1 "select count(*) from pg_stat_replication where application_name = 'standby1' and state = 'streaming'")" = 1 ] \
  || { echo "the standby does not stream; see $DIR/standby.log" >&2; exit 1; }
psql1 "alter system set synchronous_standby_names = 'standby1'" >/dev/null
psql1 "select pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
  [ "$(psql1 "select sync_state from pg_stat_replication where application_name = 'standby1'")" = sync ] && break
  sleep 0.1
done
[ "$(psql1 "select sync_state from pg_stat_replication where application_name = 'standby1'")" = sync ] \
  || { echo "the standby did not become synchronous" >&2; exit 1; }

echo "export ORDERFLOW_TEST_PG_URL='postgres://postgres@127.0.0.1:$P1,127.0.0.1:$P2/postgres?target_session_attrs=read-write'"
echo "export ORDERFLOW_TEST_PG_PRIMARY='postgres://postgres@127.0.0.1:$P1/postgres'"
echo "export ORDERFLOW_TEST_PG_STANDBY='postgres://postgres@127.0.0.1:$P2/postgres'"
